"""The value types of the language and the rules shared by operators and functions.

Values: None, True/False, whole numbers (int), decimals (``Decimal``, never
float), text, dates, date-times, durations (``timedelta``), lists (and
tuples), and mappings. A float from the context is read as the decimal it
prints as; any other Python object is refused at the point it is read, so
no operator ever reaches a foreign object's methods.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Collection, Mapping, Set
from typing import Any, TypeGuard

from engine.expressions.limits import Budget, Refusal

Number = int | decimal.Decimal
SCALARS: tuple[type, ...] = (bool, str, int, decimal.Decimal, dt.date, dt.timedelta)
COLLECTIONS: tuple[type, ...] = (list, tuple, Set)
PREVIEW_CHARS = 30


def kind(value: Any) -> str:
    """A business-user name of a value's type."""
    if value is None:
        return "nothing (None)"
    if isinstance(value, bool):
        return "yes/no"
    if isinstance(value, int):
        return "whole number"
    if isinstance(value, decimal.Decimal):
        return "decimal number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dt.datetime):
        return "date and time"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.timedelta):
        return "duration"
    if isinstance(value, Mapping):
        return "record"
    if isinstance(value, COLLECTIONS):
        return "list"
    return f"unsupported value ({type(value).__name__})"


def describe(value: Any) -> str:
    """``kind`` plus a short preview of scalars, for error messages."""
    if isinstance(value, str):
        shown = value if len(value) <= PREVIEW_CHARS else value[:PREVIEW_CHARS] + "…"
        return f"text {shown!r}"
    if is_number(value):
        text = str(value)
        shown = text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"
        return f"{kind(value)} {shown}"
    return kind(value)


def admit(value: Any, what: str) -> Any:
    """A value read from the context or from a record, checked and normalised."""
    if value is None or isinstance(value, (*SCALARS, *COLLECTIONS, Mapping)):
        return value
    if isinstance(value, float):
        # repr gives the shortest text that reads back as the same float:
        # the number the user saw, not its binary approximation.
        return decimal.Decimal(repr(value))
    raise Refusal(
        f"{what} holds a value of type {type(value).__name__}, which expressions cannot use"
    )


def is_collection(value: Any) -> TypeGuard[Collection[Any]]:
    """A list, a tuple or a set (a set from the host reads as a list)."""
    return isinstance(value, COLLECTIONS)


def is_number(value: Any) -> TypeGuard[Number]:
    return isinstance(value, int | decimal.Decimal) and not isinstance(value, bool)


def truth(value: Any, role: str) -> bool:
    """A condition's value: only True, False or None (which counts as false).

    Stricter than Python on purpose: ``"no" and x`` is a mistake a designer
    should hear about, and the same rule holds when compiled to SQL.
    """
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise Refusal(f"{role} needs yes/no (True/False); got {describe(value)}")


def equal(left: Any, right: Any, budget: Budget) -> bool:
    budget.charge_weight(left)
    budget.charge_weight(right)
    return bool(left == right)


def _ordered_pair(left: Any, right: Any) -> bool:
    if is_number(left) and is_number(right):
        return True
    if isinstance(left, dt.datetime) or isinstance(right, dt.datetime):
        if not (isinstance(left, dt.datetime) and isinstance(right, dt.datetime)):
            return False
        if (left.tzinfo is None) != (right.tzinfo is None):
            raise Refusal("cannot compare a date and time with a time zone to one without")
        return True
    return any(isinstance(left, t) and isinstance(right, t) for t in (str, dt.date, dt.timedelta))


def order(op: str, left: Any, right: Any, budget: Budget) -> bool:
    """``<``, ``<=``, ``>``, ``>=``: numbers, texts, dates, date-times, durations."""
    if left is None or right is None:
        raise Refusal(
            f"cannot compare {describe(left)} with {describe(right)} using {op}: "
            "a value is empty; give a default with coalesce(value, default)"
        )
    if not _ordered_pair(left, right):
        raise Refusal(f"cannot compare {describe(left)} with {describe(right)} using {op}")
    if isinstance(left, str):
        budget.charge_text(left)
        budget.charge_text(right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def member(item: Any, container: Any, budget: Budget) -> bool:
    """``item in container``: a list, a record's keys, or a text's substrings."""
    if isinstance(container, str):
        if not isinstance(item, str):
            raise Refusal(f"`in` on a text needs a text to look for; got {describe(item)}")
        budget.charge_text(container)
        return item in container
    if isinstance(container, Mapping):
        budget.charge(1)
        return isinstance(item, str) and item in container
    if is_collection(container):
        budget.charge(1 + len(container))
        budget.charge_weight(item)
        return any(item == element for element in container)
    raise Refusal(f"`in` needs a list, a record or a text on its right; got {describe(container)}")
