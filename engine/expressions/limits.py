"""Bounds on size and work, checked *before* a costly value is built.

Every limit is a plain constant so the documentation can quote it and tests
can reach it. ``Refusal`` is the internal signal of a failed check; the
evaluator turns it into an :class:`ExpressionEvaluationError` at the node
that raised it, so the message carries the node's position.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Set
from typing import Any

MAX_LENGTH = 2_000  # characters of source text
MAX_NODES = 500  # nodes of the parsed tree
MAX_DEPTH = 100  # nesting of the parsed tree
MAX_TEXT = 100_000  # characters of a text the expression builds
MAX_ITEMS = 10_000  # items of a list the expression builds
MAX_INT_BITS = 256  # about 77 decimal digits
MAX_EXPONENT = 1_000  # |exponent| of **
MAX_STEPS = 100_000  # work units per evaluation
# Scanning text is cheap: one work unit per this many characters.
TEXT_CHARS_PER_STEP = 100

# Exact decimals: 34 significant digits (IEEE decimal128), no silent
# overflow; inexact results (1/3) are rounded half-even, as in decimal128.
DECIMAL_CONTEXT = decimal.Context(
    prec=34,
    rounding=decimal.ROUND_HALF_EVEN,
    Emax=999,
    Emin=-999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
MAX_DECIMAL_DIGITS = DECIMAL_CONTEXT.prec
MAX_DECIMAL_EXPONENT = DECIMAL_CONTEXT.Emax


class Refusal(Exception):
    """A check failed; ``message`` is for a business user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Budget:
    """The work an evaluation may still do."""

    def __init__(self, steps: int = MAX_STEPS) -> None:
        self.steps = steps
        self.limit = steps

    def charge(self, units: int) -> None:
        self.steps -= units
        if self.steps < 0:
            raise Refusal(
                f"the expression needs more than {self.limit:,} steps of work "
                "(it works on too much data)"
            )

    def charge_text(self, text: str) -> None:
        self.charge(1 + len(text) // TEXT_CHARS_PER_STEP)

    def charge_weight(self, value: Any) -> None:
        """Charge for a full walk of ``value`` (equality of nested lists...)."""
        pending = [value]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                self.charge_text(item)
            elif isinstance(item, Mapping):
                self.charge(1 + len(item))
                pending.extend(item.values())
            elif isinstance(item, list | tuple | Set):
                self.charge(1 + len(item))
                pending.extend(item)
            else:
                self.charge(1)


def check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise Refusal(f"the whole number would be too large (more than {MAX_INT_BITS} bits)")


def check_int(value: int) -> int:
    check_bits(value.bit_length())
    return value


def check_text_length(length: int) -> None:
    if length > MAX_TEXT:
        raise Refusal(f"the text would be {length:,} characters long; at most {MAX_TEXT:,}")


def check_items(count: int) -> None:
    if count > MAX_ITEMS:
        raise Refusal(f"the list would have {count:,} items; at most {MAX_ITEMS:,}")


def check_decimal(value: decimal.Decimal) -> decimal.Decimal:
    """A decimal from outside the context (a literal, a text): finite and in range."""
    if not value.is_finite():
        raise Refusal("a number must be finite (not NaN or Infinity)")
    digits = len(value.as_tuple().digits)
    if digits > MAX_DECIMAL_DIGITS:
        raise Refusal(f"the number has {digits} digits; at most {MAX_DECIMAL_DIGITS}")
    if value and abs(value.adjusted()) > MAX_DECIMAL_EXPONENT:
        raise Refusal(f"the number is out of range (above 1E{MAX_DECIMAL_EXPONENT} or too small)")
    return value
