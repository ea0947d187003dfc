"""The whitelist of functions an expression may call: ``FUNCTIONS``.

Each entry carries its signature and a one-line summary; ``docs/expressions.md``
lists them, and a test checks that every function is documented there. Arity
is checked by ``parse``, argument types when called. Date and time functions
live in ``datetimes``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable, Mapping, Sequence, Set
from typing import Any

from engine.expressions.datetimes import DATES
from engine.expressions.durations import format_duration
from engine.expressions.library import (
    Env,
    Function,
    Library,
    list_arg,
    number_arg,
    text_arg,
    whole_arg,
)
from engine.expressions.limits import (
    MAX_DECIMAL_EXPONENT,
    MAX_INT_BITS,
    Refusal,
    check_decimal,
    check_int,
    check_text_length,
)
from engine.expressions.values import admit, describe, member, order, truth

MAX_ROUND_DIGITS = 18
_INT_TEXT = re.compile(r"[+-]?\d{1,80}", re.ASCII)

GENERAL = Library()
_register = GENERAL.register


@_register(
    "len(value)", "number of characters of a text, items of a list or keys of a record", 1, 1
)
def _len(env: Env, args: Sequence[Any]) -> int:
    (value,) = args
    if isinstance(value, str | Mapping | list | tuple | Set):
        return len(value)
    raise Refusal(f"len() needs a text, a list or a record; got {describe(value)}")


def _extreme(name: str, env: Env, args: Sequence[Any]) -> Any:
    values = list_arg(args[0], name, env) if len(args) == 1 else list(args)
    if not values:
        raise Refusal(f"{name}() of an empty list")
    best = values[0]
    for value in values[1:]:
        if order("<" if name == "min" else ">", value, best, env.budget):
            best = value
    return best


@_register("min(a, b, ...) or min(list)", "the smallest value", 1, None)
def _min(env: Env, args: Sequence[Any]) -> Any:
    return _extreme("min", env, args)


@_register("max(a, b, ...) or max(list)", "the largest value", 1, None)
def _max(env: Env, args: Sequence[Any]) -> Any:
    return _extreme("max", env, args)


@_register("sum(list)", "the total of a list of numbers (0 for an empty list)", 1, 1)
def _sum(env: Env, args: Sequence[Any]) -> Any:
    total: int | decimal.Decimal = 0
    for value in list_arg(args[0], "sum", env):
        total = check_total(total + number_arg(value, "sum"))
    return total


def check_total(value: int | decimal.Decimal) -> int | decimal.Decimal:
    return check_int(value) if isinstance(value, int) else value


@_register("abs(number)", "the absolute value of a number or a duration", 1, 1)
def _abs(env: Env, args: Sequence[Any]) -> Any:
    (value,) = args
    if isinstance(value, dt.timedelta):
        return abs(value)
    return abs(number_arg(value, "abs"))


@_register(
    "round(number, digits=0)",
    "rounds half up (四舍五入), to a whole number, or to `digits` decimal places",
    1,
    2,
)
def _round(env: Env, args: Sequence[Any]) -> Any:
    value = number_arg(args[0], "round")
    digits = args[1] if len(args) == 2 else 0
    whole_arg(digits, "round")
    if abs(digits) > MAX_ROUND_DIGITS:
        raise Refusal(f"round() can keep at most {MAX_ROUND_DIGITS} digits; got {digits}")
    step = decimal.Decimal(1).scaleb(-digits)
    rounded = decimal.Decimal(value).quantize(step, rounding=decimal.ROUND_HALF_UP)
    if len(args) == 1 or isinstance(value, int):
        return int(rounded)
    return rounded


@_register("str(value)", "the text of a number, date, duration (ISO 8601) or yes/no", 1, 1)
def _str(env: Env, args: Sequence[Any]) -> str:
    (value,) = args
    if isinstance(value, str):
        return value
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if value is None or isinstance(value, int):
        return str(value)
    raise Refusal(f"str() cannot turn a {describe(value)} into text")


@_register("int(value)", "a whole number from a number (cut towards zero) or a text", 1, 1)
def _int(env: Env, args: Sequence[Any]) -> int:
    (value,) = args
    if isinstance(value, int):
        return int(value)
    if isinstance(value, decimal.Decimal):
        if value.adjusted() > MAX_INT_BITS // 3:
            raise Refusal(f"int() of {describe(value)}: the number is too large")
        return check_int(int(value))
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return check_int(int(value.strip()))
    raise Refusal(f"int() cannot turn {describe(value)} into a whole number")


@_register("decimal(value)", "an exact decimal number from a number or a text like '12.50'", 1, 1)
def _decimal(env: Env, args: Sequence[Any]) -> decimal.Decimal:
    (value,) = args
    if isinstance(value, decimal.Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return decimal.Decimal(value)
    if isinstance(value, str) and len(value) <= MAX_DECIMAL_EXPONENT:
        try:
            return check_decimal(decimal.Decimal(value.strip()))
        except decimal.InvalidOperation:
            pass
    raise Refusal(f"decimal() cannot turn {describe(value)} into a number")


def _text_function(name: str, summary: str, apply: Callable[[str], str]) -> None:
    def impl(env: Env, args: Sequence[Any]) -> str:
        text = text_arg(args[0], name)
        env.budget.charge_text(text)
        result = apply(text)
        check_text_length(len(result))
        return result

    _register(f"{name}(text)", summary, 1, 1)(impl)


_text_function("lower", "the text in lower case", str.lower)
_text_function("upper", "the text in upper case", str.upper)
_text_function("strip", "the text without leading and trailing spaces", str.strip)


@_register("contains(container, item)", "whether a list holds an item, or a text a part", 2, 2)
def _contains(env: Env, args: Sequence[Any]) -> bool:
    return member(args[1], args[0], env.budget)


@_register("startswith(text, prefix)", "whether the text starts with the prefix", 2, 2)
def _startswith(env: Env, args: Sequence[Any]) -> bool:
    return text_arg(args[0], "startswith").startswith(text_arg(args[1], "startswith"))


@_register("endswith(text, suffix)", "whether the text ends with the suffix", 2, 2)
def _endswith(env: Env, args: Sequence[Any]) -> bool:
    return text_arg(args[0], "endswith").endswith(text_arg(args[1], "endswith"))


@_register("coalesce(a, b, ...)", "the first value that is not None (or None)", 1, None)
def _coalesce(env: Env, args: Sequence[Any]) -> Any:
    return next((value for value in args if value is not None), None)


@_register("get(record, key, default=None)", "a record's value for key, or default if absent", 2, 3)
def _get(env: Env, args: Sequence[Any]) -> Any:
    record, key = args[0], text_arg(args[1], "get")
    if not isinstance(record, Mapping):
        raise Refusal(f"get() needs a record; got {describe(record)}")
    default = args[2] if len(args) == 3 else None
    return admit(record[key], f"field {key!r}") if key in record else default


@_register("pluck(list, key)", "the values of one key in a list of records", 2, 2)
def _pluck(env: Env, args: Sequence[Any]) -> list[Any]:
    key = text_arg(args[1], "pluck")
    rows = list_arg(args[0], "pluck", env)
    values = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise Refusal(f"pluck() needs a list of records; an item is {describe(row)}")
        values.append(admit(row.get(key), f"field {key!r}"))
    return values


@_register("any(list)", "whether any item of a list of yes/no values is True", 1, 1)
def _any(env: Env, args: Sequence[Any]) -> bool:
    return any([truth(value, "any()") for value in list_arg(args[0], "any", env)])


@_register("all(list)", "whether every item of a list of yes/no values is True", 1, 1)
def _all(env: Env, args: Sequence[Any]) -> bool:
    return all([truth(value, "all()") for value in list_arg(args[0], "all", env)])


FUNCTIONS: dict[str, Function] = {f.name: f for f in (*GENERAL.functions, *DATES.functions)}
