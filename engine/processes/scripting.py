"""SpiffWorkflow's script engine, replaced by Formflow's expression language.

SpiffWorkflow evaluates gateway conditions and timer expressions through a
script engine whose default is bare ``eval``/``exec`` with full builtins.
:class:`ExpressionScriptEngine` evaluates them with :mod:`engine.expressions`
instead: no builtins, no attributes, no imports, bounded in size and time.
Scripts run only where a server turned them on, as assignments in the same
language (:mod:`engine.processes.scripts`); service calls go through
connector jobs, so ``call_service`` refuses.

Designer-friendly forms are accepted too: Camunda's ``${amount > 1000}``
is the expression ``amount > 1000``, and a bare ISO 8601 duration or
instant in a timer (``PT2H``, ``2026-12-01T09:00:00+08:00``) is the text
itself, as BPMN modellers write it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine

from engine.expressions.api import evaluate_text, parse_cached
from engine.expressions.errors import ExpressionError
from engine.processes.scripts import ScriptError, run_script

ISO_LITERAL = re.compile(
    r"^(R\d*/)?(P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?"
    r"|\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?)(/.*)?$"
)


def expression_text(text: str) -> str:
    """The expression inside Camunda's ``${...}`` or ``#{...}``, else the text."""
    stripped = text.strip()
    if stripped.startswith(("${", "#{")) and stripped.endswith("}"):
        return stripped[2:-1].strip()
    return stripped


def is_iso_literal(text: str) -> bool:
    return bool(ISO_LITERAL.match(text.strip()))


def check_expression(text: str) -> None:
    """Raise ExpressionError unless ``text`` is an expression (or an ISO literal)."""
    if not is_iso_literal(text):
        parse_cached(expression_text(text))


def iso_duration(value: dt.timedelta) -> str:
    """``PT5400S``: what SpiffWorkflow's timers parse (exact to the second)."""
    return f"PT{int(value.total_seconds())}S"


def to_data(value: Any) -> Any:
    """A value as process data: JSON-friendly, exact (decimals stay Decimal)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    return value


class ExpressionScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """Conditions and timers in the safe expression language; no scripts."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        super().__init__()
        self.clock = clock

    def validate(self, expression: str) -> None:
        check_expression(expression)

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        if is_iso_literal(expression):
            return expression.strip()
        context = {**task.data, **(external_context or {})}
        try:
            value = evaluate_text(expression_text(expression), context, now=self.clock())
        except ExpressionError as exc:
            raise WorkflowTaskException(
                f"{exc.problem} in {expression!r}", task=task, exception=exc
            ) from None
        return _spiff_value(value)

    def execute(self, task: Any, script: str, external_context: Any = None) -> bool:
        # Only a server with script tasks on publishes one (engine/processes/scripts.py).
        context = {**task.data, **(external_context or {})}
        try:
            assigned = run_script(script, context, now=self.clock())
        except ScriptError as exc:
            raise WorkflowTaskException(f"the script failed: {exc}", task=task) from None
        task.data.update(to_data(assigned))
        return True

    def call_service(self, task: Any, **kwargs: Any) -> None:
        raise WorkflowTaskException(
            "service calls run as connector jobs, not in the engine", task=task
        )


def _spiff_value(value: Any) -> Any:
    """What SpiffWorkflow expects back: timers want ISO text, conditions a bool."""
    if isinstance(value, dt.timedelta | dt.datetime | dt.date):
        return to_data(value)
    if isinstance(value, Decimal):
        return value
    return value
