"""Evaluation failures are domain errors naming the expression, the place and the problem."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import pytest
from expression_support import CONTEXT, NOW, run

from engine.expressions import ExpressionEvaluationError, evaluate, parse
from engine.expressions.limits import MAX_STEPS, Budget

FAILURES: list[tuple[str, str, int | None]] = [
    # (text, part of the problem, column)
    ("missing > 1", "unknown name 'missing'", 1),
    ("amout > 1", "did you mean 'amount'?", 1),
    ("customer.tire", "customer has no field 'tire'; use get(customer, 'tire')", 1),
    ("customer.name.upper", "has no field 'upper'; to use a function write upper(...)", 1),
    ("term.days", "term is whole number 36, which has no field 'days'", 1),
    ("amount / (term - 36)", "division by zero", 1),
    ("term // 0", "division by zero", 1),
    ("amount % 0", "division by zero", 1),
    ("note > 1", "a value is empty; give a default with coalesce", 1),
    ("note + 1", "cannot use + on nothing (None)", 1),
    ("customer.tier < 1", "cannot compare text 'vip' with whole number 1 using <", 1),
    ("submitted_on < submitted_at", "cannot compare date with date and time", 1),
    ("customer.tier + 1", "cannot use + on text 'vip' and whole number 1", 1),
    ("customer.tier - customer.name", "cannot use -", 1),
    ("customer.tier % term", "cannot use %", 1),
    ("approved + 1", "cannot use + on yes/no", 1),
    ("amount and approved", "`and` needs yes/no", 1),
    ("1 if customer.tier else 2", "the condition after `if` needs yes/no", 1),
    ("not term", "`not` needs yes/no", 1),
    ("items[5]", "position 5 is out of range (there are 2 items)", 1),
    ("items['a']", "a position must be a whole number", 1),
    ("customer[1]", "a record's key must be a text", 1),
    ("customer['x']", "the record has no key 'x'", 1),
    ("term[0]", "cannot use [...] on whole number", 1),
    ("{term: 1}", "a record's key must be a text", 1),
    ("1 in term", "`in` needs a list, a record or a text", 1),
    ("term in customer.tier", "`in` on a text needs a text", 1),
    ("submitted_on + hours(1)", "a date can only move by whole days", 1),
    ("len(term)", "len() needs a text, a list or a record", 1),
    ("upper(term)", "upper() needs a text", 1),
    ("sum(tags)", "sum() needs a number", 1),
    ("any(tags)", "any() needs yes/no", 1),
    ("min(tags[0:0])", "min() of an empty list", 1),
    ("max(1, customer.tier)", "cannot compare", 1),
    ("int(customer.name)", "int() cannot turn text '张三' into a whole number", 1),
    ("decimal(customer.name)", "decimal() cannot turn", 1),
    ("decimal('NaN' + customer.branch.code)", "decimal() cannot turn", 1),
    ("duration(customer.name)", "is not an ISO 8601 duration", 1),
    ("datetime(customer.name)", "not an ISO 8601 date and time", 1),
    ("round(amount, term)", "at most 18 digits", 1),
    ("get(term, 'a')", "get() needs a record", 1),
    ("pluck(tags, 'a')", "pluck() needs a list of records", 1),
    ("str(tags)", "str() cannot turn a list into text", 1),
    ("days(term * 10 ** 20)", "the duration is out of range", 1),
    ("now() + days(term * 10 ** 8)", "out of range", 9),
    ("amount ** 0.5", "the exponent of ** must be a whole number", 1),
    ("amount ** 200", "the number is too large", 1),
    ("2 ** (term * 10)", "whole number would be too large", 1),
    ("(amount > 1) + (term > 1) + customer.age", "cannot use +", 1),
    ("term > 1 and tags[9] == 'x'", "position 9 is out of range", 14),
]


@pytest.mark.parametrize(("text", "fragment", "column"), FAILURES, ids=[f[0] for f in FAILURES])
def test_failures_name_expression_position_and_problem(
    text: str, fragment: str, column: int | None
) -> None:
    with pytest.raises(ExpressionEvaluationError) as caught:
        run(text)
    error = caught.value
    assert fragment in error.problem
    assert error.text == text
    assert str(error).startswith(f"Expression `{text}`")
    if column is not None:
        assert error.column == column


def test_foreign_python_objects_are_refused_when_read() -> None:
    with pytest.raises(ExpressionEvaluationError, match="holds a value of type UUID"):
        run("key == 1", key=uuid.uuid4())
    with pytest.raises(ExpressionEvaluationError, match="holds a value of type object"):
        run("box.anything", box=object())
    with pytest.raises(ExpressionEvaluationError, match="holds a value of type object"):
        run("get(record, 'x')", record={"x": object()})


def test_floats_from_the_context_read_as_the_decimal_they_print_as() -> None:
    assert run("rate") == decimal.Decimal("0.035")
    assert run("rate * 100 == 3.5") is True


def test_work_budget_bounds_big_data() -> None:
    big = list(range(MAX_STEPS + 1))
    with pytest.raises(ExpressionEvaluationError, match="more than 100,000 steps"):
        run("sum(big) > 0", big=big)
    with pytest.raises(ExpressionEvaluationError, match="steps of work"):
        run("-1 in big", big=big)
    with pytest.raises(ExpressionEvaluationError, match="steps of work"):
        run("big == big", big=big)


def test_a_smaller_budget_can_be_given() -> None:
    expression = parse("a + a + a + a")
    with pytest.raises(ExpressionEvaluationError, match="more than 5 steps"):
        evaluate(expression, {"a": 1}, now=NOW, budget=Budget(5))


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(parse("now()"), {}, now=dt.datetime(2025, 1, 1))


def test_default_clock_is_the_business_time_zone() -> None:
    result: Any = evaluate(parse("now()"), CONTEXT)
    assert result.utcoffset() == dt.timedelta(hours=8)
