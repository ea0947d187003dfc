"""Working hours: the periods of the day in which working time runs.

Periods are wall-clock times in the calendar's time zone, per weekday, with
minute precision; ``24:00`` ends a period at midnight, so a night shift is
written as ``18:00-24:00`` on one day and ``00:00-02:00`` on the next.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engine.calendar.errors import CalendarDefinitionError

MINUTES_PER_DAY = 24 * 60
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, order=True)
class Period:
    """``start`` to ``end`` in minutes after local midnight; ``end`` may be 1440 (24:00)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise CalendarDefinitionError(
                f"Working period {_clock(self.start)}-{_clock(self.end)} is not a period of one"
                " day: it must start before it ends, between 00:00 and 24:00."
            )

    @classmethod
    def parse(cls, text: str) -> Period:
        """``"09:00-12:00"``; ``"18:00-24:00"`` for a period that ends at midnight."""
        match = _PERIOD.match(text)
        if not match:
            raise CalendarDefinitionError(
                f"Working period {text!r} is not of the form HH:MM-HH:MM, e.g. 09:00-12:00."
            )
        start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
        if start_m > 59 or end_m > 59 or start_h > 23 or end_h > 24 or (end_h == 24 and end_m):
            raise CalendarDefinitionError(
                f"Working period {text!r} has an impossible time of day (00:00 to 24:00)."
            )
        return cls(start_h * 60 + start_m, end_h * 60 + end_m)

    @property
    def start_offset(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.start)

    @property
    def end_offset(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.end)

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


PeriodsInput = Iterable[Period | str]


def periods(values: PeriodsInput, *, where: str = "") -> tuple[Period, ...]:
    """Periods of one day, sorted; overlapping or touching periods are refused.

    Touching periods (09:00-12:00, 12:00-13:00) are almost always a typo for
    a lunch break; write 09:00-13:00 when that is meant.
    """
    result = sorted(value if isinstance(value, Period) else Period.parse(value) for value in values)
    for before, after in itertools.pairwise(result):
        if after.start <= before.end:
            place = f" on {where}" if where else ""
            raise CalendarDefinitionError(
                f"Working periods {before} and {after}{place} overlap or touch; merge them"
                " into one period or leave a break between them."
            )
    return tuple(result)


STANDARD_PERIODS = periods(["09:00-12:00", "13:30-17:30"])


def _standard_week() -> tuple[tuple[Period, ...], ...]:
    return (STANDARD_PERIODS,) * 5 + ((), ())


@dataclass(frozen=True)
class WorkingHours:
    """Working periods per weekday (Monday first) and on make-up working days.

    A weekday without periods is a weekly rest day. A make-up working day
    (调休, usually a Saturday or Sunday) works ``makeup`` periods: by
    default Monday's, the ordinary working day it stands in for.
    """

    week: tuple[tuple[Period, ...], ...] = field(default_factory=_standard_week)
    makeup: tuple[Period, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise CalendarDefinitionError("Working hours need one entry per weekday, Monday first.")
        if not any(self.week):
            raise CalendarDefinitionError(
                "Working hours have no working period on any weekday; give at least one."
            )
        if self.makeup is None:
            first = next(day for day in self.week if day)
            object.__setattr__(self, "makeup", self.week[0] or first)
        elif not self.makeup:
            raise CalendarDefinitionError(
                "Make-up working days need working periods; leave them out to use Monday's."
            )

    @classmethod
    def weekly(
        cls,
        days: Mapping[int, PeriodsInput] | Mapping[str, PeriodsInput],
        *,
        makeup: PeriodsInput | None = None,
    ) -> WorkingHours:
        """From ``{weekday: periods}``.

        A weekday is 0-6 (Monday 0), a name (``"mon"`` or ``"monday"``) or a
        range of names (``"mon-fri"``). Weekdays left out are rest days.
        """
        week: list[tuple[Period, ...] | None] = [None] * 7
        for key, values in days.items():
            for index in weekday_range(key):
                if week[index] is not None:
                    raise CalendarDefinitionError(
                        f"{WEEKDAY_NAMES[index]} is given working hours twice; give them once."
                    )
                week[index] = periods(values, where=WEEKDAY_NAMES[index])
        return cls(
            week=tuple(day or () for day in week),
            makeup=None if makeup is None else periods(makeup, where="make-up working days"),
        )

    @classmethod
    def uniform(
        cls, values: PeriodsInput = STANDARD_PERIODS, *, weekdays: Iterable[int] = range(5)
    ) -> WorkingHours:
        """The same periods on each of ``weekdays`` (Monday to Friday by default)."""
        return cls.weekly(dict.fromkeys(weekdays, tuple(values)))

    def on_weekday(self, weekday: int) -> tuple[Period, ...]:
        return self.week[weekday]

    @property
    def makeup_periods(self) -> tuple[Period, ...]:
        assert self.makeup is not None  # set in __post_init__
        return self.makeup


def weekday_range(key: int | str) -> range:
    """``"mon-fri"`` → 0..4; a single weekday → itself."""
    if isinstance(key, str) and "-" in key:
        first, _, last = key.partition("-")
        low, high = weekday_index(first), weekday_index(last)
        if high < low:
            raise CalendarDefinitionError(
                f"{key}: a range of weekdays runs forwards, e.g. mon-fri."
            )
        return range(low, high + 1)
    index = weekday_index(key)
    return range(index, index + 1)


def weekday_index(key: int | str) -> int:
    if isinstance(key, int) and 0 <= key <= 6:
        return key
    if isinstance(key, str):
        name = key.strip().lower()
        for index, (short, full) in enumerate(zip(WEEKDAY_NAMES, _FULL_NAMES, strict=True)):
            if name in (short, full):
                return index
    raise CalendarDefinitionError(
        f"{key!r} is not a weekday; use mon, tue, wed, thu, fri, sat or sun (or 0-6, Monday 0)."
    )
