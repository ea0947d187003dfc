"""A business calendar from plain configuration (a JSON or TOML document).

```json
{
  "time_zone": "Asia/Shanghai",
  "holidays": "chinese",
  "unknown_years": "error",
  "hours": {"mon-fri": ["09:00-12:00", "13:30-17:30"], "makeup": ["09:00-12:00", "13:30-17:30"]},
  "extra_holidays": ["2026-12-31"],
  "extra_workdays": [],
  "years": []
}
```

Every key is optional; the defaults are the values above (``hours``
defaults to Monday to Friday 09:00-12:00 and 13:30-17:30). All problems are
reported at once, each with a JSON pointer into the document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.calendar.business import DEFAULT_TIME_ZONE, BusinessCalendar
from engine.calendar.errors import CalendarDefinitionError
from engine.calendar.holidays import HolidayRules
from engine.calendar.hours import PeriodsInput, WorkingHours
from engine.errors import ErrorDetail

KEYS = {
    "time_zone",
    "holidays",
    "unknown_years",
    "hours",
    "extra_holidays",
    "extra_workdays",
    "years",
}


def calendar_from_config(config: Mapping[str, Any]) -> BusinessCalendar:
    """Build and check a :class:`BusinessCalendar`; raise one error listing every problem."""
    errors: list[ErrorDetail] = []

    def check(pointer: str, build: Any, *args: Any) -> Any:
        try:
            return build(*args)
        except CalendarDefinitionError as exc:
            errors.append(ErrorDetail(pointer, exc.message))
            return None

    for key in sorted(set(config) - KEYS):
        errors.append(ErrorDetail(f"/{key}", f"Unknown setting; use one of {sorted(KEYS)}."))
    zone = check("/time_zone", _zone, config.get("time_zone", DEFAULT_TIME_ZONE))
    hours = check("/hours", _hours, config.get("hours"))
    extra_holidays = check("/extra_holidays", _dates, config.get("extra_holidays", []))
    extra_workdays = check("/extra_workdays", _dates, config.get("extra_workdays", []))
    years = check("/years", _years, config.get("years", []))
    base = check("/holidays", _base_rules, config.get("holidays", "chinese"))
    unknown = config.get("unknown_years", "error")
    if unknown not in ("error", "weekends"):
        errors.append(ErrorDetail("/unknown_years", "Use 'error' or 'weekends'."))
    rules = None
    if base is not None and None not in (extra_holidays, extra_workdays, years):
        rules = check(
            "/extra_workdays",
            lambda: base.overridden(holidays=extra_holidays, workdays=extra_workdays, years=years),
        )
    if errors or rules is None:
        raise CalendarDefinitionError("The business calendar configuration is invalid.", errors)
    return BusinessCalendar(holidays=rules, hours=hours, time_zone=zone, unknown_years=unknown)


def _zone(name: Any) -> dt.tzinfo:
    if not isinstance(name, str) or not name:
        raise CalendarDefinitionError("Give an IANA time zone name such as Asia/Shanghai.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarDefinitionError(
            f"{name!r} is not a known IANA time zone (e.g. Asia/Shanghai)."
        ) from exc


def _base_rules(name: Any) -> HolidayRules:
    if name == "chinese":
        return HolidayRules.chinese()
    if name == "none":
        return HolidayRules.explicit()
    raise CalendarDefinitionError(
        "Use 'chinese' (national holidays) or 'none' (only the extra days given here)."
    )


def _hours(value: Any) -> WorkingHours:
    if value is None:
        return WorkingHours()
    if not isinstance(value, Mapping) or not value:
        raise CalendarDefinitionError(
            'Give working periods per weekday, e.g. {"mon-fri": ["09:00-12:00", "13:30-17:30"]}.'
        )
    days: dict[str, PeriodsInput] = {}
    for key, periods in value.items():
        if not isinstance(periods, list) or not all(isinstance(p, str) for p in periods):
            raise CalendarDefinitionError(
                f'{key}: give a list of periods such as ["09:00-12:00", "13:30-17:30"].'
            )
        days[str(key)] = periods
    makeup = days.pop("makeup", None)
    return WorkingHours.weekly(days, makeup=makeup)


def _dates(values: Any) -> list[dt.date]:
    if not isinstance(values, list):
        raise CalendarDefinitionError('Give a list of dates such as ["2027-01-01"].')
    result = []
    for value in values:
        try:
            result.append(dt.date.fromisoformat(value))
        except (TypeError, ValueError) as exc:
            raise CalendarDefinitionError(f"{value!r} is not a date (YYYY-MM-DD).") from exc
    return result


def _years(values: Any) -> list[int]:
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 1900 <= v <= 2200 for v in values
    ):
        raise CalendarDefinitionError(
            "Give the years the extra days describe completely, e.g. [2027]."
        )
    return list(values)
