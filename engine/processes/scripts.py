"""Scripts, when a server turns them on: assignments in the expression language.

Script tasks (and SpiffWorkflow's ``preScript`` / ``postScript`` on a task)
are refused at publish unless the server runs with ``FORMFLOW_SCRIPT_TASKS``
(docs/processes.md). Even then a script is not Python: it is one assignment
per line, ``name = expression``, each expression in the sandboxed language
of :mod:`engine.expressions` (no builtins, attributes, imports or loops;
bounded in size and time), seeing the task's data and the names assigned on
the lines before it::

    # a script task after the credit review
    rate = 0.0435 if record.amount > 1000000 else 0.0465
    monthly = round(record.amount * rate / 12, 2)

A script is checked whole when it is published (every line, each problem
with its line) and parsed once per text when it runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.expressions.api import parse_cached
from engine.expressions.errors import ExpressionError
from engine.expressions.evaluator import evaluate
from engine.expressions.nodes import Expression

MAX_LINES = 50
MAX_CHARS = 10_000
_ASSIGNMENT = re.compile(r"^([A-Za-z][A-Za-z0-9_]{0,63})\s*=(?!=)\s*(.+)$")


class ScriptError(ValueError):
    """A script line that is not ``name = expression`` (the message names the line)."""


@dataclass(frozen=True)
class Assignment:
    line: int
    name: str
    expression: Expression


def script_problems(text: str) -> list[str]:
    """Every problem of ``text`` as a script, one message each (empty: it may run)."""
    if len(text) > MAX_CHARS:
        return [f"a script may be at most {MAX_CHARS:,} characters"]
    lines = _lines(text)
    if len(lines) > MAX_LINES:
        return [f"a script may have at most {MAX_LINES} assignments"]
    problems = []
    for number, line in lines:
        try:
            _assignment(number, line)
        except (ScriptError, ExpressionError) as exc:
            problems.append(f"line {number}: {exc}")
    return problems


@functools.lru_cache(maxsize=256)
def parse_script(text: str) -> tuple[Assignment, ...]:
    """The assignments of ``text``; raise on the first bad line (publish checked them all)."""
    problems = script_problems(text)
    if problems:
        raise ScriptError("; ".join(problems))
    return tuple(_assignment(number, line) for number, line in _lines(text))


def run_script(text: str, data: Mapping[str, Any], *, now: dt.datetime) -> dict[str, Any]:
    """The names ``text`` assigns and their values, each line seeing the ones before it."""
    context = dict(data)
    assigned: dict[str, Any] = {}
    for step in parse_script(text):
        try:
            value = evaluate(step.expression, context, now=now)
        except ExpressionError as exc:
            raise ScriptError(f"line {step.line}: {exc}") from None
        context[step.name] = assigned[step.name] = value
    return assigned


def _lines(text: str) -> list[tuple[int, str]]:
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def _assignment(number: int, line: str) -> Assignment:
    match = _ASSIGNMENT.match(line)
    if match is None:
        raise ScriptError(
            "each line assigns one name: name = expression (a letter, then letters, digits or _)"
        )
    return Assignment(number, match.group(1), parse_cached(match.group(2)))
