"""Working days: national holidays, make-up working days, explicit rules, unknown years."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.calendar import (
    BusinessCalendar,
    CalendarCoverageError,
    CalendarDefinitionError,
    HolidayRules,
    WorkingHours,
)
from engine.errors import DefinitionError, FormflowError

D = dt.date
CALENDAR = BusinessCalendar()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        # Spring Festival 2025: 28 Jan - 4 Feb off; Sunday 26 Jan and Saturday 8 Feb worked.
        (D(2025, 1, 26), True),
        (D(2025, 1, 27), True),
        (D(2025, 1, 28), False),
        (D(2025, 2, 4), False),
        (D(2025, 2, 5), True),
        (D(2025, 2, 8), True),
        (D(2025, 2, 9), False),
        # National Day 2025: 1-8 Oct off; Sunday 28 Sep and Saturday 11 Oct worked.
        (D(2025, 9, 28), True),
        (D(2025, 10, 1), False),
        (D(2025, 10, 8), False),
        (D(2025, 10, 9), True),
        (D(2025, 10, 11), True),
        (D(2025, 10, 12), False),
        # Spring Festival 2026: 15-23 Feb off; Saturdays 14 and 28 Feb worked.
        (D(2026, 2, 13), True),
        (D(2026, 2, 14), True),
        (D(2026, 2, 16), False),
        (D(2026, 2, 23), False),
        (D(2026, 2, 24), True),
        (D(2026, 2, 28), True),
        # National Day 2026: 1-7 Oct off; Sunday 20 Sep and Saturday 10 Oct worked.
        (D(2026, 9, 20), True),
        (D(2026, 10, 1), False),
        (D(2026, 10, 7), False),
        (D(2026, 10, 8), True),
        (D(2026, 10, 10), True),
        # An ordinary weekend and weekday.
        (D(2026, 3, 7), False),
        (D(2026, 3, 9), True),
    ],
)
def test_chinese_holidays_and_make_up_days(day: dt.date, working: bool) -> None:
    assert CALENDAR.is_working_day(day) is working


def test_a_year_the_package_does_not_know_is_refused_with_what_to_do() -> None:
    with pytest.raises(CalendarCoverageError) as caught:
        CALENDAR.is_working_day(D(2031, 3, 3))
    assert caught.value.year == 2031
    assert "2031" in str(caught.value) and "2004–2026" in str(caught.value)
    assert isinstance(caught.value, FormflowError)


def test_the_weekends_only_fallback_counts_an_unknown_year_by_weekday() -> None:
    calendar = BusinessCalendar(unknown_years="weekends")
    assert calendar.is_working_day(D(2031, 1, 1))  # a Wednesday, whatever the holiday
    assert not calendar.is_working_day(D(2031, 1, 4))  # Saturday
    assert not calendar.is_working_day(D(2026, 10, 1))  # known years keep their holidays


def test_explicit_rules_replace_the_national_ones() -> None:
    rules = HolidayRules.explicit(holidays=[D(2030, 5, 1)], workdays=[D(2030, 5, 4)])
    calendar = BusinessCalendar(holidays=rules)
    assert rules.years == {2030}
    assert not calendar.is_working_day(D(2030, 5, 1))
    assert calendar.is_working_day(D(2030, 5, 4))  # Saturday
    assert calendar.is_working_day(D(2030, 5, 2))
    with pytest.raises(CalendarCoverageError):
        calendar.is_working_day(D(2029, 5, 2))


def test_a_bank_lays_its_own_days_over_the_national_ones() -> None:
    rules = HolidayRules.chinese().overridden(
        holidays=[D(2026, 12, 31)],
        workdays=[D(2026, 10, 7)],
        years=[2027],
    )
    calendar = BusinessCalendar(holidays=rules)
    assert not calendar.is_working_day(D(2026, 12, 31))
    assert calendar.is_working_day(D(2026, 10, 7))
    assert calendar.is_working_day(D(2027, 1, 1))  # declared known, and nothing listed
    assert not calendar.is_working_day(D(2026, 10, 6))


def test_a_date_cannot_be_both_a_holiday_and_a_workday() -> None:
    with pytest.raises(CalendarDefinitionError, match="2030-05-01"):
        HolidayRules.explicit(holidays=[D(2030, 5, 1)], workdays=[D(2030, 5, 1)])


def test_make_up_days_work_mondays_hours_unless_told_otherwise() -> None:
    hours = WorkingHours.weekly({"mon": ["08:30-12:00"], "tue": ["09:00-17:00"]})
    calendar = BusinessCalendar(hours=hours)
    assert [str(p) for p in calendar.periods_on(D(2026, 2, 14))] == ["08:30-12:00"]
    own = BusinessCalendar(
        hours=WorkingHours.weekly({"mon": ["09:00-17:00"]}, makeup=["10:00-15:00"])
    )
    assert [str(p) for p in own.periods_on(D(2026, 2, 14))] == ["10:00-15:00"]
    assert not own.is_working_day(D(2026, 3, 10))  # Tuesday: no hours that weekday


def test_weekend_hours_make_weekends_working_days_except_on_holidays() -> None:
    branch = BusinessCalendar(hours=WorkingHours.uniform(["09:00-17:00"], weekdays=range(7)))
    assert branch.is_working_day(D(2026, 3, 7))
    assert not branch.is_working_day(D(2026, 10, 3))  # Saturday inside National Day


def test_errors_are_domain_errors_a_user_can_act_on() -> None:
    with pytest.raises(DefinitionError, match="HH:MM-HH:MM"):
        WorkingHours.weekly({"mon": ["9-12"]})
    with pytest.raises(CalendarDefinitionError, match="overlap or touch"):
        WorkingHours.weekly({"mon": ["09:00-12:00", "11:00-13:00"]})
    with pytest.raises(CalendarDefinitionError, match="not a weekday"):
        WorkingHours.weekly({"someday": ["09:00-12:00"]})
    with pytest.raises(CalendarDefinitionError, match="impossible time"):
        WorkingHours.weekly({"mon": ["09:00-24:30"]})
    with pytest.raises(CalendarDefinitionError, match="no working period"):
        WorkingHours.weekly({})
    with pytest.raises(CalendarDefinitionError, match="takes a date"):
        CALENDAR.is_working_day(dt.datetime(2026, 3, 9, 10, 0))


def test_a_calendar_without_working_time_stops_with_an_error() -> None:
    every_day = [D(2030, 1, 1) + dt.timedelta(days=n) for n in range(2 * 365)]
    calendar = BusinessCalendar(holidays=HolidayRules.explicit(holidays=every_day))
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(CalendarDefinitionError, match="no working time for a year"):
        calendar.add_working_time(start, dt.timedelta(hours=1))
