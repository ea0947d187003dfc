"""ISO 8601 durations and calendars from configuration."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.calendar import (
    BusinessDuration,
    CalendarDefinitionError,
    calendar_from_config,
    parse_duration,
)

H = dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "days", "time"),
    [
        ("PT2H", 0, 2 * H),
        ("P3D", 3, dt.timedelta(0)),
        ("P1DT4H", 1, 4 * H),
        ("PT90M", 0, 90 * dt.timedelta(minutes=1)),
        ("PT1H30M15S", 0, dt.timedelta(hours=1, minutes=30, seconds=15)),
        ("PT1.5H", 0, dt.timedelta(hours=1, minutes=30)),
        ("PT0,5S", 0, dt.timedelta(milliseconds=500)),
        (" pt2h ", 0, 2 * H),
        ("P0D", 0, dt.timedelta(0)),
    ],
)
def test_durations_parse(text: str, days: int, time: dt.timedelta) -> None:
    assert parse_duration(text) == BusinessDuration(days=days, time=time)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("P1Y", "years and months"),
        ("P2M", "years and months"),
        ("P2W", "weeks are ambiguous"),
        ("P1.5D", "whole working days"),
        ("-PT1H", "cannot be negative"),
        ("PT", "ISO 8601"),
        ("P", "ISO 8601"),
        ("P1DT", "ISO 8601"),
        ("2h", "ISO 8601"),
        ("PT1.5H30M", "only the last part"),
        ("P99999D", "ten years"),
        ("PT99999999999999999999H", "too long"),
    ],
)
def test_bad_durations_say_what_to_write(text: str, hint: str) -> None:
    with pytest.raises(CalendarDefinitionError, match=hint):
        parse_duration(text)


def test_a_duration_that_is_not_text_is_refused() -> None:
    with pytest.raises(CalendarDefinitionError, match="must be text"):
        parse_duration(7200)  # type: ignore[arg-type]


@given(
    st.integers(min_value=0, max_value=3000),
    st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3000)),
)
def test_durations_print_as_iso_8601_and_parse_back(days: int, time: dt.timedelta) -> None:
    duration = BusinessDuration(days=days, time=time)
    assert parse_duration(str(duration)) == duration


def test_a_configured_calendar() -> None:
    calendar = calendar_from_config(
        {
            "time_zone": "Asia/Shanghai",
            "hours": {"mon-fri": ["08:30-12:00", "13:00-17:00"], "sat": ["09:00-12:00"]},
            "extra_holidays": ["2026-12-31"],
            "extra_workdays": ["2026-10-07"],
        }
    )
    assert calendar.is_working_day(dt.date(2026, 3, 7))  # Saturday, branch hours
    assert not calendar.is_working_day(dt.date(2026, 12, 31))
    assert calendar.is_working_day(dt.date(2026, 10, 7))
    assert [str(p) for p in calendar.periods_on(dt.date(2026, 2, 14))] == [
        "08:30-12:00",
        "13:00-17:00",
    ]


def test_a_configuration_for_a_year_the_package_does_not_know() -> None:
    calendar = calendar_from_config(
        {"holidays": "none", "extra_holidays": ["2027-01-01"], "years": [2027]}
    )
    assert not calendar.is_working_day(dt.date(2027, 1, 1))
    assert calendar.is_working_day(dt.date(2027, 1, 4))
    assert calendar_from_config({}).hours == calendar_from_config({"hours": None}).hours


def test_every_configuration_problem_is_reported_at_once() -> None:
    config: dict[str, Any] = {
        "time_zone": "Mars/Olympus",
        "holidays": "martian",
        "unknown_years": "guess",
        "hours": {"mon-fri": ["9-12"]},
        "extra_holidays": ["2026-13-01"],
        "years": ["2027"],
        "colour": "red",
    }
    with pytest.raises(CalendarDefinitionError) as caught:
        calendar_from_config(config)
    pointers = sorted(error.pointer for error in caught.value.errors)
    assert pointers == [
        "/colour",
        "/extra_holidays",
        "/holidays",
        "/hours",
        "/time_zone",
        "/unknown_years",
        "/years",
    ]
    assert "HH:MM-HH:MM" in str(caught.value)


def test_a_date_both_extra_holiday_and_extra_workday_is_refused() -> None:
    with pytest.raises(CalendarDefinitionError) as caught:
        calendar_from_config({"extra_holidays": ["2026-05-01"], "extra_workdays": ["2026-05-01"]})
    assert caught.value.errors[0].pointer == "/extra_workdays"
