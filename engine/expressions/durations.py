"""ISO 8601 durations (``PT48H``, ``P3D``, ``P1W``) as exact ``timedelta``.

Years and months have no fixed length, so they are refused: a due time of
"one month" belongs to the business calendar, not to this language.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re

from engine.expressions.limits import Refusal

_DURATION = re.compile(
    r"(?P<sign>-)?P(?:(?P<weeks>\d+(?:[.,]\d+)?)W|"
    r"(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?)",
    re.ASCII,
)
_CALENDAR_UNITS = re.compile(r"-?P[\d.,]*[YM]", re.ASCII)
_MICROS = {
    "weeks": 7 * 86_400 * 10**6,
    "days": 86_400 * 10**6,
    "hours": 3_600 * 10**6,
    "minutes": 60 * 10**6,
    "seconds": 10**6,
}
MAX_DURATION_TEXT = 64


def parse_duration(text: str) -> dt.timedelta:
    candidate = text.strip().upper()
    match = _DURATION.fullmatch(candidate) if len(candidate) <= MAX_DURATION_TEXT else None
    if match is None or not any(match.group(unit) for unit in _MICROS) or candidate.endswith("T"):
        if _CALENDAR_UNITS.match(candidate):
            raise Refusal(
                f"the duration {text!r} uses years or months, which have no fixed length; "
                "use days, e.g. P30D"
            )
        raise Refusal(f"{text!r} is not an ISO 8601 duration such as PT48H, P3D, P1W or P1DT12H")
    micros = decimal.Decimal(0)
    for unit, factor in _MICROS.items():
        amount = match.group(unit)
        if amount is not None:
            micros += decimal.Decimal(amount.replace(",", ".")) * factor
    if match.group("sign"):
        micros = -micros
    return micros_to_duration(micros)


def micros_to_duration(micros: decimal.Decimal | int) -> dt.timedelta:
    try:
        return dt.timedelta(microseconds=int(micros))
    except OverflowError:
        raise Refusal("the duration is out of range") from None


def format_duration(delta: dt.timedelta) -> str:
    """The ISO 8601 text of a duration, days and a time part (``P2DT3H``)."""
    sign = "-" if delta < dt.timedelta(0) else ""
    delta = abs(delta)
    hours, rest = divmod(delta.seconds, 3_600)
    minutes, seconds = divmod(rest, 60)
    text = "P" + (f"{delta.days}D" if delta.days else "")
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if seconds or delta.microseconds:
        fraction = f".{delta.microseconds:06d}".rstrip("0") if delta.microseconds else ""
        time += f"{seconds}{fraction}S"
    if time:
        text += "T" + time
    if text == "P":
        text = "PT0S"
    return sign + text
