"""to_sql: the clause selects exactly the rows the evaluator says True for, on both backends."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from engine.expressions import ExpressionError, evaluate, parse
from engine.expressions.sql import ExpressionSQLError, to_sql
from engine.forms.columns import ExactDecimal

NOW = dt.datetime(2025, 10, 1, 9, 0, tzinfo=dt.UTC)
metadata = sa.MetaData()
loans = sa.Table(
    "expr_loan",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", ExactDecimal(18, 2)),
    sa.Column("limit_amount", ExactDecimal(18, 2)),
    sa.Column("tier", sa.String(20)),
    sa.Column("approved", sa.Boolean),
    sa.Column("opened", sa.Date),
    sa.Column("term", sa.Integer),
)
COLUMNS: dict[str, Any] = {
    "amount": loans.c.amount,
    "limit_amount": loans.c.limit_amount,
    "customer.tier": loans.c.tier,
    "approved": loans.c.approved,
    "opened": loans.c.opened,
    "term": loans.c.term,
}
ROWS: list[dict[str, Any]] = [
    {"amount": Decimal("600000.00"), "limit_amount": Decimal("500000.00"), "tier": "vip",
     "approved": True, "opened": dt.date(2025, 9, 1), "term": 36},
    {"amount": Decimal("500000.00"), "limit_amount": Decimal("500000.00"), "tier": "private",
     "approved": False, "opened": dt.date(2025, 9, 29), "term": 12},
    {"amount": Decimal("500000.01"), "limit_amount": None, "tier": "mass",
     "approved": None, "opened": None, "term": None},
    {"amount": None, "limit_amount": None, "tier": None,
     "approved": True, "opened": dt.date(2024, 1, 1), "term": 60},
    {"amount": Decimal("0.00"), "limit_amount": Decimal("1.00"), "tier": "VIP",
     "approved": False, "opened": dt.date(2025, 10, 1), "term": 0},
]  # fmt: skip
CONDITIONS = [
    "amount > 500000",
    "amount > 500000 and customer.tier in ['private', 'vip']",
    "not (amount > 500000 and customer.tier in ['private', 'vip'])",
    "amount >= 500000.005",
    "customer.tier == 'vip'",
    "customer.tier != 'vip'",
    "not customer.tier == 'vip'",
    "customer.tier not in ['vip', 'mass']",
    "customer.tier in ['vip', None]",
    "customer.tier not in ['vip', None]",
    "customer.tier in []",
    "customer.tier is None",
    "not (customer.tier is not None)",
    "approved",
    "not approved",
    "approved or term > 24",
    "0 < term <= 36",
    "not (0 < term <= 36)",
    "opened >= today() - days(30)",
    "opened < date('2025-01-01') or opened is None",
    "amount == limit_amount",
    "amount != limit_amount",
    "amount > limit_amount",
    "coalesce(amount, 0) < 1",
    "amount < 500000.005",
    "amount <= 500000.005",
    "amount > 500000.005",
    "amount == 500000.005",
    "amount != 500000.005",
    "(customer.tier == 'vip') if approved else (term == 12)",
    "not ((customer.tier == 'vip') if approved else (term == 12))",
    "500000 < amount",
    "True",
    "not True or amount is None",
]


@pytest.fixture
def loaded(engine: sa.Engine) -> Any:
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(loans.insert(), [{"id": i, **row} for i, row in enumerate(ROWS)])
    yield engine
    with engine.begin() as conn:
        metadata.drop_all(conn)


def _python_truth(text: str) -> tuple[set[int], set[int]]:
    expression = parse(text)
    selected, decided = set(), set()
    for index, row in enumerate(ROWS):
        context = {key: row[column.key] for key, column in COLUMNS.items()}
        context["customer"] = {"tier": context.pop("customer.tier")}
        try:
            outcome = evaluate(expression, context, now=NOW)
        except ExpressionError:
            continue  # an empty value in an ordering: SQL says false, Python refuses
        decided.add(index)
        if outcome is True:
            selected.add(index)
    return selected, decided


@pytest.mark.parametrize("text", CONDITIONS)
def test_sql_selects_what_python_says_true(loaded: sa.Engine, text: str) -> None:
    clause = to_sql(parse(text), COLUMNS, now=NOW)
    with loaded.connect() as conn:
        found = set(conn.scalars(sa.select(loans.c.id).where(clause)))
    expected, decided = _python_truth(text)
    assert found & decided == expected
    assert decided, "every condition should be decided for some rows"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("amount * 2 > 1", "cannot be computed in SQL yet"),
        ("upper(customer.tier) == 'VIP'", "cannot be computed in SQL yet"),
        ("'high' == ('high' if amount > 1000 else 'low')", "cannot be computed in SQL yet"),
        ("balance > 1", "'balance' is not a field"),
        ("amount > term", "only if they have one type"),
        ("'vip' in customer.tier", "constant list"),
        ("'x' if approved else 'y'", "yes/no"),
    ],
)
def test_what_does_not_compile_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionSQLError) as caught:
        to_sql(parse(text), COLUMNS, now=NOW)
    assert fragment in caught.value.problem
