"""Compile a condition to a SQLAlchemy Core clause, for set-based rules and tags.

What compiles: comparisons (``== != < <= > >=``, chained, ``in``/``not in``
a constant list, ``is None``/``is not None``) of a field with a constant or
with a field of the same type; ``and``/``or``/``not``; ``x if c else y`` as
a condition; yes/no fields as conditions; ``coalesce(field, constant)``.
Any part that uses no field (``now() - days(3)``, ``500000 * 2``) is
computed in Python first and bound as a parameter, so it is typed like the
field it is compared with (``ExactDecimal`` scales it on SQLite).

Not yet: arithmetic or text functions over fields (SQLite stores decimals as
scaled integers and folds case only for ASCII, so results could differ).

Semantics match :func:`evaluate` in two-valued logic: a clause is true
exactly where the evaluator gives True. ``not`` is pushed down to the
comparisons (``not (tier == "vip")`` becomes ``tier <> 'vip' OR tier IS
NULL``), since SQL's ``NOT NULL`` is not true. Where the evaluator would
refuse (an empty value in ``<``), the comparison is false in SQL.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.expressions.errors import ExpressionError
from engine.expressions.evaluator import evaluate
from engine.expressions.nodes import (
    BoolOp,
    Call,
    Compare,
    Expression,
    IfElse,
    Literal,
    Node,
    Unary,
    dotted_path,
    is_closed,
)

Clause = ColumnElement[Any]
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


class ExpressionSQLError(ExpressionError):
    """The expression (or a part of it) cannot be computed in SQL."""

    title = "Expression cannot run in SQL"


@dataclass(frozen=True)
class _Constant:
    value: Any


def to_sql(
    expression: Expression,
    columns: Mapping[str, Clause],
    *,
    now: dt.datetime | None = None,
) -> Clause:
    """The condition as a clause; ``columns`` maps dotted paths (``"tier"``,
    ``"customer.tier"``) to column expressions."""
    return _Compiler(expression, columns, now).condition(expression.root, negate=False)


class _Compiler:
    def __init__(
        self, expression: Expression, columns: Mapping[str, Clause], now: dt.datetime | None
    ) -> None:
        self.expression = expression
        self.columns = columns
        self.now = now

    def refuse(self, node: Node, problem: str) -> ExpressionSQLError:
        return ExpressionSQLError(
            problem,
            text=self.expression.text,
            line=node.at.line or None,
            column=node.at.column or None,
        )

    def operand(self, node: Node) -> Clause | _Constant:
        # Parts without fields are computed before the query (the clock is fixed).
        if is_closed(node):
            part = Expression(self.expression.text, node, frozenset(), frozenset(), frozenset())
            return _Constant(evaluate(part, {}, now=self.now))
        path = dotted_path(node)
        if path is not None:
            key = ".".join(path)
            if key not in self.columns:
                raise self.refuse(node, f"{key!r} is not a field that can be queried")
            return self.columns[key]
        if isinstance(node, Call) and node.function == "coalesce" and len(node.args) == 2:
            field, default = (self.operand(arg) for arg in node.args)
            if isinstance(field, _Constant) or not isinstance(default, _Constant):
                raise self.refuse(node, "in SQL, coalesce() takes a field and a constant")
            return sa.func.coalesce(field, sa.bindparam(None, default.value, type_=field.type))
        raise self.refuse(node, "this part cannot be computed in SQL yet")

    def condition(self, node: Node, *, negate: bool) -> Clause:
        match node:
            case Unary(op="not", operand=operand):
                return self.condition(operand, negate=not negate)
            case BoolOp(op=op, operands=operands):
                parts = [self.condition(part, negate=negate) for part in operands]
                # De Morgan: a negated `and` is an `or` of negated parts.
                return sa.and_(*parts) if (op == "and") != negate else sa.or_(*parts)
            case Compare(left=left, ops=ops, rights=rights):
                return self._chain(left, ops, rights, negate)
            case IfElse(test=test, then=then, otherwise=otherwise):
                return sa.or_(
                    sa.and_(
                        self.condition(test, negate=False), self.condition(then, negate=negate)
                    ),
                    sa.and_(
                        self.condition(test, negate=True), self.condition(otherwise, negate=negate)
                    ),
                )
            case Literal(value=bool() as value):
                return sa.true() if value != negate else sa.false()
        part = self.operand(node)
        if isinstance(part, _Constant):
            if part.value is None or isinstance(part.value, bool):
                return sa.true() if bool(part.value) != negate else sa.false()
            raise self.refuse(node, "a condition needs yes/no values")
        if negate:
            return sa.or_(part == sa.false(), part.is_(None))
        return cast(Clause, part == sa.true())

    def _chain(
        self, left: Node, ops: tuple[str, ...], rights: tuple[Node, ...], negate: bool
    ) -> Clause:
        operands = [self.operand(left), *(self.operand(right) for right in rights)]
        parts = [
            self._compare(op, operands[index], operands[index + 1], negate, rights[index])
            for index, op in enumerate(ops)
        ]
        return sa.or_(*parts) if negate else sa.and_(*parts)

    def _compare(
        self, op: str, left: Clause | _Constant, right: Clause | _Constant, negate: bool, at: Node
    ) -> Clause:
        if op in ("in", "not in"):
            return self._member(left, right, negate != (op == "not in"), at)
        if op in ("is", "is not"):
            op = "==" if op == "is" else "!="
        if isinstance(left, _Constant) and isinstance(right, _Constant):
            raise self.refuse(at, "a comparison of two constants has no place in SQL")
        if isinstance(left, _Constant):
            left, right, op = right, left, _FLIP[op]
        if isinstance(left, _Constant):
            raise self.refuse(at, "a comparison of two constants has no place in SQL")
        if negate:
            op = _NEGATED[op]
        if isinstance(right, _Constant):
            return self._with_constant(op, left, right.value, at)
        if str(left.type) != str(right.type):
            raise self.refuse(at, "in SQL, two fields are compared only if they have one type")
        if op == "==":
            return left.is_not_distinct_from(right)
        if op == "!=":
            return left.is_distinct_from(right)
        return _ordered(op, left, right)

    def _with_constant(self, op: str, column: Clause, value: Any, at: Node) -> Clause:
        if value is None:
            if op == "==":
                return column.is_(None)
            if op == "!=":
                return column.is_not(None)
            return sa.false()
        if isinstance(value, decimal.Decimal):
            aligned = _align(op, column, value)
            if aligned is not None:
                return aligned
        if op == "==":
            return cast(Clause, column == value)
        if op == "!=":
            # Python: None != 1 is True; SQL: NULL <> 1 is not.
            return sa.or_(column != value, column.is_(None))
        return _ordered(op, column, value)

    def _member(
        self, item: Clause | _Constant, container: Clause | _Constant, negate: bool, at: Node
    ) -> Clause:
        if isinstance(item, _Constant) or not isinstance(container, _Constant):
            raise self.refuse(at, "in SQL, `in` needs a field on the left and a constant list")
        values = container.value
        if not isinstance(values, list | tuple):
            raise self.refuse(at, "in SQL, `in` needs a list of constants")
        present = [value for value in values if value is not None]
        has_none = len(present) != len(values)
        if negate:
            excluded: Clause = item.not_in(present) if present else sa.true()
            if has_none:
                return sa.and_(excluded, item.is_not(None))
            return sa.or_(excluded, item.is_(None))
        included: Clause = item.in_(present) if present else sa.false()
        return sa.or_(included, item.is_(None)) if has_none else included


def _ordered(op: str, left: Clause, right: Any) -> Clause:
    if op == "<":
        return cast(Clause, left < right)
    if op == "<=":
        return cast(Clause, left <= right)
    if op == ">":
        return cast(Clause, left > right)
    return cast(Clause, left >= right)


def _align(op: str, column: Clause, value: decimal.Decimal) -> Clause | None:
    """Compare a fixed-scale column with a decimal that has more places.

    The bound value would be rounded to the column's scale (``>= 500000.005``
    would become ``>= 500000.00``); every stored value is a multiple of the
    scale's step, so round the bound in the direction that keeps the
    comparison exact instead.
    """
    scale = getattr(column.type, "scale", None)
    if not isinstance(scale, int):
        return None
    step = decimal.Decimal(1).scaleb(-scale)
    if value == value.quantize(step):
        return None
    floor = value.quantize(step, rounding=decimal.ROUND_FLOOR)
    ceiling = value.quantize(step, rounding=decimal.ROUND_CEILING)
    if op == "==":
        return sa.false()
    if op == "!=":
        return sa.true()
    if op in (">", "<="):
        return _ordered(op, column, floor)
    return _ordered(op, column, ceiling)
