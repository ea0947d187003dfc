"""Domain errors of processes (no HTTP: runtime maps them to problems)."""

from __future__ import annotations

from engine.errors import ConflictError, DefinitionError, FormflowError


class ProcessDefinitionError(DefinitionError):
    """A BPMN file cannot be published; each problem points at a BPMN element (``#id``)."""

    title = "Invalid process definition"


class ProcessStateError(ConflictError):
    """The command does not fit the instance or task as it is now (done, not yours, ...)."""

    title = "Process conflict"


class ProcessRuntimeError(FormflowError):
    """Running the process failed at a BPMN element (a condition could not be evaluated, ...)."""

    title = "Process error"
