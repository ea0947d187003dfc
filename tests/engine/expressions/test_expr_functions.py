"""The whitelisted functions: results, ISO durations, and the reference lists them all."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from expression_support import NOW, run

from engine.expressions import FUNCTIONS, ExpressionError
from engine.expressions.durations import format_duration, parse_duration
from engine.expressions.limits import Refusal

D = Decimal
REFERENCE = Path(__file__).parents[3] / "docs" / "expressions.md"

RESULTS: list[tuple[str, Any]] = [
    ("len('张三')", 2),
    ("len(tags)", 2),
    ("len(customer)", 4),
    ("min(3, 1, 2)", 1),
    ("max(tags)", "urgent"),
    ("max(1, 2.5)", D("2.5")),
    ("min(today(), submitted_on)", dt.date(2025, 9, 28)),
    ("sum(pluck(items, 'amount'))", D("3.50")),
    ("sum([])", 0),
    ("abs(-2.5)", D("2.5")),
    ("abs(-days(1))", dt.timedelta(days=1)),
    ("round(2.5)", 3),
    ("round(-2.5)", -3),
    ("round(2.345, 2)", D("2.35")),
    ("round(1234, -2)", 1200),
    ("round(amount / 7, 2)", D("85714.29")),
    ("str(1.50)", "1.50"),
    ("str(term)", "36"),
    ("str(today())", "2025-10-01"),
    ("str(hours(36))", "P1DT12H"),
    ("str(None)", "None"),
    ("str(approved)", "True"),
    ("int(' 42 ')", 42),
    ("int(-2.7)", -2),
    ("int(approved)", 1),
    ("decimal('12.50')", D("12.50")),
    ("decimal(3)", D(3)),
    ("lower('VIP')", "vip"),
    ("upper(customer.tier)", "VIP"),
    ("strip('  a ')", "a"),
    ("contains(tags, 'new')", True),
    ("contains(customer.name, '三')", True),
    ("startswith(customer.branch.code, 'SH')", True),
    ("endswith('loan.pdf', '.pdf')", True),
    ("coalesce(note, 'none given')", "none given"),
    ("coalesce(note, None)", None),
    ("get(customer, 'tier')", "vip"),
    ("get(customer, 'vip_since', '-')", "-"),
    ("pluck(items, 'product')", ["loan", "card"]),
    ("any(votes)", True),
    ("all(votes)", False),
    ("all([])", True),
    ("today()", NOW.date()),
    ("date('2025-10-01') == today()", True),
    ("date(2025, 10, 1)", dt.date(2025, 10, 1)),
    ("date(submitted_at)", dt.date(2025, 9, 28)),
    ("datetime('2025-10-01T09:30:00+08:00') == now()", True),
    ("datetime('2025-10-01T01:30:00Z') == now()", True),
    ("days(2)", dt.timedelta(days=2)),
    ("hours(48) == days(2)", True),
    ("minutes(90)", dt.timedelta(minutes=90)),
    ("duration('PT48H')", dt.timedelta(hours=48)),
    ("duration('P1W')", dt.timedelta(weeks=1)),
    ("year(today()) * 100 + month(today())", 202510),
    ("day(submitted_at)", 28),
]


@pytest.mark.parametrize(("text", "expected"), RESULTS, ids=[r[0] for r in RESULTS])
def test_function_results(text: str, expected: Any) -> None:
    result = run(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT48H", dt.timedelta(hours=48)),
        ("P3D", dt.timedelta(days=3)),
        ("P1W", dt.timedelta(weeks=1)),
        ("P1DT12H30M", dt.timedelta(days=1, hours=12, minutes=30)),
        ("pt1.5h", dt.timedelta(minutes=90)),
        ("PT0,5S", dt.timedelta(milliseconds=500)),
        ("-PT30M", dt.timedelta(minutes=-30)),
    ],
)
def test_iso_durations(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["P1M", "P1Y", "P1Y2M3D"])
def test_calendar_durations_are_refused(text: str) -> None:
    with pytest.raises(Refusal, match="years or months"):
        parse_duration(text)


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "48H", "PT48", "P1DT", "1 day", "P" + "9" * 80 + "D"]
)
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(Refusal):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(dt.timedelta(0)) == "PT0S"
    assert format_duration(dt.timedelta(seconds=1.25)) == "PT1.25S"
    assert format_duration(dt.timedelta(days=-1, hours=-2)) == "-P1DT2H"


def test_clock_functions_are_marked_impure() -> None:
    assert {name for name, f in FUNCTIONS.items() if not f.pure} == {"today", "now"}


def test_every_function_is_in_the_reference() -> None:
    reference = REFERENCE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)\(", reference, re.MULTILINE))
    assert documented == set(FUNCTIONS)


def test_round_half_up_differs_from_python_on_purpose() -> None:
    assert run("round(0.125, 2)") == D("0.13")
    with pytest.raises(ExpressionError, match="round"):
        run("round(1.5, 1.5)")
