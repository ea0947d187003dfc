"""Domain exceptions.

They carry what a business user needs to act (the field, the JSON pointer,
the number of rows) and nothing about HTTP: ``runtime`` maps them to status
codes at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorDetail:
    """One problem at one place: ``pointer`` is an RFC 6901 JSON pointer."""

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class FormflowError(Exception):
    """Base of every domain error."""

    title = "Formflow error"

    def __init__(self, message: str, errors: list[ErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: list[ErrorDetail] = list(errors or [])

    def __str__(self) -> str:
        if not self.errors:
            return self.message
        lines = [self.message, *(f"  {e.pointer or '/'}: {e.message}" for e in self.errors)]
        return "\n".join(lines)


class DefinitionError(FormflowError):
    """A form definition (or app folder) is malformed; nothing was changed."""

    title = "Invalid form definition"


class RecordValidationError(FormflowError):
    """A record payload violates its form's schema."""

    title = "Invalid record"


class NotFoundError(FormflowError):
    """A form or record does not exist (or is not visible to the caller)."""

    title = "Not found"


class ConflictError(FormflowError):
    """An optimistic-lock or uniqueness conflict: the caller must re-read."""

    title = "Conflict"


class StaleVersionError(ConflictError):
    """An update named a version that is no longer current."""

    title = "Stale version"

    def __init__(self, message: str, *, expected: int, actual: int | None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class LinkError(RecordValidationError):
    """A link field points at a record that does not exist."""


class PermissionDeniedError(FormflowError):
    """The caller is known but may not do this."""

    title = "Forbidden"


class AuthenticationError(FormflowError):
    """The caller could not be identified (no, expired or revoked credentials)."""

    title = "Unauthorized"


class PlanRefusedError(FormflowError):
    """A publish would lose or violate data; nothing was applied.

    Each :class:`ErrorDetail` names the field (as a pointer into the schema)
    and how many rows block the change.
    """

    title = "Publish refused"

    def __init__(
        self,
        message: str,
        errors: list[ErrorDetail] | None = None,
        *,
        preview: list[str] | None = None,
    ) -> None:
        super().__init__(message, errors)
        # What publishing would have done, so a refusal can be shown next to the plan.
        self.preview = list(preview or [])


class QueryError(FormflowError):
    """A list query names an unknown field, operator or a bad cursor."""

    title = "Invalid query"
