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
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

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
    state: dict[str, Any] = _exact(_REGISTRY.convert(workflow))
    return state


def _exact(value: Any) -> Any:
    """Decimals the serializer left as they are, in its own ``typename`` form.

    SpiffWorkflow 3.2.0 converts task data through the registry on load but
    not on save for the root task's data and for data deltas; its loader
    restores this form, so decimals come back exact.
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
