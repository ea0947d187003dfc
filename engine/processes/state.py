"""Instance state without its spec: what ``ff_process_instance.state`` holds.

SpiffWorkflow's serializer writes the whole process spec into every
instance (about half the bytes, and half the time to save and load). Specs
are immutable per published version and cached (``SpecCache``), so an
instance stores only its tasks, data and events, and is rebuilt around the
cached spec. Decimals stay exact (SpiffWorkflow cannot serialise them by
itself).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnWorkflowConverter,
    WorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.helpers import DefaultRegistry
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import StandardLoopTask
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from engine.processes.bpmn import ParsedBpmn


class _StateConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def restore_with(
        self, dct: dict[str, Any], parsed: ParsedBpmn, script_engine: Any
    ) -> BpmnWorkflow:
        workflow = BpmnWorkflow(
            parsed.spec, parsed.subprocess_specs, script_engine=script_engine, deserializing=True
        )
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _registry() -> tuple[Any, _StateConverter]:
    registry = DefaultRegistry()
    registry.register(
        Decimal, lambda v: {"value": str(v)}, lambda d: Decimal(d["value"]), "Decimal"
    )
    config = {**SPIFF_CONFIG, BpmnWorkflow: _StateConverter}
    registry = BpmnWorkflowSerializer.configure(config, registry)
    converter = registry.convert_from_dict["BpmnWorkflow"].args[0].__self__
    return registry, converter


_REGISTRY, _CONVERTER = _registry()


def dump(workflow: BpmnWorkflow) -> dict[str, Any]:
    """The state to store; finished rounds of standard loops leave ``workflow`` first."""
    drop_finished_rounds(workflow)
    state: dict[str, Any] = _REGISTRY.convert(workflow)
    for flow in (state, *state.get("subprocesses", {}).values()):
        for task in flow["tasks"].values():
            task["data"] = _exact(task["data"])
            task["delta"] = _exact(task["delta"])
    return state


def drop_finished_rounds(workflow: BpmnWorkflow) -> int:
    """Remove the finished rounds of every standard loop but its latest; how many went.

    SpiffWorkflow keeps each round of a ``standardLoopCharacteristics`` task
    as a child of the loop task, finished or not, so a review sent back for
    rework a thousand times costs a thousand tasks in every load, save and
    walk of the tree. The loop itself only counts its rounds (the ids in its
    ``merged`` list, and only against a ``loopMaximum``; without one, the
    list is cut to the latest id), and a return to the step needs only its
    latest round; the rounds themselves are in ``ff_process_history``. Rounds
    holding a subprocess are kept: a subprocess lives outside the task tree.
    Multi-instance tasks keep every instance: their completion counters
    (:mod:`engine.processes.multi_instance`) read them.
    """
    dropped = 0
    for flow in (workflow, *workflow.subprocesses.values()):
        for task in [t for t in flow.tasks.values() if isinstance(t.task_spec, StandardLoopTask)]:
            rounds = [c for c in task.children if _finished(c, workflow)]
            rounds.sort(key=lambda c: c.last_state_change)
            for old in rounds[:-1]:
                flow._remove_task(old.id)
                dropped += 1
            merged = task.internal_data.get("merged") or []
            if task.task_spec.maximum is None and len(merged) > 1:
                # Without a loopMaximum the loop never counts its rounds: the
                # latest is all a return to the step needs.
                task.internal_data["merged"] = merged[-1:]
    return dropped


def _finished(task: Any, workflow: BpmnWorkflow) -> bool:
    """``task`` and everything under it are done, and none of it is a subprocess."""
    stack = [task]
    while stack:
        node = stack.pop()
        if not node.has_state(TaskState.FINISHED_MASK) or node.id in workflow.subprocesses:
            return False
        stack.extend(node.children)
    return True


def _exact(value: Any) -> Any:
    """Decimals the serializer left as they are, in its own ``typename`` form.

    SpiffWorkflow 3.2.0 converts task data through the registry on load but
    not on save for the root task's data and for data deltas (everything else
    it converts); its loader restores this form, so decimals come back exact.
    """
    if isinstance(value, Decimal):
        return {"value": str(value), "typename": "Decimal"}
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


def load(state: dict[str, Any], parsed: ParsedBpmn, script_engine: Any) -> BpmnWorkflow:
    return _CONVERTER.restore_with(dict(state), parsed, script_engine)
