"""The one safe expression language of Formflow.

Gateway conditions, timer, assignee and due-time expressions, data mappings
(and later rules and tags) are written in a small subset of Python's
expression syntax. ``parse`` validates text into an :class:`Expression` (our
own typed tree, also the input of a SQL compiler); ``evaluate`` computes it
against a mapping of variables with no access to builtins, imports or
Python attributes, bounded in size and work. See docs/expressions.md.
"""

from engine.expressions.api import evaluate_text, parse, parse_cached
from engine.expressions.errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionParseError,
)
from engine.expressions.evaluator import evaluate
from engine.expressions.functions import FUNCTIONS
from engine.expressions.nodes import Expression

__all__ = [
    "FUNCTIONS",
    "Expression",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionParseError",
    "evaluate",
    "evaluate_text",
    "parse",
    "parse_cached",
]
