"""Domain errors of the permissions layer.

Subclasses of the engine's errors, so the one table in runtime that maps
domain errors to HTTP statuses maps these too (409 and 422); only the title
says where they come from.
"""

from __future__ import annotations

from engine.errors import ConflictError, RecordValidationError


class OrganisationConflictError(ConflictError):
    """A change the organisation's current state forbids.

    Moving a department under its own subtree, deleting one that still has
    sub-departments, members or records, adding a member twice.
    """

    title = "Organisation change refused"


class AdministrationInputError(RecordValidationError):
    """A department, membership or role value is malformed; nothing was changed."""

    title = "Invalid administration input"
