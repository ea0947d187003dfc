"""ISO 8601 durations on a business calendar.

``P3D`` is three *working days*; ``PT2H`` is two hours of *working time*;
``P1DT4H`` is one working day, then four working hours. Years, months and
weeks are refused: on a business calendar they have no single meaning (is a
week five working days or seven calendar days?), so a process designer
writes the working days meant instead.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from engine.calendar.errors import CalendarDefinitionError

# Ten years either way: a due time further out is a typo, and bounding it
# keeps the day-by-day walk of the calendar short.
MAX_DAYS = 3660
MAX_TIME = dt.timedelta(days=MAX_DAYS)

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$"
)
_EXAMPLES = "e.g. PT2H (two working hours), P3D (three working days) or P1DT4H"


@dataclass(frozen=True)
class BusinessDuration:
    """Whole working days, then working time."""

    days: int = 0
    time: dt.timedelta = dt.timedelta(0)

    def __post_init__(self) -> None:
        if self.days < 0 or self.time < dt.timedelta(0):
            raise CalendarDefinitionError("A duration cannot be negative.")
        if self.days > MAX_DAYS or self.time > MAX_TIME:
            raise CalendarDefinitionError(
                f"Duration {self} is longer than ten years; check for a typo."
            )

    def __str__(self) -> str:
        seconds = Decimal(self.time.days * 86400 + self.time.seconds) + Decimal(
            self.time.microseconds
        ) / Decimal(1_000_000)
        hours, rest = divmod(seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        text = "P" + (f"{self.days}D" if self.days else "")
        clock = "".join(
            f"{value.normalize():f}{unit}"
            for value, unit in ((hours, "H"), (minutes, "M"), (seconds, "S"))
            if value
        )
        if clock:
            text += "T" + clock
        return text if text != "P" else "PT0S"


def parse_duration(text: str) -> BusinessDuration:
    """Parse ``PnD``, ``PTnHnMnS`` or both (``P1DT4H``); see the module doc for the rules.

    Only the last time component may have a fraction (``PT1.5H``), as in ISO 8601.
    """
    if not isinstance(text, str):
        raise CalendarDefinitionError(f"A duration must be text such as PT2H, not {text!r}.")
    value = text.strip().upper()
    match = _DURATION.match(value)
    if not match or value in ("P", "PT") or value.endswith("T"):
        raise CalendarDefinitionError(f"{text!r} is not a duration; {_refusal_hint(value)}.")
    parts = match.groupdict()
    fractions = [name for name in ("hours", "minutes", "seconds") if _has_fraction(parts[name])]
    if fractions and _any_after(parts, fractions[0]):
        raise CalendarDefinitionError(
            f"In {text!r} only the last part may have a fraction ({_EXAMPLES})."
        )
    try:
        time = dt.timedelta(
            hours=_number(parts["hours"]),
            minutes=_number(parts["minutes"]),
            seconds=_number(parts["seconds"]),
        )
    except (OverflowError, InvalidOperation) as exc:
        raise CalendarDefinitionError(f"Duration {text!r} is too long.") from exc
    days = int(parts["days"] or 0)
    if days > MAX_DAYS:
        raise CalendarDefinitionError(f"Duration {text!r} is longer than ten years.")
    return BusinessDuration(days=days, time=time)


def _refusal_hint(value: str) -> str:
    date_part = value.split("T", 1)[0]
    if value.startswith("P") and ("Y" in date_part or "M" in date_part):
        return (
            "years and months have no fixed length in working days; write the working days"
            " meant, e.g. P20D"
        )
    if value.startswith("P") and "W" in date_part:
        return "weeks are ambiguous on a business calendar; write working days, e.g. P5D"
    if value.startswith("-"):
        return "a duration cannot be negative"
    if re.search(r"\d[.,]\d*D", date_part):
        return "days must be whole working days; write P1DT4H rather than P1.5D"
    return f"write an ISO 8601 duration, {_EXAMPLES}"


def _has_fraction(part: str | None) -> bool:
    return part is not None and ("." in part or "," in part)


def _any_after(parts: dict[str, str | None], name: str) -> bool:
    order = ("hours", "minutes", "seconds")
    return any(parts[later] is not None for later in order[order.index(name) + 1 :])


def _number(part: str | None) -> float:
    if part is None:
        return 0.0
    # Decimal first: float("1e5") would accept what the pattern already refused.
    return float(Decimal(part.replace(",", ".")))
