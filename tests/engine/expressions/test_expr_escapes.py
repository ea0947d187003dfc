"""The sandbox: a corpus of escape and exhaustion attempts, each refused clearly and fast."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from expression_support import CONTEXT, NOW

from engine.expressions import ExpressionError, evaluate_text

HOSTILE_CONTEXT: dict[str, Any] = {
    **CONTEXT,
    "os": os,
    "f": print,
    "record": {"amount": 1},
    "big": list(range(1_000_000)),
    "text": "x" * 1_000_000,
    "n": 10**9,
}

ESCAPES: list[tuple[str, str]] = [
    # dunder and subclass walks
    ("().__class__.__bases__[0].__subclasses__()", "starts with '_'"),
    ("[].__class__", "starts with '_'"),
    ("''.__class__.__mro__[1]", "starts with '_'"),
    ("record.__class__", "starts with '_'"),
    ("record['__class__']", "the record has no key '__class__'"),
    ("len.__self__", "starts with '_'"),
    ("__builtins__", "starts with '_'"),
    ("__import__('os').system('id')", "starts with '_'"),
    ("＿＿import＿＿('os')", "invalid character"),
    # no builtins beyond the whitelist, no callables from the context
    ("getattr(record, 'x')", "getattr() is not an available function"),
    ("type(record)", "type() is not an available function"),
    ("eval('1')", "eval() is not an available function"),
    ("ｅｖａｌ('1')", "eval() is not an available function"),
    ("exec('x = 1')", "exec() is not an available function"),
    ("compile('1', '', 'eval')", "compile() is not an available function"),
    ("open('/etc/passwd').read()", "values have no methods"),
    ("open('/etc/passwd')", "open() is not an available function"),
    ("globals()", "globals() is not an available function"),
    ("vars(record)", "vars() is not an available function"),
    ("breakpoint()", "breakpoint() is not an available function"),
    ("f(1)", "f() is not an available function"),
    ("os.system", "holds a value of type module"),
    ("os", "holds a value of type module"),
    ("len", "unknown name 'len'"),
    # methods and attributes of Python objects
    ("'a'.upper", "values have no methods"),
    ("'a'.upper()", "values have no methods"),
    ("'{0.__class__}'.format(record)", "values have no methods"),
    ("customer.name.encode", "has no field 'encode'"),
    ("record.get('amount')", "values have no methods"),
    ("(1).bit_length()", "values have no methods"),
    # functions, comprehensions, f-strings
    ("lambda: 0", "lambda"),
    ("(lambda: 0)()", "only a function named directly"),
    ("[x for x in big]", "comprehensions"),
    ("{x for x in big}", "comprehensions"),
    ("sum(x for x in big)", "generator"),
    ("f'{().__class__}'", "starts with '_'"),
    ("f'{record!r}'", "f-strings"),
    ("f'{record:{text}}'", "f-strings"),
    ("(x := 1)", "assignments"),
    # huge values
    ("9**9**9", "the exponent of ** is 387420489"),
    ("10**100000", "the exponent of ** is 100000"),
    ("2**1000", "whole number would be too large"),
    ("n ** n", "the exponent of ** is 1000000000"),
    ("'x'*10**9", "the text would be 1,000,000,000 characters long"),
    ("[0]*10**9", "the list would have 1,000,000,000 items"),
    ("[0] * 10**4 * 10**4", "the list would have 100,000,000 items"),
    ("'x' * n", "the text would be 1,000,000,000 characters long"),
    ("text + text", "the text would be 2,000,000 characters long"),
    ("upper(text * 1)", "the text would be 1,000,000 characters long"),
    ("amount ** 1000", "the number is too large"),
    ("decimal('1e999999999')", "out of range"),
    ("int('9' * 5000)", "int() cannot turn"),
    ("date(9999, 12, 31) + days(1)", "out of range"),
    # big work
    ("any(big)", "steps of work"),
    ("sum(big)", "steps of work"),
    ("max(big)", "steps of work"),
    ("-1 in big", "steps of work"),
    ("big == big", "steps of work"),
    ("len(pluck(big, 'a'))", "steps of work"),
    # size of the text itself
    ("(" * 10_000 + "1" + ")" * 10_000, "at most 2,000"),
    ("-" * 150 + "1", "nested too deeply"),
    ("-" * 1_500 + "1", "too complex"),
    ("not " * 400 + "approved", "too complex"),
    ("[" * 199 + "]" * 199, "nested too deeply"),
    ("1+" * 100_000 + "1", "at most 2,000"),
    ("a" * 3_000, "at most 2,000"),
    ("+".join(["amount"] * 280), "too complex"),
]


@pytest.mark.parametrize(("text", "fragment"), ESCAPES, ids=[e[0][:60] for e in ESCAPES])
def test_escape_is_refused_clearly_and_quickly(text: str, fragment: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ExpressionError) as caught:
        evaluate_text(text, HOSTILE_CONTEXT, now=NOW)
    elapsed = time.perf_counter() - started
    assert fragment in caught.value.problem
    assert str(caught.value).startswith("Expression `")
    assert elapsed < 1.0, f"took {elapsed:.2f} s"


def test_redundant_parentheses_are_no_nesting() -> None:
    assert evaluate_text("(" * 150 + "1" + ")" * 150, {}) == 1
