"""Errors of the expression language.

Both kinds name the expression and, where known, the line and column (1-based,
in characters, so Chinese text counts one per character), because the reader
is a process designer looking at a gateway condition, not a stack trace.
"""

from __future__ import annotations

from engine.errors import FormflowError

# How much of a long expression an error message quotes.
QUOTE_CHARS = 80


class ExpressionError(FormflowError):
    """An expression was refused (parse) or failed (evaluation)."""

    title = "Invalid expression"

    def __init__(
        self,
        problem: str,
        *,
        text: str,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.problem = problem
        self.text = text
        self.line = line
        self.column = column
        super().__init__(self._compose())

    def _compose(self) -> str:
        quoted = self.text if len(self.text) <= QUOTE_CHARS else self.text[:QUOTE_CHARS] + "…"
        where = ""
        if self.line is not None and self.column is not None:
            where = f" at line {self.line}, column {self.column}"
        return f"Expression `{quoted}`{where}: {self.problem}"


class ExpressionParseError(ExpressionError):
    """The text is not an expression of the language, or it breaks a limit.

    Raised by ``parse``: a publisher reports it against the BPMN element.
    """


class ExpressionEvaluationError(ExpressionError):
    """A valid expression failed on its data: a missing name, a type
    mismatch, a division by zero, a value or work limit."""

    title = "Expression failed"
