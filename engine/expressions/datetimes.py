"""Date, time and duration functions.

``today()`` and ``now()`` read the evaluation's fixed clock (``Env.now``),
whose time zone the host chooses: ``today()`` is the date there. Date-times
parsed from text must carry an offset, since Formflow stores instants.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from typing import Any

from engine.expressions.durations import micros_to_duration, parse_duration
from engine.expressions.library import Env, Library, number_arg, text_arg, whole_arg
from engine.expressions.limits import Refusal
from engine.expressions.values import describe

DATES = Library()
_register = DATES.register


@_register("today()", "the current date (in the business time zone)", 0, 0, pure=False)
def _today(env: Env, args: Sequence[Any]) -> dt.date:
    return env.now.date()


@_register("now()", "the current date and time (with its time zone)", 0, 0, pure=False)
def _now(env: Env, args: Sequence[Any]) -> dt.datetime:
    return env.now


@_register(
    "date(text) or date(year, month, day)",
    "a date from '2025-10-01', from three numbers, or the date of a date and time",
    1,
    3,
)
def _date(env: Env, args: Sequence[Any]) -> dt.date:
    try:
        if len(args) == 3:
            year, month, day = (whole_arg(value, "date") for value in args)
            return dt.date(year, month, day)
        if len(args) == 1:
            (value,) = args
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            return dt.date.fromisoformat(text_arg(value, "date").strip())
    except (ValueError, OverflowError):
        raise Refusal(f"date() of {', '.join(describe(a) for a in args)}: no such date") from None
    raise Refusal("date() takes one text or three numbers (year, month, day)")


@_register(
    "datetime(text)",
    "a date and time from ISO 8601 text with an offset, e.g. '2025-10-01T09:00:00+08:00'",
    1,
    1,
)
def _datetime(env: Env, args: Sequence[Any]) -> dt.datetime:
    (value,) = args
    if isinstance(value, dt.datetime):
        return value
    text = text_arg(value, "datetime").strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Refusal(f"datetime() of {describe(value)}: not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise Refusal(f"datetime() of {describe(value)}: give a time zone offset, e.g. +08:00 or Z")
    return moment


def _amount(name: str, micros_per_unit: int) -> None:
    def impl(env: Env, args: Sequence[Any]) -> dt.timedelta:
        amount = number_arg(args[0], name)
        return micros_to_duration(decimal.Decimal(amount) * micros_per_unit)

    _register(f"{name}(n)", f"a duration of n {name} (n may be a decimal)", 1, 1)(impl)


_amount("days", 86_400 * 10**6)
_amount("hours", 3_600 * 10**6)
_amount("minutes", 60 * 10**6)


@_register("duration(text)", "a duration from ISO 8601 text: 'PT48H', 'P3D', 'P1W'", 1, 1)
def _duration(env: Env, args: Sequence[Any]) -> dt.timedelta:
    return parse_duration(text_arg(args[0], "duration"))


def _part(name: str, read: Callable[[dt.date], int]) -> None:
    def impl(env: Env, args: Sequence[Any]) -> int:
        (value,) = args
        if not isinstance(value, dt.date):
            raise Refusal(f"{name}() needs a date; got {describe(value)}")
        return read(value)

    _register(f"{name}(date)", f"the {name} of a date or a date and time", 1, 1)(impl)


_part("year", lambda value: value.year)
_part("month", lambda value: value.month)
_part("day", lambda value: value.day)
