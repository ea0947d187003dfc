"""Multi-instance counters for completion conditions (countersign, any-one, vote ratio).

SpiffWorkflow evaluates a multi-instance task's ``completionCondition`` on
the instance that just completed, with only that instance's data. Approval
rules need the whole picture, so expressions evaluated on an instance of a
multi-instance task also see, as Camunda names them:

* ``nrOfInstances``: how many instances there are (or will be, sequential);
* ``nrOfCompletedInstances``: how many have completed;
* ``nrOfActiveInstances``: how many are waiting for someone;

and, counting the ``outcome`` each completed instance was given,
``nrOfApprovals`` and ``nrOfRejections``. So a two-thirds vote is
``nrOfApprovals / nrOfInstances >= 2 / 3``, any-one-approves
``outcome == "approve"``, a countersign with a veto ``outcome == "reject"``.

The element variable (``inputDataItem``, e.g. ``approver``) belongs to its
instance, as in Camunda: :func:`drop_element_variable` takes it out of an
instance's data before it completes. SpiffWorkflow would otherwise merge it
into the multi-instance task's data, and then refuse to create the next
instance of a sequential one ("input item already exists").
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import (
    MultiInstanceTask,
    SequentialMultiInstanceTask,
)
from SpiffWorkflow.util.task import TaskState

from engine.processes.scripting import ExpressionScriptEngine


def multi_instance_counters(task: Any) -> dict[str, int]:
    """The counters of the multi-instance task ``task`` is an instance of (else nothing)."""
    parent: Any = getattr(task, "parent", None)
    spec = getattr(parent, "task_spec", None)
    if not isinstance(spec, MultiInstanceTask):
        return {}
    children = [c for c in parent.children if c.task_spec.name == spec.task_spec]
    merged = set(parent.internal_data.get("merged", []))
    done = [c for c in children if str(c.id) in merged]
    total = len(children)
    if isinstance(spec, SequentialMultiInstanceTask):
        if "cardinality" in parent.internal_data:
            total = int(parent.internal_data["cardinality"])
        else:
            total += len(parent.internal_data.get("remaining", []))
    outcomes = [c.data.get("outcome") for c in done]
    return {
        "nrOfInstances": total,
        "nrOfCompletedInstances": len(done),
        "nrOfActiveInstances": sum(1 for c in children if not c.has_state(TaskState.FINISHED_MASK)),
        "nrOfApprovals": outcomes.count("approve"),
        "nrOfRejections": outcomes.count("reject"),
    }


class ApprovalScriptEngine(ExpressionScriptEngine):
    """The expression engine, plus the multi-instance counters where they apply."""

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        counters = multi_instance_counters(task)
        if counters:
            external_context = {**counters, **(external_context or {})}
        return super().evaluate(task, expression, external_context)


def drop_element_variable(task: Any) -> None:
    """Remove the element variable from a completing multi-instance instance's data."""
    parent: Any = getattr(task, "parent", None)
    spec = getattr(parent, "task_spec", None)
    if not isinstance(spec, MultiInstanceTask) or spec.input_item is None:
        return
    name = spec.input_item.bpmn_id
    if spec.output_item is None or spec.output_item.bpmn_id != name:
        task.data.pop(name, None)
