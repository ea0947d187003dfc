"""parse: the tree, free names and paths, positions, and every refusal's message."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.expressions import ExpressionError, ExpressionParseError, parse, parse_cached
from engine.expressions.limits import MAX_DEPTH, MAX_LENGTH, MAX_NODES
from engine.expressions.nodes import BoolOp, Compare, Field, ListOf, Literal, Name


def test_tree_is_our_own_typed_nodes() -> None:
    expression = parse('amount > 500000 and customer.tier in ["private", "vip"]')
    assert expression.root == BoolOp(
        "and",
        (
            Compare(Name("amount"), (">",), (Literal(500000),)),
            Compare(
                Field(Name("customer"), "tier"),
                ("in",),
                (ListOf((Literal("private"), Literal("vip"))),),
            ),
        ),
    )
    assert expression.names == {"amount", "customer"}
    assert expression.paths == {("amount",), ("customer", "tier")}
    assert expression.functions == frozenset()


def test_names_paths_and_functions() -> None:
    expression = parse("len(record.items) > 0 and coalesce(record.owner.name, x) != y['k']")
    assert expression.names == {"record", "x", "y"}
    assert expression.paths == {("record", "items"), ("record", "owner", "name"), ("x",), ("y",)}
    assert expression.functions == {"len", "coalesce"}


def test_function_names_are_not_variables() -> None:
    assert parse("today() + days(1)").names == frozenset()


def test_decimal_literals_keep_their_written_digits() -> None:
    assert parse("1.10").root == Literal(Decimal("1.10"))
    assert parse("0.1").root == Literal(Decimal("0.1"))


def test_spacing_does_not_change_the_tree() -> None:
    assert parse("a+b*2").root == parse("  a + b * 2  ").root


def test_leading_whitespace_and_newlines_are_allowed() -> None:
    assert parse("\n   x").names == {"x"}


def test_cache_returns_the_same_object() -> None:
    assert parse_cached("a + 1") is parse_cached("a + 1")


REFUSALS: list[tuple[str, str, int | None]] = [
    # (text, part of the message, column)
    ("", "the expression is empty", None),
    ("   ", "the expression is empty", None),
    ("a +* b", "syntax error", 4),
    ("a && b", "write `and` instead of &&", 4),
    ("a || b", "write `or` instead of ||", None),
    ("x = 1", "syntax error", None),
    ("amount > 1 and _secret", "'_secret' starts with '_'", 16),
    ("record._hidden", "'_hidden' starts with '_'", 1),
    ("lambda: 1", "lambda", 1),
    ("[x for x in items]", "comprehensions", 1),
    ("{x: 1 for x in items}", "comprehensions", 1),
    ("any(x for x in items)", "generator", 4),
    ("(y := 1)", "assignments (:=)", 2),
    ("f'{amount}'", "f-strings", 1),
    ("f'{amount:>10}'", "f-strings", 1),
    ("len(*items)", "unpacking with *", 5),
    ("{**record}", "unpacking with **", 1),
    ("{1, 2}", "sets", 1),
    ("b'abc'", "byte strings", 1),
    ("1j", "complex numbers", 1),
    ("...", "`...` is not allowed", 1),
    ("a @ b", "operator @", 1),
    ("a << 2", "operator <<", 1),
    ("a | b", "operator |", 1),
    ("~a", "operator ~", 1),
    ("a is 1", "can only test for None", 1),
    ("a is b", "can only test for None", 1),
    ("items[::2]", "step", 1),
    ("'abc'.upper()", "write upper(value)", 1),
    ("'abc'.upper", "write upper(value)", 1),
    ("x.upper()", "write upper(value)", 1),
    ("(1).real", "a dot only reads a field", 1),
    ("[1][0].x", "has no", None),
    ("open('/etc/passwd')", "open() is not an available function", 1),
    ("len(x, y)", "len(value): wrong number of arguments (2 given)", 1),
    ("today(1)", "wrong number of arguments", 1),
    ("round(x, digits=2)", "named arguments", 1),
    ("items[0](1)", "only a function named directly", 1),
    ("x if y else 1 / 0", "division by zero", 13),
    ("timer + duration('P1M')", "years or months", 9),
    ("date('2025-02-30') < d", "no such date", 1),
    ("1" + "0" * 100, "too large", 1),
    ("1." + "1" * 40, "digits", 1),
    ("1e5000", "out of range", 1),
    ("'金额' +* 2", "syntax error", 7),
    ("'金额' + _x", "starts with '_'", 8),
    ("x +\n  _y", "syntax error", None),
    ("(x +\n  _y)", "starts with '_'", 3),
]


@pytest.mark.parametrize(("text", "fragment", "column"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_say_what_and_where(text: str, fragment: str, column: int | None) -> None:
    with pytest.raises(ExpressionParseError) as caught:
        parse(text)
    error = caught.value
    assert fragment in error.problem
    assert isinstance(error, ExpressionError)
    assert error.text == text
    if column is not None:
        assert error.column == column
        assert f"column {column}" in str(error)
    assert str(error).startswith("Expression `")


def test_position_counts_lines_after_a_leading_newline() -> None:
    with pytest.raises(ExpressionParseError) as caught:
        parse("\n  a and _b")
    assert (caught.value.line, caught.value.column) == (2, 9)


def test_limits_are_named_in_the_message() -> None:
    with pytest.raises(ExpressionParseError, match=f"at most {MAX_LENGTH:,}"):
        parse("1" + " " * MAX_LENGTH)
    with pytest.raises(ExpressionParseError, match=f"more than {MAX_NODES} parts"):
        parse("+".join(["a"] * (MAX_NODES // 2 + 10)))
    with pytest.raises(ExpressionParseError, match=f"over {MAX_DEPTH} levels"):
        parse("-" * (MAX_DEPTH + 5) + "a")


def test_a_non_text_is_refused() -> None:
    with pytest.raises(ExpressionParseError, match="must be text"):
        parse(42)  # type: ignore[arg-type]


def test_nul_is_refused() -> None:
    with pytest.raises(ExpressionParseError, match="NUL"):
        parse("a\x00")


def test_long_expressions_are_quoted_shortened() -> None:
    text = "a + " * 30 + "_b"
    with pytest.raises(ExpressionParseError) as caught:
        parse(text)
    assert "…" in str(caught.value)
    assert len(str(caught.value)) < 250
