"""Properties of working-time arithmetic, on national and on random calendars."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import BusinessCalendar, HolidayRules, WorkingHours

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = BusinessCalendar()
NIGHT = BusinessCalendar(
    hours=WorkingHours.uniform(["00:00-02:30", "08:00-12:00", "18:00-24:00"], weekdays=range(6)),
    holidays=HolidayRules.explicit(
        holidays=[dt.date(2025, 5, 1), dt.date(2025, 5, 2)], workdays=[dt.date(2025, 5, 4)]
    ),
    unknown_years="weekends",
)

instants = st.datetimes(
    min_value=dt.datetime(2025, 1, 1),
    max_value=dt.datetime(2025, 12, 31),
    timezones=st.just(SHANGHAI),
)
durations = st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=300))
calendars = st.sampled_from([CALENDAR, NIGHT])


@settings(max_examples=300, deadline=None)
@given(calendars, instants, durations)
def test_adding_then_measuring_gives_the_duration_back(
    calendar: BusinessCalendar, start: dt.datetime, duration: dt.timedelta
) -> None:
    end = calendar.add_working_time(start, duration)
    assert end >= start
    assert calendar.working_time_between(start, end) == duration


@settings(max_examples=300, deadline=None)
@given(calendars, instants, instants, durations, durations)
def test_a_later_start_or_a_longer_duration_never_ends_earlier(
    calendar: BusinessCalendar, a: dt.datetime, b: dt.datetime, c: dt.timedelta, d: dt.timedelta
) -> None:
    (early, late), (short, long) = sorted((a, b)), sorted((c, d))
    add = calendar.add_working_time
    assert add(early, short) <= add(early, long)
    assert add(early, short) <= add(late, short)


@settings(max_examples=200, deadline=None)
@given(calendars, instants, instants, instants)
def test_working_time_adds_up_over_consecutive_intervals(
    calendar: BusinessCalendar, a: dt.datetime, b: dt.datetime, c: dt.datetime
) -> None:
    first, middle, last = sorted((a, b, c))
    between = calendar.working_time_between
    assert between(first, middle) + between(middle, last) == between(first, last)
    assert between(first, last) <= last - first


@settings(max_examples=200, deadline=None)
@given(calendars, instants, st.integers(min_value=0, max_value=60), st.integers(0, 60))
def test_working_days_are_monotonic_and_land_on_working_days(
    calendar: BusinessCalendar, start: dt.datetime, m: int, n: int
) -> None:
    low, high = sorted((m, n))
    early, late = calendar.add_working_days(start, low), calendar.add_working_days(start, high)
    assert start <= early <= late
    if high:
        assert calendar.is_working_day(late.astimezone(SHANGHAI).date())
