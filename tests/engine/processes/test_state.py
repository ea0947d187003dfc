"""Instance state: stored without the spec, decimals exact, JSON all the way down."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from process_support import approval
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from engine.processes.bpmn import parse_bpmn
from engine.processes.scripting import ExpressionScriptEngine
from engine.processes.state import dump, load


def test_state_round_trips_without_the_spec_and_keeps_decimals_exact() -> None:
    parsed = parse_bpmn(approval())
    engine = ExpressionScriptEngine(lambda: dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=engine)
    data = {"record": {"amount": Decimal("500000.01")}, "rate": Decimal("0.0435")}
    workflow.data.update(data)
    workflow.task_tree.data.update(data)  # the root task: SpiffWorkflow saves it unconverted
    workflow.do_engine_steps()
    state = dump(workflow)
    text = json.dumps(state)  # no Decimal left for the JSON column to choke on
    assert "spec" not in state and "subprocess_specs" not in state
    again = load(json.loads(text), parsed, engine)
    (review,) = [t for t in again.get_tasks() if t.task_spec.name == "review"]
    assert review.data["record"]["amount"] == Decimal("500000.01")
    assert isinstance(review.data["rate"], Decimal)
    assert dump(again) == state
