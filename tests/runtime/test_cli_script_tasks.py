"""``FORMFLOW_SCRIPT_TASKS`` decides whether ``formflow process publish`` takes scripts."""

from __future__ import annotations

from pathlib import Path

from test_cli import Run, make_runner

SCRIPTED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"
    targetNamespace="http://formflow.example/bpmn">
  <bpmn:process id="scored" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="score"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>score = 1</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="score" />
    <bpmn:sequenceFlow id="f2" sourceRef="score" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_scripts_publish_only_where_the_server_turns_them_on(
    tmp_path: Path, database_url: str
) -> None:
    run: Run = make_runner(tmp_path, database_url)
    path = tmp_path / "scored.bpmn"
    path.write_text(SCRIPTED, "utf-8")
    refused = run("process", "publish", str(path))
    assert refused.exit_code != 0
    assert "#score" in refused.output and "FORMFLOW_SCRIPT_TASKS" in refused.output
    assert "No processes are published." in run("process", "list").output
    taken = run("process", "publish", str(path), env={"FORMFLOW_SCRIPT_TASKS": "true"})
    assert taken.exit_code == 0, taken.output
    assert "Published scored" in taken.output
