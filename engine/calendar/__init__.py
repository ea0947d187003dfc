"""Business calendar: working days, working hours and due times on them.

Chinese public holidays and make-up working days come from the
``chinese-calendar`` package behind :class:`HolidayRules`, so deployments
(and tests) can supply or override them. See ``docs/calendar.md``.
"""

from engine.calendar.business import BusinessCalendar, UnknownYears
from engine.calendar.config import calendar_from_config
from engine.calendar.duration import BusinessDuration, parse_duration
from engine.calendar.errors import CalendarCoverageError, CalendarDefinitionError
from engine.calendar.holidays import HolidayRules
from engine.calendar.hours import Period, WorkingHours

__all__ = [
    "BusinessCalendar",
    "BusinessDuration",
    "CalendarCoverageError",
    "CalendarDefinitionError",
    "HolidayRules",
    "Period",
    "UnknownYears",
    "WorkingHours",
    "calendar_from_config",
    "parse_duration",
]
