"""Public holidays and make-up working days (调休), by date.

China moves working days around its public holidays: a holiday week is paid
for with working Saturdays or Sundays around it. So whether a date is a
working day needs two sets per year, the rest days and the make-up working
days, and they are only known once the State Council publishes them (each
December for the next year). :meth:`HolidayRules.chinese` reads them from
the ``chinese-calendar`` package; banks that publish their own calendar
supply them with :meth:`HolidayRules.explicit` or lay them over the national
ones with :meth:`HolidayRules.overridden`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import chinese_calendar

from engine.calendar.errors import CalendarDefinitionError

DayKind = Literal["holiday", "workday"]


@dataclass(frozen=True)
class HolidayRules:
    """Rest days and make-up working days, and the years they fully describe.

    ``holidays`` are days off whatever their weekday; ``workdays`` are days
    worked whatever their weekday. ``years`` are the years for which the two
    sets are complete: a date in any other year cannot be answered from them.
    """

    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()
    years: frozenset[int] = frozenset()
    source: str = "explicit"

    def __post_init__(self) -> None:
        both = sorted(self.holidays & self.workdays)
        if both:
            listed = ", ".join(day.isoformat() for day in both[:5])
            raise CalendarDefinitionError(
                f"A date cannot be both a holiday and a make-up working day: {listed}."
            )

    @classmethod
    def chinese(cls) -> HolidayRules:
        """China's national holidays as published by the State Council.

        Covers the years the installed ``chinese-calendar`` release knows
        (2004 to 2026 for 1.11); a newer release adds each year after it is
        announced.
        """
        holidays = frozenset(chinese_calendar.holidays)
        workdays = frozenset(chinese_calendar.workdays)
        known = [day.year for day in holidays]
        years = frozenset(range(min(known), max(known) + 1))
        return cls(holidays=holidays, workdays=workdays, years=years, source="chinese-calendar")

    @classmethod
    def explicit(
        cls,
        *,
        holidays: Iterable[dt.date] = (),
        workdays: Iterable[dt.date] = (),
        years: Iterable[int] | None = None,
    ) -> HolidayRules:
        """Rules given date by date.

        ``years`` defaults to the years of the given dates: list them
        explicitly when a year has no holiday at all, or it counts as unknown.
        """
        holiday_set, workday_set = frozenset(holidays), frozenset(workdays)
        if years is None:
            years = {day.year for day in holiday_set | workday_set}
        return cls(holidays=holiday_set, workdays=workday_set, years=frozenset(years))

    def overridden(
        self,
        *,
        holidays: Iterable[dt.date] = (),
        workdays: Iterable[dt.date] = (),
        years: Iterable[int] = (),
    ) -> HolidayRules:
        """These rules with some dates decided otherwise (a bank's own days off or on).

        A date given here wins over the same date in these rules; ``years``
        adds years that the given dates now describe completely.
        """
        extra_holidays, extra_workdays = frozenset(holidays), frozenset(workdays)
        return HolidayRules(
            holidays=(self.holidays - extra_workdays) | extra_holidays,
            workdays=(self.workdays - extra_holidays) | extra_workdays,
            years=self.years | frozenset(years),
            source=f"{self.source}+overrides",
        )

    def covers(self, year: int) -> bool:
        return year in self.years

    def kind_of(self, day: dt.date) -> DayKind | None:
        """``"holiday"`` or ``"workday"`` if the rules decide ``day``; None if its weekday does."""
        if day in self.holidays:
            return "holiday"
        if day in self.workdays:
            return "workday"
        return None

    def describe_years(self) -> str:
        if not self.years:
            return "no year"
        low, high = min(self.years), max(self.years)
        if len(self.years) == high - low + 1:
            return f"{low}–{high}" if low != high else str(low)
        return ", ".join(str(year) for year in sorted(self.years))
