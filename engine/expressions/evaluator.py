"""Evaluate a parsed :class:`Expression` against a context mapping.

The evaluator walks our own tree, so only what the tree can say can happen:
names are looked up in the context, dots and brackets in mappings and
lists, calls go to the whitelist. Every node costs one unit of the work
budget and every operator charges for the data it touches; a failure
anywhere becomes an :class:`ExpressionEvaluationError` naming the
expression, the line and column of the failing part, and the problem.
"""

from __future__ import annotations

import datetime as dt
import decimal
import difflib
import itertools
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from engine.expressions.errors import ExpressionEvaluationError
from engine.expressions.functions import FUNCTIONS
from engine.expressions.library import Env
from engine.expressions.limits import DECIMAL_CONTEXT, Budget, Refusal, check_items
from engine.expressions.nodes import (
    Binary,
    BoolOp,
    Call,
    Compare,
    DictOf,
    Expression,
    Field,
    IfElse,
    Index,
    ListOf,
    Literal,
    Name,
    Node,
    Slice,
    Unary,
    dotted_path,
)
from engine.expressions.operators import binary, negate, positive
from engine.expressions.values import admit, describe, equal, member, order, truth

# today() without a clock from the host: Formflow's business time zone.
DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
# How many context names the "did you mean" hint compares against.
SUGGESTION_POOL = 1_000


def evaluate(
    expression: Expression,
    context: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
    budget: Budget | None = None,
) -> Any:
    """The value of ``expression`` with the variables of ``context``.

    ``now`` (timezone-aware) is the clock of today() and now(); it defaults
    to the current time in Asia/Shanghai.
    """
    moment = now if now is not None else dt.datetime.now(DEFAULT_ZONE)
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    walker = _Walker(expression, context, Env(budget or Budget(), moment))
    with decimal.localcontext(DECIMAL_CONTEXT):
        return walker.value(expression.root)


class _Walker:
    def __init__(self, expression: Expression, context: Mapping[str, Any], env: Env) -> None:
        self.expression = expression
        self.context = context
        self.env = env

    def error(self, node: Node, problem: str) -> ExpressionEvaluationError:
        line = node.at.line or None
        column = node.at.column or None
        return ExpressionEvaluationError(
            problem, text=self.expression.text, line=line, column=column
        )

    def value(self, node: Node) -> Any:
        try:
            self.env.budget.charge(1)
            return self._value(node)
        except Refusal as refusal:
            raise self.error(node, refusal.message) from None
        except (ArithmeticError, ValueError, TypeError, LookupError) as exc:
            # A case the operators did not foresee: still a domain error.
            raise self.error(node, f"this part cannot be evaluated ({exc})") from None

    def _value(self, node: Node) -> Any:
        match node:
            case Literal(value=value):
                return value
            case Name(name=name):
                return self._lookup(name)
            case Field(target=target, key=key):
                return self._field(target, key)
            case Index(target=target, index=index):
                return self._index(self.value(target), self.value(index))
            case Slice(target=target, start=start, stop=stop):
                return self._slice(target, start, stop)
            case ListOf(items=items, is_tuple=is_tuple):
                check_items(len(items))
                values = [self.value(item) for item in items]
                return tuple(values) if is_tuple else values
            case DictOf(keys=keys, values=values):
                return self._dict(keys, values)
            case Unary(op=op, operand=operand):
                if op == "not":
                    return not truth(self.value(operand), "`not`")
                return negate(self.value(operand)) if op == "-" else positive(self.value(operand))
            case Binary(op=op, left=left, right=right):
                return binary(op, self.value(left), self.value(right), self.env.budget)
            case BoolOp(op=op, operands=operands):
                return self._bool(op, operands)
            case Compare(left=left, ops=ops, rights=rights):
                return self._compare(left, ops, rights)
            case Call(function=name, args=args):
                return FUNCTIONS[name].impl(self.env, [self.value(arg) for arg in args])
            case IfElse(test=test, then=then, otherwise=otherwise):
                chosen = then if truth(self.value(test), "the condition after `if`") else otherwise
                return self.value(chosen)
        raise Refusal(f"unknown part {type(node).__name__}")

    def _lookup(self, name: str) -> Any:
        if name not in self.context:
            pool = [key for key in itertools.islice(self.context, SUGGESTION_POOL)]
            close = difflib.get_close_matches(name, [k for k in pool if isinstance(k, str)], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise Refusal(f"unknown name {name!r}{hint}")
        return admit(self.context[name], f"the variable {name!r}")

    def _field(self, target_node: Node, key: str) -> Any:
        target = self.value(target_node)
        owner = ".".join(dotted_path(target_node) or ()) or "the value"
        if not isinstance(target, Mapping):
            hint = f"; to use a function write {key}(...)" if key in FUNCTIONS else ""
            raise Refusal(f"{owner} is {describe(target)}, which has no field {key!r}{hint}")
        if key not in target:
            raise Refusal(
                f"{owner} has no field {key!r}; use get({owner}, {key!r}) if it may be absent"
            )
        return admit(target[key], f"field {key!r}")

    def _index(self, target: Any, index: Any) -> Any:
        if isinstance(target, Mapping):
            if not isinstance(index, str):
                raise Refusal(f"a record's key must be a text; got {describe(index)}")
            if index not in target:
                raise Refusal(f"the record has no key {index!r}")
            return admit(target[index], f"key {index!r}")
        if isinstance(target, list | tuple | str):
            if not isinstance(index, int) or isinstance(index, bool):
                raise Refusal(f"a position must be a whole number; got {describe(index)}")
            if not -len(target) <= index < len(target):
                raise Refusal(f"position {index} is out of range (there are {len(target)} items)")
            return admit(target[index], f"item {index}")
        raise Refusal(f"cannot use [...] on {describe(target)}")

    def _slice(self, target_node: Node, start: Node | None, stop: Node | None) -> Any:
        target = self.value(target_node)
        if not isinstance(target, list | tuple | str):
            raise Refusal(f"cannot take a slice [a:b] of {describe(target)}")
        bounds = [None if part is None else self.value(part) for part in (start, stop)]
        for bound in bounds:
            if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool)):
                raise Refusal(f"slice bounds must be whole numbers; got {describe(bound)}")
        self.env.budget.charge(1 + len(target) // 100)
        return target[bounds[0] : bounds[1]]

    def _dict(self, keys: tuple[Node, ...], values: tuple[Node, ...]) -> dict[str, Any]:
        check_items(len(keys))
        result: dict[str, Any] = {}
        for key_node, value_node in zip(keys, values, strict=True):
            key = self.value(key_node)
            if not isinstance(key, str):
                raise Refusal(f"a record's key must be a text; got {describe(key)}")
            result[key] = self.value(value_node)
        return result

    def _bool(self, op: str, operands: tuple[Node, ...]) -> bool:
        # Short-circuit as in Python, but the result is always True or False.
        for operand in operands:
            outcome = truth(self.value(operand), f"`{op}`")
            if outcome == (op == "or"):
                return outcome
        return op == "and"

    def _compare(self, left_node: Node, ops: tuple[str, ...], rights: tuple[Node, ...]) -> bool:
        left = self.value(left_node)
        for op, right_node in zip(ops, rights, strict=True):
            right = self.value(right_node)
            if not _compare(op, left, right, self.env.budget):
                return False
            left = right
        return True


def _compare(op: str, left: Any, right: Any, budget: Budget) -> bool:
    if op == "==":
        return equal(left, right, budget)
    if op == "!=":
        return not equal(left, right, budget)
    if op == "in":
        return member(left, right, budget)
    if op == "not in":
        return not member(left, right, budget)
    if op == "is":
        return left is None and right is None
    if op == "is not":
        return not (left is None and right is None)
    return order(op, left, right, budget)
