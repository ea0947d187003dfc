"""Arithmetic: ``+ - * / // % **`` and unary ``-``/``+``.

Sizes are checked before a result is built (``"x" * 10**9`` is refused
without allocating anything). ``/`` always gives an exact decimal, never a
float; ``//`` and ``%`` floor as Python's do, for decimals too, so a whole
number and the same value as a decimal behave alike.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

from engine.expressions.limits import (
    MAX_EXPONENT,
    Budget,
    Refusal,
    check_bits,
    check_int,
    check_items,
    check_text_length,
)
from engine.expressions.values import Number, describe, is_number


def _checked(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return check_int(value)
    return value


def _add(left: Any, right: Any, budget: Budget) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        check_text_length(len(left) + len(right))
        budget.charge_text(left)
        budget.charge_text(right)
        return left + right
    if isinstance(left, list) and isinstance(right, list):
        check_items(len(left) + len(right))
        budget.charge(len(left) + len(right))
        return left + right
    if isinstance(left, tuple) and isinstance(right, tuple):
        check_items(len(left) + len(right))
        budget.charge(len(left) + len(right))
        return left + right
    if isinstance(left, dt.date) and isinstance(right, dt.timedelta):
        return _shift(left, right)
    if isinstance(left, dt.timedelta) and isinstance(right, dt.date):
        return _shift(right, left)
    if isinstance(left, dt.timedelta) and isinstance(right, dt.timedelta):
        return left + right
    return _numeric("+", left, right, lambda a, b: a + b)


def _sub(left: Any, right: Any, budget: Budget) -> Any:
    if isinstance(left, dt.date) and isinstance(right, dt.timedelta):
        return _shift(left, -right)
    if isinstance(left, dt.datetime) and isinstance(right, dt.datetime):
        if (left.tzinfo is None) != (right.tzinfo is None):
            raise Refusal("cannot subtract a date and time with a time zone and one without")
        return left - right
    both_plain_dates = not isinstance(left, dt.datetime) and not isinstance(right, dt.datetime)
    if isinstance(left, dt.date) and isinstance(right, dt.date) and both_plain_dates:
        return left - right
    if isinstance(left, dt.timedelta) and isinstance(right, dt.timedelta):
        return left - right
    return _numeric("-", left, right, lambda a, b: a - b)


def _shift(moment: dt.date, delta: dt.timedelta) -> dt.date:
    if not isinstance(moment, dt.datetime) and delta % dt.timedelta(days=1):
        raise Refusal("a date can only move by whole days; use a date and time for hours")
    return moment + delta


def _mul(left: Any, right: Any, budget: Budget) -> Any:
    if is_number(left) and isinstance(right, str | list | tuple):
        left, right = right, left
    if isinstance(left, str | list | tuple) and is_number(right):
        if not isinstance(right, int):
            raise Refusal(
                f"text or a list can only be repeated a whole number of times; got {right}"
            )
        count = max(right, 0) * len(left)
        if isinstance(left, str):
            check_text_length(count)
            budget.charge(1 + count // 100)
        else:
            check_items(count)
            budget.charge(1 + count)
        return left * right
    if isinstance(left, dt.timedelta) and is_number(right):
        return _scale_duration(left, right)
    if is_number(left) and isinstance(right, dt.timedelta):
        return _scale_duration(right, left)
    if isinstance(left, int) and isinstance(right, int):
        check_bits(left.bit_length() + right.bit_length() - 1)
    return _numeric("*", left, right, lambda a, b: a * b)


def _scale_duration(delta: dt.timedelta, factor: Number) -> dt.timedelta:
    micros = delta // dt.timedelta(microseconds=1)
    return dt.timedelta(microseconds=int(decimal.Decimal(micros) * factor))


def _div(left: Any, right: Any, budget: Budget) -> Any:
    _require_numbers("/", left, right)
    if not right:
        raise Refusal("division by zero")
    return decimal.Decimal(left) / decimal.Decimal(right)


def _floor_divmod(left: Number, right: Number) -> tuple[Number, Number]:
    if not right:
        raise Refusal("division by zero")
    if isinstance(left, int) and isinstance(right, int):
        return divmod(left, right)
    # Decimal's divmod truncates towards zero; floor it, as for whole numbers.
    quotient, remainder = divmod(decimal.Decimal(left), decimal.Decimal(right))
    if remainder and (remainder < 0) != (right < 0):
        quotient -= 1
        remainder += right
    return quotient, remainder


def _floordiv(left: Any, right: Any, budget: Budget) -> Any:
    _require_numbers("//", left, right)
    return _floor_divmod(left, right)[0]


def _mod(left: Any, right: Any, budget: Budget) -> Any:
    _require_numbers("%", left, right)
    return _floor_divmod(left, right)[1]


def _pow(left: Any, right: Any, budget: Budget) -> Any:
    _require_numbers("**", left, right)
    if not isinstance(right, int):
        if right != right.to_integral_value():
            raise Refusal(f"the exponent of ** must be a whole number; got {right}")
        right = int(right)
    if abs(right) > MAX_EXPONENT:
        raise Refusal(f"the exponent of ** is {right}; at most {MAX_EXPONENT} is allowed")
    if left == 0 and right < 0:
        raise Refusal("division by zero (0 to a negative power)")
    if isinstance(left, int) and right >= 0:
        # A lower bound of the result's size, known before computing it.
        check_bits((left.bit_length() - 1) * right)
        return left**right
    return decimal.Decimal(left) ** right


def _require_numbers(op: str, left: Any, right: Any) -> None:
    if not (is_number(left) and is_number(right)):
        raise Refusal(f"cannot use {op} on {describe(left)} and {describe(right)}")


def _numeric(op: str, left: Any, right: Any, apply: Callable[[Any, Any], Any]) -> Any:
    _require_numbers(op, left, right)
    return apply(left, right)


BINARY: dict[str, Callable[[Any, Any, Budget], Any]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "//": _floordiv,
    "%": _mod,
    "**": _pow,
}


def binary(op: str, left: Any, right: Any, budget: Budget) -> Any:
    try:
        return _checked(BINARY[op](left, right, budget))
    except ZeroDivisionError:
        raise Refusal("division by zero") from None
    except (decimal.DivisionByZero, decimal.DivisionUndefined):
        raise Refusal("division by zero") from None
    except decimal.Overflow:
        raise Refusal("the number is too large") from None
    except decimal.InvalidOperation:
        raise Refusal(
            f"the result of {op} is not a valid number (too large or undefined)"
        ) from None
    except OverflowError:
        raise Refusal("the date or duration is out of range") from None


def negate(value: Any) -> Any:
    if is_number(value) or isinstance(value, dt.timedelta):
        try:
            return -value
        except OverflowError:
            raise Refusal("the duration is out of range") from None
    raise Refusal(f"cannot negate {describe(value)}")


def positive(value: Any) -> Any:
    if is_number(value) or isinstance(value, dt.timedelta):
        return value
    raise Refusal(f"unary + needs a number or a duration; got {describe(value)}")
