"""Working time: hours, lunch breaks, holidays, midnight, days, durations."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from engine.calendar import (
    BusinessCalendar,
    CalendarDefinitionError,
    HolidayRules,
    WorkingHours,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = BusinessCalendar()
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def local(value: dt.datetime) -> dt.datetime:
    return value.astimezone(SHANGHAI)


def test_results_are_utc() -> None:
    result = CALENDAR.add_working_time(at(2026, 3, 9, 9, 0), H)
    assert result.tzinfo is dt.UTC
    assert result == dt.datetime(2026, 3, 9, 2, 0, tzinfo=dt.UTC)


def test_lunch_break_does_not_count() -> None:
    assert local(CALENDAR.add_working_time(at(2026, 3, 9, 11, 0), 2 * H)) == at(2026, 3, 9, 14, 30)
    assert CALENDAR.working_time_between(at(2026, 3, 9, 11, 30), at(2026, 3, 9, 14, 0)) == 60 * M


def test_an_end_of_period_result_stays_on_that_day() -> None:
    assert local(CALENDAR.add_working_time(at(2026, 3, 9, 15, 30), 2 * H)) == at(2026, 3, 9, 17, 30)
    assert local(CALENDAR.add_working_time(at(2026, 3, 9, 15, 30), 2 * H + M)) == at(
        2026, 3, 10, 9, 1
    )


def test_friday_afternoon_before_the_spring_festival_ends_after_it() -> None:
    # Friday 2025-01-24, then the weekend, Sunday 26 Jan is a make-up working day.
    assert local(CALENDAR.add_working_time(at(2025, 1, 24, 16, 30), 2 * H)) == at(
        2025, 1, 26, 10, 0
    )
    # Monday 27 Jan is the last working day before the holiday (28 Jan - 4 Feb).
    assert local(CALENDAR.add_working_time(at(2025, 1, 27, 16, 30), 2 * H)) == at(2025, 2, 5, 10, 0)


def test_friday_before_the_2026_spring_festival_runs_on_the_make_up_saturday() -> None:
    assert local(CALENDAR.add_working_time(at(2026, 2, 13, 16, 30), 2 * H)) == at(
        2026, 2, 14, 10, 0
    )
    assert local(CALENDAR.add_working_time(at(2026, 2, 14, 16, 30), 2 * H)) == at(
        2026, 2, 24, 10, 0
    )


def test_national_day_2025_and_its_make_up_days() -> None:
    start, end = at(2025, 9, 30, 9, 0), at(2025, 10, 11, 12, 0)
    # 30 Sep, 9 Oct, 10 Oct (7 hours each) and the make-up Saturday morning.
    assert CALENDAR.working_time_between(start, end) == 24 * H
    assert CALENDAR.working_time_between(end, start) == -24 * H
    assert local(CALENDAR.add_working_time(start, 24 * H)) == end


def test_national_day_2026() -> None:
    # Wednesday 30 Sep 2026 16:30 + 2h: 1-7 Oct off, Thursday 8 Oct.
    assert local(CALENDAR.add_working_time(at(2026, 9, 30, 16, 30), 2 * H)) == at(
        2026, 10, 8, 10, 0
    )


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (at(2026, 3, 9, 7, 0), at(2026, 3, 9, 11, 0)),  # before opening
        (at(2026, 3, 9, 12, 45), at(2026, 3, 9, 15, 30)),  # in the lunch break
        (at(2026, 3, 9, 20, 0), at(2026, 3, 10, 11, 0)),  # after closing
        (at(2026, 3, 7, 10, 0), at(2026, 3, 9, 11, 0)),  # on Saturday
        (at(2026, 10, 3, 10, 0), at(2026, 10, 8, 11, 0)),  # during National Day
    ],
)
def test_durations_started_outside_working_hours(start: dt.datetime, expected: dt.datetime) -> None:
    assert local(CALENDAR.add_working_time(start, 2 * H)) == expected


def test_a_zero_duration_is_the_start_itself() -> None:
    start = at(2026, 3, 7, 10, 0)
    assert CALENDAR.add_working_time(start, dt.timedelta(0)) == start
    assert local(CALENDAR.next_working_time(start)) == at(2026, 3, 9, 9, 0)


def test_working_hours_across_midnight() -> None:
    night = BusinessCalendar(
        hours=WorkingHours.uniform(["00:00-02:00", "18:00-24:00"], weekdays=range(7)),
        holidays=HolidayRules.explicit(years=[2030]),
    )
    start = at(2030, 3, 4, 23, 0)
    assert local(night.add_working_time(start, 2 * H)) == at(2030, 3, 5, 1, 0)
    assert local(night.add_working_time(start, H)) == at(2030, 3, 5, 0, 0)
    assert night.working_time_between(start, at(2030, 3, 5, 19, 0)) == 4 * H


def test_a_working_period_may_end_at_midnight() -> None:
    late = BusinessCalendar(hours=WorkingHours.uniform(["20:00-24:00"]))
    # Friday 22:00, two hours to midnight, then Monday evening.
    assert local(late.add_working_time(at(2026, 3, 13, 22, 0), 3 * H)) == at(2026, 3, 16, 21, 0)


def test_counting_across_midnight_on_ordinary_hours() -> None:
    assert local(CALENDAR.add_working_time(at(2026, 3, 9, 17, 0), 7 * H)) == at(2026, 3, 10, 17, 0)
    assert CALENDAR.working_time_between(at(2026, 3, 9, 17, 0), at(2026, 3, 10, 9, 30)) == 60 * M


def test_another_zone_and_utc_inputs() -> None:
    utc_input = dt.datetime(2026, 3, 9, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai
    assert local(CALENDAR.add_working_time(utc_input, H)) == at(2026, 3, 9, 10, 0)
    berlin = BusinessCalendar(
        time_zone=ZoneInfo("Europe/Berlin"),
        hours=WorkingHours.uniform(["00:00-24:00"], weekdays=range(7)),
        holidays=HolidayRules.explicit(years=[2026]),
    )
    # The night clocks went forward (29 Mar 2026) had 23 hours.
    day = dt.datetime(2026, 3, 29, tzinfo=ZoneInfo("Europe/Berlin"))
    assert berlin.working_time_between(day, day + dt.timedelta(days=1)) == 23 * H


def test_asia_shanghai_has_no_daylight_saving() -> None:
    for month in range(1, 13):
        assert at(2026, month, 1, 12, 0).utcoffset() == 8 * H
    assert CALENDAR.working_time_between(at(2026, 3, 9, 0, 0), at(2026, 3, 14, 0, 0)) == 35 * H


def test_add_working_days_keeps_the_clock_time() -> None:
    assert local(CALENDAR.add_working_days(at(2026, 3, 9, 10, 15), 3)) == at(2026, 3, 12, 10, 15)
    # Over the 2026 Spring Festival: 13 Feb (Fri), 14 Feb (make-up Sat), 24 Feb (Tue).
    assert local(CALENDAR.add_working_days(at(2026, 2, 13, 10, 0), 2)) == at(2026, 2, 24, 10, 0)
    # The closing time is inside the day it closes.
    assert local(CALENDAR.add_working_days(at(2026, 3, 9, 17, 30), 1)) == at(2026, 3, 10, 17, 30)


def test_add_working_days_from_outside_working_hours() -> None:
    # Saturday counts from Monday 09:00; a lunch-break start from 13:30.
    assert local(CALENDAR.add_working_days(at(2026, 3, 7, 15, 0), 1)) == at(2026, 3, 10, 9, 0)
    assert local(CALENDAR.add_working_days(at(2026, 3, 9, 12, 30), 1)) == at(2026, 3, 10, 13, 30)
    assert local(CALENDAR.add_working_days(at(2026, 3, 9, 19, 0), 1)) == at(2026, 3, 11, 9, 0)


def test_add_working_days_lands_on_a_day_with_other_hours() -> None:
    short_friday = BusinessCalendar(
        hours=WorkingHours.weekly({"mon-thu": ["09:00-17:00"], "fri": ["09:00-12:00"]})
    )
    # Thursday 16:00 + 1 day: Friday closes at 12:00, so its closing time.
    assert local(short_friday.add_working_days(at(2026, 3, 12, 16, 0), 1)) == at(2026, 3, 13, 12, 0)


def test_durations_days_then_working_time() -> None:
    start = at(2026, 3, 9, 16, 0)
    assert local(CALENDAR.add(start, "P1D")) == at(2026, 3, 10, 16, 0)
    assert local(CALENDAR.add(start, "PT2H")) == at(2026, 3, 10, 9, 30)
    # Tuesday 16:00, then 1.5 hours that day and 2.5 on Wednesday morning.
    assert local(CALENDAR.add(start, "P1DT4H")) == at(2026, 3, 11, 11, 30)
    # PT24H is 24 hours of working time: more than three working days.
    assert local(CALENDAR.add(start, "PT24H")) == at(2026, 3, 13, 10, 30)


def test_thirty_working_days_are_counted_a_day_at_a_time() -> None:
    started = time.perf_counter()
    for _ in range(100):
        due = CALENDAR.add(at(2025, 12, 15, 10, 0), "P30D")
        CALENDAR.add_working_time(at(2025, 12, 15, 10, 0), 30 * 7 * H)
    assert time.perf_counter() - started < 1.0
    # 15 Dec + 30 working days, with New Year's Day (1-2 Jan) and make-up Sunday 4 Jan.
    assert local(due) == at(2026, 1, 27, 10, 0)


def test_bad_inputs_are_domain_errors() -> None:
    with pytest.raises(CalendarDefinitionError, match="no time zone"):
        CALENDAR.add_working_time(dt.datetime(2026, 3, 9, 9, 0), H)
    with pytest.raises(CalendarDefinitionError, match="negative"):
        CALENDAR.add_working_time(at(2026, 3, 9, 9, 0), -H)
    with pytest.raises(CalendarDefinitionError, match="negative"):
        CALENDAR.add_working_days(at(2026, 3, 9, 9, 0), -1)
    with pytest.raises(CalendarDefinitionError, match="not a duration"):
        CALENDAR.add(at(2026, 3, 9, 9, 0), "2 hours")
    with pytest.raises(CalendarDefinitionError):
        BusinessCalendar(unknown_years="holidays")  # type: ignore[arg-type]
