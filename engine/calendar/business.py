"""The business calendar: working days, working hours and due times.

All arithmetic is on instants: inputs are aware datetimes in any zone,
results are UTC. Working periods are turned into UTC instants day by day in
the calendar's zone, so a zone with daylight saving gets the right lengths
(Asia/Shanghai has none). Every loop here steps a day at a time, never a
minute, so adding 30 working days looks at about 45 days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from engine.calendar.duration import BusinessDuration, parse_duration
from engine.calendar.errors import CalendarCoverageError, CalendarDefinitionError
from engine.calendar.holidays import HolidayRules
from engine.calendar.hours import Period, WorkingHours

UnknownYears = Literal["error", "weekends"]
Span = tuple[dt.datetime, dt.datetime]

DEFAULT_TIME_ZONE = "Asia/Shanghai"
# A calendar without working time for a whole year is misconfigured; stop
# rather than walk on forever.
MAX_IDLE_DAYS = 370
_DAY = dt.timedelta(days=1)


def _chinese_rules() -> HolidayRules:
    return HolidayRules.chinese()


def _default_zone() -> dt.tzinfo:
    return ZoneInfo(DEFAULT_TIME_ZONE)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working time in one time zone, on working hours, around public holidays.

    ``unknown_years`` decides what a date outside ``holidays.years`` means:
    ``"error"`` (the default) raises :class:`CalendarCoverageError`;
    ``"weekends"`` counts it by weekday alone, as if it had no public holiday.
    """

    holidays: HolidayRules = field(default_factory=_chinese_rules)
    hours: WorkingHours = field(default_factory=WorkingHours)
    time_zone: dt.tzinfo = field(default_factory=_default_zone)
    unknown_years: UnknownYears = "error"

    def __post_init__(self) -> None:
        if self.unknown_years not in ("error", "weekends"):
            raise CalendarDefinitionError(
                f"unknown_years must be 'error' or 'weekends', not {self.unknown_years!r}."
            )

    # -- days -------------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` (a date in the calendar's zone) has working hours."""
        return bool(self.periods_on(day))

    def periods_on(self, day: dt.date) -> tuple[Period, ...]:
        """The working periods of ``day``: none on a rest day or public holiday."""
        if isinstance(day, dt.datetime):
            raise CalendarDefinitionError(
                "is_working_day takes a date; convert the datetime to the calendar's zone first."
            )
        kind = self.holidays.kind_of(day)
        if kind == "holiday":
            return ()
        if kind == "workday":
            return self.hours.makeup_periods
        if not self.holidays.covers(day.year) and self.unknown_years == "error":
            raise CalendarCoverageError(
                f"The business calendar has no public-holiday data for {day.year} (it knows"
                f" {self.holidays.describe_years()}). Install a newer chinese-calendar release,"
                f" add {day.year}'s holidays and make-up working days to the calendar"
                " configuration, or allow the weekends-only fallback.",
                year=day.year,
            )
        return self.hours.on_weekday(day.weekday())

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day strictly after ``day``."""
        for candidate in self._days_from(day + _DAY):
            if self.is_working_day(candidate):
                return candidate
        raise AssertionError("unreachable")  # pragma: no cover - _days_from raises

    # -- instants ---------------------------------------------------------------------

    def next_working_time(self, at: dt.datetime) -> dt.datetime:
        """``at`` if working time runs then, else the start of the next working period."""
        at = self._utc(at)
        for day in self._days_from(self._local_date(at)):
            for start, end in self._spans(day):
                if end > at:
                    return max(start, at)
        raise AssertionError("unreachable")  # pragma: no cover

    def add_working_time(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """The earliest instant by which ``duration`` of working time has run since ``start``.

        Counting starts at the first working moment at or after ``start``, so
        a duration started at night or on a holiday runs from the next working
        period. A result at the very end of a period stays there (2 hours from
        15:30 with hours to 17:30 is 17:30 that day, not 09:00 the next).
        """
        start = self._utc(start)
        if duration < dt.timedelta(0):
            raise CalendarDefinitionError("A working-time duration cannot be negative.")
        if not duration:
            return start
        remaining = duration
        for day in self._days_from(self._local_date(start)):
            for span_start, span_end in self._spans(day):
                if span_end <= start:
                    continue
                begin = max(span_start, start)
                available = span_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        raise AssertionError("unreachable")  # pragma: no cover

    def working_time_between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        """Working time from ``a`` to ``b``; negative when ``b`` is before ``a``."""
        a, b = self._utc(a), self._utc(b)
        if b < a:
            return -self.working_time_between(b, a)
        total = dt.timedelta(0)
        day, last = self._local_date(a), self._local_date(b)
        while day <= last:
            for span_start, span_end in self._spans(day):
                low, high = max(span_start, a), min(span_end, b)
                if high > low:
                    total += high - low
            day += _DAY
        return total

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        """The same clock time ``days`` working days after ``start``.

        A ``start`` outside working hours first moves to the next working
        moment (a request filed on Saturday counts from Monday 09:00). The
        result is always on the ``days``-th working day after that: if its
        hours differ and the clock time is not a working time that day, the
        result is the next working moment of that day, or its closing time.
        """
        start = self._utc(start)
        if days < 0:
            raise CalendarDefinitionError("A number of working days cannot be negative.")
        if not days:
            return start
        day, clock = self._anchor(start)
        for _ in range(days):
            day = self.next_working_day(day)
        for period in self.periods_on(day):
            if clock <= period.end_offset:
                return self._instant(day, max(clock, period.start_offset))
        return self._instant(day, self.periods_on(day)[-1].end_offset)

    def add(self, start: dt.datetime, duration: BusinessDuration | str) -> dt.datetime:
        """Due time of an ISO 8601 ``duration`` from ``start``: working days, then working time."""
        if isinstance(duration, str):
            duration = parse_duration(duration)
        return self.add_working_time(self.add_working_days(start, duration.days), duration.time)

    # -- internals --------------------------------------------------------------------

    def _utc(self, value: dt.datetime) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            raise CalendarDefinitionError(f"Expected a date and time, not {value!r}.")
        if value.tzinfo is None or value.utcoffset() is None:
            raise CalendarDefinitionError(
                f"The time {value.isoformat()} has no time zone; give an aware datetime"
                " (stored times are UTC)."
            )
        return value.astimezone(dt.UTC)

    def _local_date(self, at: dt.datetime) -> dt.date:
        return at.astimezone(self.time_zone).date()

    def _instant(self, day: dt.date, offset: dt.timedelta) -> dt.datetime:
        # Wall-clock time of ``day`` in the zone; an offset of 24:00 is the
        # next midnight. combine() rather than midnight + offset, so that a
        # daylight-saving day maps its wall clock correctly.
        days, rest = divmod(offset, _DAY)
        clock = (dt.datetime.min + rest).time()
        local = dt.datetime.combine(day + days * _DAY, clock, tzinfo=self.time_zone)
        return local.astimezone(dt.UTC)

    def _spans(self, day: dt.date) -> list[Span]:
        return [
            (self._instant(day, period.start_offset), self._instant(day, period.end_offset))
            for period in self.periods_on(day)
        ]

    def _anchor(self, start: dt.datetime) -> tuple[dt.date, dt.timedelta]:
        """The working day and local clock time a count of days starts from.

        The end of a period counts as inside it here, so that P1D from 17:30
        is 17:30 the next working day rather than 09:00 the day after.
        """
        local = start.astimezone(self.time_zone)
        day = local.date()
        clock = local - dt.datetime.combine(day, dt.time(0), tzinfo=local.tzinfo)
        if any(p.start_offset <= clock <= p.end_offset for p in self.periods_on(day)):
            return day, clock
        moved = self.next_working_time(start).astimezone(self.time_zone)
        day = moved.date()
        return day, moved - dt.datetime.combine(day, dt.time(0), tzinfo=moved.tzinfo)

    def _days_from(self, first: dt.date) -> Iterator[dt.date]:
        """``first`` and the days after it, until a long stretch without working time."""
        day, idle = first, 0
        while idle <= MAX_IDLE_DAYS:
            yield day
            idle = 0 if self.periods_on(day) else idle + 1
            day += _DAY
        raise CalendarDefinitionError(
            f"The business calendar has no working time for a year after {first.isoformat()};"
            " check its working hours and holidays."
        )
