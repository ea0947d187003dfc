"""Service tasks as SpiffWorkflow runs them: a task that waits for its connector job.

SpiffWorkflow 3.2.0's Spiff parser wants a SpiffArena
``spiffworkflow:serviceTaskOperator`` on every ``bpmn:serviceTask`` and its
spec calls ``script_engine.call_service`` from inside ``do_engine_steps``,
i.e. inside the business transaction. Formflow parses a service task as
:class:`ServiceCall` instead: running it leaves it ``STARTED`` (SpiffWorkflow's
state for a task that ran and has not finished), the command that reached it
enqueues a connector job, and that job — after its call, under the instance
lock — marks it done with :func:`finish` and runs it again, which completes it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser
from SpiffWorkflow.spiff.specs.spiff_task import SpiffBpmnTask
from SpiffWorkflow.util.task import TaskState

# Set on the task by the connector job; the next run of the task completes it.
_DONE = "formflow_service_done"


class ServiceCall(SpiffBpmnTask):  # type: ignore[misc]
    """A ``bpmn:serviceTask``: not manual (no work item), done only by its job."""

    def _run_hook(self, my_task: Any) -> bool | None:
        if my_task._get_internal_data(_DONE):
            return bool(super()._run_hook(my_task))
        return None  # SpiffWorkflow leaves the task STARTED: it waits


class FormflowBpmnParser(SpiffBpmnParser):  # type: ignore[misc]
    """SpiffWorkflow's Spiff parser with Formflow's service tasks."""

    OVERRIDE_PARSER_CLASSES: ClassVar[dict[str, tuple[Any, Any]]] = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (SpiffTaskParser, ServiceCall),
    }


def waiting_services(workflow: Any) -> list[Any]:
    """The instance's service tasks that wait for their connector job."""
    return [t for t in workflow.get_tasks(state=TaskState.STARTED) if is_waiting(t)]


def is_waiting(task: Any) -> bool:
    """``task`` is a service task waiting for its connector job."""
    return isinstance(task.task_spec, ServiceCall) and bool(task.has_state(TaskState.STARTED))


def finish(task: Any, data: dict[str, Any]) -> None:
    """Give a waiting service task its result; the caller runs it (``Processes._run``)."""
    task.data.update(data)
    task._set_internal_data(**{_DONE: True})
