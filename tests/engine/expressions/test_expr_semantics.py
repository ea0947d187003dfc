"""What expressions compute: a table of text -> value over one loan context."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from expression_support import NOW, run

D = Decimal

SEMANTICS: list[tuple[str, Any]] = [
    # literals: numbers with a fraction are exact decimals, never floats
    ("1", 1),
    ("1.50", D("1.50")),
    ("0.1 + 0.2 == 0.3", True),
    ("1_000_000.5", D("1000000.5")),
    ("1e3", D("1000")),
    ("'文本'", "文本"),
    ("None", None),
    ("[1, 'a', None]", [1, "a", None]),
    ("(1, 2)", (1, 2)),
    ("{'a': 1, 'b': [2]}", {"a": 1, "b": [2]}),
    # names, dotted lookups into mappings, brackets
    ("amount", D("600000.00")),
    ("customer.tier", "vip"),
    ("customer.branch.code", "SH01"),
    ("customer['name']", "张三"),
    ("items[0].amount", D("1.50")),
    ("items[-1]['product']", "card"),
    ("tags[0:1]", ["new"]),
    ("customer.name[:1]", "张"),
    ("rate", D("0.035")),
    # arithmetic
    ("amount * 2", D("1200000.00")),
    ("10 / 4", D("2.5")),
    ("10 / 5", D("2")),
    ("1 / 3", D("0.3333333333333333333333333333333333")),
    ("7 // 2", 3),
    ("-7 // 2", -4),
    ("-7 % 3", 2),
    ("D7 // 2".replace("D7", "7.5"), D("3")),
    ("-7.5 // 2", D("-4")),
    ("-7.5 % 2", D("0.5")),
    ("2 ** 10", 1024),
    ("2 ** -2", D("0.25")),
    ("1.1 ** 2", D("1.21")),
    ("-term", -36),
    ("+term", 36),
    ("'贷款' + '申请'", "贷款申请"),
    ("'ab' * 3", "ababab"),
    ("[0] * 3", [0, 0, 0]),
    ("tags + ['vip']", ["new", "urgent", "vip"]),
    # comparisons, chained, membership, None tests
    ("amount > 500000", True),
    ("0 < term <= 36", True),
    ("0 < term < 36", False),
    ("1 == 1.0", True),
    ("'1' == 1", False),
    ("customer.tier in ['private', 'vip']", True),
    ("customer.tier not in ('private', 'vip')", False),
    ("'urgent' in tags", True),
    ("'张' in customer.name", True),
    ("'tier' in customer", True),
    ("note is None", True),
    ("note is not None", False),
    ("None is note", True),
    ("'b' < 'c'", True),
    ("submitted_on < today()", True),
    ("days(2) > hours(47)", True),
    # boolean operators give True/False; None counts as false
    ("approved and amount > 1", True),
    ("note or approved", True),
    ("note and approved", False),
    ("not note", True),
    ("not approved", False),
    ("amount > 500000 and customer.tier in ['private', 'vip']", True),
    # conditional expression
    ("'high' if amount > 500000 else 'normal'", "high"),
    ("'high' if note else 'normal'", "normal"),
    # dates and durations
    ("today()", dt.date(2025, 10, 1)),
    ("now()", NOW),
    ("now() == now()", True),
    ("today() - submitted_on", dt.timedelta(days=3)),
    ("submitted_on + days(3)", dt.date(2025, 10, 1)),
    ("submitted_at + duration('PT48H')", dt.datetime(2025, 9, 30, 10, 0, tzinfo=dt.UTC)),
    ("now() - submitted_at > days(2)", True),
    ("hours(1.5)", dt.timedelta(minutes=90)),
    ("days(1) * 2", dt.timedelta(days=2)),
    ("-days(1)", dt.timedelta(days=-1)),
]


@pytest.mark.parametrize(("text", "expected"), SEMANTICS, ids=[t for t, _ in SEMANTICS])
def test_semantics(text: str, expected: Any) -> None:
    result = run(text)
    assert result == expected
    assert type(result) is type(expected)


def test_no_float_ever_comes_out() -> None:
    for text in ("rate * 2", "1 / 8", "amount / 7", "2 ** -3", "hours(0.5) * 0"):
        assert not isinstance(run(text), float)


def test_boolean_operators_short_circuit() -> None:
    # The right operand would fail; it is never evaluated.
    assert run("approved or 1 / missing > 0") is True
    assert run("note and missing > 0") is False
    assert run("'a' if approved else 1 / missing") == "a"


def test_chained_comparison_stops_at_first_false() -> None:
    assert run("3 < 2 < missing") is False


def test_context_values_are_not_changed() -> None:
    tags = ["a"]
    assert run("tags + ['b']", tags=tags) == ["a", "b"]
    assert tags == ["a"]
