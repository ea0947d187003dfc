"""Errors of the business calendar, worded for the people who can fix them."""

from __future__ import annotations

from engine.errors import DefinitionError, FormflowError


class CalendarDefinitionError(DefinitionError):
    """A duration, working-hours setting or calendar configuration is malformed.

    Raised where the text was written (a BPMN ``dueIn``, a configuration
    file), so the message quotes it and says what a valid one looks like.
    """

    title = "Invalid business calendar setting"


class CalendarCoverageError(FormflowError):
    """A date falls in a year for which the calendar has no holiday data.

    Counting such a year as weekdays-only would silently move due times past
    public holidays, so it is refused unless the calendar was configured with
    the documented weekends-only fallback.
    """

    title = "Business calendar has no data for this year"

    def __init__(self, message: str, *, year: int) -> None:
        super().__init__(message)
        self.year = year
