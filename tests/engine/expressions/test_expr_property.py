"""Property: on whole-number arithmetic and comparisons, the evaluator agrees with Python.

Python's own ``eval`` is fine here: the generated texts are ours. Parsing uses
``translate`` (no constant checking), since ``parse`` rightly refuses
``x if c else 1 // 0`` even when Python would never reach the division.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.expressions import ExpressionError, evaluate
from engine.expressions.parser import translate

NAMES = ("a", "b", "c")
COMPARISONS = ["<", "<=", ">", ">=", "==", "!="]
# Refusals by design, not disagreements: size limits of the text or of a value.
LIMITS = ("too large", "too complex", "nested too deeply", "characters long")

leaf = st.one_of(
    st.integers(-50, 50).map(lambda n: f"({n})" if n < 0 else str(n)),
    st.sampled_from(NAMES),
)
integers: st.SearchStrategy[str] = st.deferred(
    lambda: st.one_of(
        leaf,
        leaf,
        st.tuples(integers, st.sampled_from(["+", "-", "*", "//", "%"]), integers).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(integers, st.integers(0, 3)).map(lambda t: f"({t[0]} ** {t[1]})"),
        integers.map(lambda e: f"(-{e})"),
        st.tuples(integers, conditions, integers).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    )
)
comparison = st.tuples(
    integers,
    st.lists(st.tuples(st.sampled_from(COMPARISONS), integers), min_size=1, max_size=2),
).map(lambda t: "(" + t[0] + "".join(f" {op} {right}" for op, right in t[1]) + ")")
membership = st.tuples(
    integers, st.sampled_from(["in", "not in"]), st.lists(integers, max_size=3)
).map(lambda t: f"({t[0]} {t[1]} [{', '.join(t[2])}])")
conditions: st.SearchStrategy[str] = st.deferred(
    lambda: st.one_of(
        comparison,
        membership,
        conditions.map(lambda e: f"(not {e})"),
        st.tuples(conditions, st.sampled_from(["and", "or"]), conditions).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
    )
)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(integers, conditions),
    values=st.fixed_dictionaries({name: st.integers(-1_000, 1_000) for name in NAMES}),
)
def test_agrees_with_python(text: str, values: dict[str, int]) -> None:
    try:
        expected: Any = eval(text, {"__builtins__": {}}, dict(values))
    except ZeroDivisionError:
        expected = ZeroDivisionError
    try:
        result: Any = evaluate(translate(text), values)
    except ExpressionError as error:
        assume(not any(limit in error.problem for limit in LIMITS))
        assert expected is ZeroDivisionError, error
        assert "division by zero" in error.problem
        return
    assert result == expected
    assert type(result) is type(expected)
