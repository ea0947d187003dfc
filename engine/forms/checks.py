"""Value checks that JSON Schema alone cannot express."""

from __future__ import annotations

import datetime as dt
import re

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^[0-9]{17}[0-9X]$")
CN_MOBILE_PATTERN = r"^1[3-9][0-9]{9}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


def cn_id_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def cn_id_problem(value: str, *, today: dt.date | None = None) -> str | None:
    """Why ``value`` is not a valid 18-digit PRC resident ID number (GB 11643)."""
    value = value.upper()
    if not _ID_RE.fullmatch(value):
        return "must be 18 characters: 17 digits and a final digit or X"
    try:
        birth = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return f"contains an impossible birth date ({value[6:14]})"
    if birth < dt.date(1900, 1, 1) or birth > (today or dt.date.today()):
        return f"contains a birth date out of range ({birth.isoformat()})"
    if cn_id_check_digit(value[:17]) != value[17]:
        return "has a wrong check digit; please re-check the number"
    return None


def make_cn_id(area: str, birth: dt.date, sequence: int) -> str:
    """Build a valid ID number (for sample data and tests)."""
    first17 = f"{area}{birth:%Y%m%d}{sequence:03d}"
    return first17 + cn_id_check_digit(first17)
