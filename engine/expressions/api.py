"""The public entry points: ``parse`` (with constant checking), a parse cache
and ``evaluate_text`` for script-engine adapters.

Parts of an expression that use no variables and no clock (``duration("P1M")``,
``1/0``, ``date("2025-02-30")``, ``9**9**9``) are computed once here, so a
mistake in them is refused when a process is published, not when a token
reaches the gateway.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

from engine.expressions.errors import ExpressionEvaluationError, ExpressionParseError
from engine.expressions.evaluator import evaluate
from engine.expressions.functions import FUNCTIONS
from engine.expressions.nodes import Expression, Literal, Node, children, is_closed
from engine.expressions.parser import translate

PARSE_CACHE_SIZE = 1_024
# Any fixed instant will do: constant parts never read the clock.
_CONSTANT_CLOCK = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_CLOCK_FUNCTIONS = frozenset(name for name, function in FUNCTIONS.items() if not function.pure)


def parse(text: str) -> Expression:
    """Parse and validate ``text``; raise :class:`ExpressionParseError` if refused."""
    expression = translate(text)
    for node in constant_parts(expression.root):
        try:
            evaluate(
                Expression(text, node, frozenset(), frozenset(), frozenset()),
                {},
                now=_CONSTANT_CLOCK,
            )
        except ExpressionEvaluationError as error:
            raise ExpressionParseError(
                error.problem, text=text, line=error.line, column=error.column
            ) from None
    return expression


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_cached(text: str) -> Expression:
    """``parse`` memoised by text (a refusal is not cached: it is raised again)."""
    return parse(text)


def evaluate_text(text: str, context: Mapping[str, Any], *, now: dt.datetime | None = None) -> Any:
    """Parse (memoised by text) and evaluate: the entry point for script engines."""
    return evaluate(parse_cached(text), context, now=now)


def is_constant(node: Node) -> bool:
    """No variables and no clock below ``node``."""
    return is_closed(node, excluded_calls=_CLOCK_FUNCTIONS)


def constant_parts(root: Node) -> list[Node]:
    """The largest constant sub-trees that are more than a literal."""
    found: list[Node] = []
    pending = [root]
    while pending:
        node = pending.pop()
        if is_constant(node):
            if not isinstance(node, Literal):
                found.append(node)
        else:
            pending.extend(children(node))
    return found
