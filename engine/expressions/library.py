"""What a whitelisted function is, and argument checks shared by them.

A function receives evaluated arguments and the evaluation's :class:`Env`:
the work budget and the fixed ``now`` of this evaluation (so that
``now() == now()`` holds and a test can pin the clock).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.expressions.limits import Budget, Refusal
from engine.expressions.values import admit, describe, is_collection, is_number


@dataclass(frozen=True)
class Env:
    budget: Budget
    now: dt.datetime


Impl = Callable[[Env, Sequence[Any]], Any]


@dataclass(frozen=True)
class Function:
    name: str
    signature: str
    summary: str
    min_args: int
    max_args: int | None  # None: any number
    impl: Impl
    # False for today()/now(): their value depends on when the expression runs.
    pure: bool = True


@dataclass
class Library:
    """A list of functions filled by the ``register`` decorator."""

    functions: list[Function] = field(default_factory=list)

    def register(
        self,
        signature: str,
        summary: str,
        min_args: int,
        max_args: int | None,
        *,
        pure: bool = True,
    ) -> Callable[[Impl], Impl]:
        def decorate(impl: Impl) -> Impl:
            name = signature.split("(", 1)[0]
            self.functions.append(
                Function(name, signature, summary, min_args, max_args, impl, pure)
            )
            return impl

        return decorate


def text_arg(value: Any, function: str) -> str:
    if not isinstance(value, str):
        raise Refusal(f"{function}() needs a text; got {describe(value)}")
    return value


def number_arg(value: Any, function: str) -> int | decimal.Decimal:
    if not is_number(value):
        raise Refusal(f"{function}() needs a number; got {describe(value)}")
    return value


def whole_arg(value: Any, function: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Refusal(f"{function}() needs a whole number; got {describe(value)}")
    return value


def list_arg(value: Any, function: str, env: Env) -> list[Any]:
    if not is_collection(value):
        raise Refusal(f"{function}() needs a list; got {describe(value)}")
    env.budget.charge(1 + len(value))
    return [admit(item, f"an item given to {function}()") for item in value]
