"""Reading a BPMN 2.0 file: XML, schema, SpiffWorkflow's parser, our properties.

Everything a publisher must refuse is found here and reported at once, each
problem pointed at its BPMN element (``#review`` for the element with id
``review``), so a designer can find it in the diagram. Nothing here touches
the database.

Task properties (assignment, form, due time) are read from
``spiffworkflow:properties`` and from the Camunda Modeler's own attributes
and ``camunda:properties``, so files drawn in bpmn-js, SpiffArena or Camunda
Modeler all publish. Camunda extensions that would change how a process
runs and that Formflow does not run (Java delegates, listeners, external
tasks, input/output mappings) are refused, naming the element; the ones
that only describe the engine (history time to live, version tags) are
reported as warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.spiff.parser.process import BpmnValidator

from engine.errors import ErrorDetail
from engine.processes.cycles import adapt_timer_specs, check_timer, timer_kind
from engine.processes.errors import ProcessDefinitionError
from engine.processes.scripts import script_problems
from engine.processes.service_config import SERVICE_PROPERTIES, check_service
from engine.processes.service_spec import FormflowBpmnParser

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
MAX_BYTES = 2_000_000
PROCESS_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")

# Properties Formflow reads on a task (docs/processes.md).
PROPERTIES = frozenset(
    {
        "assignee",
        "candidateUsers",
        "candidateRoles",
        "candidateDepartments",
        "candidateScope",
        "dueIn",
        "remindBefore",
        "escalateTo",
        "form",
        "makerChecker",
        "escalation",
    }
)
PROPERTIES |= SERVICE_PROPERTIES  # a service task's: engine/processes/service_config.py
# Camunda attributes with a Formflow meaning: attribute -> our property.
CAMUNDA_MAPPED = {
    "assignee": "assignee",
    "candidateUsers": "candidateUsers",
    "candidateGroups": "candidateRoles",
    "formKey": "form",
}
# On the process: who may start it (Camunda Modeler's "candidate starter" fields).
STARTER_PROPERTIES = frozenset({"candidateStarterRoles", "candidateStarterUsers"})
CAMUNDA_STARTERS = {
    "candidateStarterGroups": "candidateStarterRoles",
    "candidateStarterUsers": "candidateStarterUsers",
}
# Camunda attributes that only tune Camunda's own engine: ignored, with a warning.
CAMUNDA_IGNORED = frozenset(
    {
        "historyTimeToLive",
        "versionTag",
        "isStartableInTasklist",
        "jobPriority",
        "taskPriority",
        "asyncBefore",
        "asyncAfter",
        "exclusive",
        "priority",
        "initiator",
    }
)

_SAFE_XML = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True
)


@dataclass(frozen=True)
class Element:
    """A flow node of the process, with the properties Formflow reads."""

    id: str
    kind: str  # the BPMN tag without namespace: userTask, exclusiveGateway, ...
    name: str
    lane: str | None
    properties: Mapping[str, str]


@dataclass
class ParsedBpmn:
    key: str  # the executable process's id
    name: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    elements: dict[str, Element]
    conditions: dict[str, str]  # sequence flow id -> condition text
    timers: dict[str, str]  # timer event id -> its expression
    warnings: list[ErrorDetail] = field(default_factory=list)
    # Who may start it (engine/processes/starters.py); both empty: anyone signed in.
    starter_roles: tuple[str, ...] = ()
    starter_users: tuple[str, ...] = ()


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _local(tag: Any) -> str:
    return str(tag).rpartition("}")[2]


def read_xml(text: str | bytes) -> Any:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw) > MAX_BYTES:
        raise ProcessDefinitionError(
            f"The BPMN file is larger than {MAX_BYTES // 1_000_000} MB.",
            [ErrorDetail("", "too large")],
        )
    try:
        return etree.fromstring(raw, _SAFE_XML)
    except etree.XMLSyntaxError as exc:
        raise ProcessDefinitionError(
            "The file is not well-formed XML.", [ErrorDetail("", f"line {exc.lineno}: {exc.msg}")]
        ) from None


def parse_bpmn(text: str | bytes, *, source: str = "", scripts: bool = False) -> ParsedBpmn:
    """Parse and check the structure; raise ProcessDefinitionError listing every problem.

    ``scripts``: the server runs script tasks (``FORMFLOW_SCRIPT_TASKS``); without
    it a script anywhere in the file is refused (engine/processes/scripts.py).
    """
    root = read_xml(text)
    if _local(root.tag) != "definitions" or etree.QName(root).namespace != BPMN:
        raise ProcessDefinitionError(
            "This is not a BPMN 2.0 file.",
            [ErrorDetail("", "the root element must be bpmn:definitions")],
        )
    problems: list[ErrorDetail] = []
    warnings: list[ErrorDetail] = []
    processes = root.findall(_q(BPMN, "process"))
    executable = [p for p in processes if p.get("isExecutable", "true") != "false"]
    if len(executable) != 1:
        raise ProcessDefinitionError(
            "A process file needs exactly one executable process.",
            [ErrorDetail("", f"found {len(executable)} executable bpmn:process elements")],
        )
    main = executable[0]
    key = main.get("id", "")
    if not PROCESS_KEY.match(key):
        problems.append(
            ErrorDetail(
                f"#{key}",
                "the process id must be a letter or _, then up to 63 letters, digits, _ or -",
            )
        )
    elements, conditions, timers = _read_elements(root, problems, warnings, scripts=scripts)
    starters = _starters(main, problems)
    if problems:
        raise ProcessDefinitionError(f"The process {key!r} cannot be published.", problems)
    parser = FormflowBpmnParser(validator=BpmnValidator())
    try:
        parser.add_bpmn_xml(root, filename=source or None)
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
        adapt_timer_specs([spec, *subprocess_specs.values()])  # Formflow's clock runs timers
    except ValidationException as exc:
        where = f"#{exc.id}" if getattr(exc, "id", "") else ""
        line = getattr(exc, "line_number", "")
        detail = f"{exc}" + (f" (line {line})" if line else "")
        raise ProcessDefinitionError(
            f"The process {key!r} is not valid BPMN.", [ErrorDetail(where, detail)]
        ) from None
    return ParsedBpmn(
        key=key,
        name=main.get("name") or key,
        spec=spec,
        subprocess_specs=subprocess_specs,
        elements=elements,
        conditions=conditions,
        timers=timers,
        warnings=warnings,
        starter_roles=starters.get("candidateStarterRoles", ()),
        starter_users=starters.get("candidateStarterUsers", ()),
    )


def _read_elements(
    root: Any, problems: list[ErrorDetail], warnings: list[ErrorDetail], *, scripts: bool
) -> tuple[dict[str, Element], dict[str, str], dict[str, str]]:
    lanes: dict[str, str] = {}
    for lane in root.iter(_q(BPMN, "lane")):
        for ref in lane.findall(_q(BPMN, "flowNodeRef")):
            lanes[(ref.text or "").strip()] = lane.get("name") or lane.get("id", "")
    elements: dict[str, Element] = {}
    conditions: dict[str, str] = {}
    timers: dict[str, str] = {}
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        ns = etree.QName(node).namespace
        eid = node.get("id", "")
        for attr, value in node.attrib.items():
            if etree.QName(attr).namespace == CAMUNDA:
                _camunda_attribute(node, etree.QName(attr).localname, value, problems, warnings)
        if ns == CAMUNDA and _local(node.tag) not in ("properties", "property"):
            owner = _owner(node)
            problems.append(
                ErrorDetail(
                    f"#{owner}",
                    f"camunda:{_local(node.tag)} is a Camunda engine extension Formflow does "
                    "not run (listeners, connectors, input/output, form fields); remove it "
                    "and use Formflow properties, forms or service tasks",
                )
            )
        if ns == SPIFF and _local(node.tag) in ("preScript", "postScript"):
            problems.extend(_script_problems(node, _owner(node), scripts))
        if ns != BPMN:
            continue
        tag = _local(node.tag)
        if tag == "sequenceFlow":
            cond = node.find(_q(BPMN, "conditionExpression"))
            if cond is not None and (cond.text or "").strip():
                conditions[eid] = (cond.text or "").strip()
        elif tag == "timerEventDefinition":
            problems.extend(check_timer(node))  # engine/processes/cycles.py
            found = timer_kind(node)
            if found is not None:
                timers[_owner(node.getparent())] = found[1]
        elif tag == "scriptTask":
            problems.extend(_script_problems(node.find(_q(BPMN, "script")), eid, scripts))
        if (
            tag.endswith("Task")
            or tag in ("startEvent", "endEvent", "callActivity", "subProcess")
            or tag.endswith(("Gateway", "Event"))
        ):
            props = dict(_properties(node, problems))
            for attr, ours in CAMUNDA_MAPPED.items():
                value = node.get(_q(CAMUNDA, attr))
                if value is not None:
                    props.setdefault(ours, _unwrap(value))
            elements[eid] = Element(eid, tag, node.get("name") or eid, lanes.get(eid), props)
            problems.extend(check_service(node, tag, props))
    return elements, conditions, timers


def _script_problems(node: Any, owner: str, scripts: bool) -> list[ErrorDetail]:
    """A script (task, pre- or post-script) on a server with or without script tasks."""
    if not scripts:
        return [
            ErrorDetail(
                f"#{owner}",
                "scripts are turned off on this server (FORMFLOW_SCRIPT_TASKS): compute "
                "values with expressions in gateway conditions and task properties instead",
            )
        ]
    text = (node.text or "") if node is not None else ""
    if not text.strip():
        return [ErrorDetail(f"#{owner}", "the script is empty")]
    return [ErrorDetail(f"#{owner}", problem) for problem in script_problems(text)]


def _properties(node: Any, problems: list[ErrorDetail]) -> Iterator[tuple[str, str]]:
    ext = node.find(_q(BPMN, "extensionElements"))
    if ext is None:
        return
    for ns in (SPIFF, CAMUNDA):
        for prop in ext.iter(_q(ns, "property")):
            name, value = prop.get("name", ""), prop.get("value")
            if name not in PROPERTIES:
                problems.append(
                    ErrorDetail(
                        f"#{node.get('id', '')}",
                        f"unknown property {name!r}; Formflow reads "
                        + ", ".join(sorted(PROPERTIES)),
                    )
                )
            elif value is None:
                problems.append(
                    ErrorDetail(f"#{node.get('id', '')}", f"property {name!r} has no value")
                )
            else:
                yield name, value.strip()


def _camunda_attribute(
    node: Any, name: str, value: str, problems: list[ErrorDetail], warnings: list[ErrorDetail]
) -> None:
    where = f"#{node.get('id', '')}"
    if name in CAMUNDA_MAPPED:
        return
    if name in CAMUNDA_STARTERS:
        if _local(node.tag) != "process":
            problems.append(ErrorDetail(where, f"camunda:{name} belongs on the process"))
        return
    if name in CAMUNDA_IGNORED:
        warnings.append(
            ErrorDetail(where, f"camunda:{name} is ignored (it tunes Camunda's engine)")
        )
        return
    problems.append(
        ErrorDetail(
            where,
            f"camunda:{name}={value!r} is not supported by Formflow; remove it "
            "(service calls are Formflow connectors, assignment uses Formflow properties)",
        )
    )


def _starters(process: Any, problems: list[ErrorDetail]) -> dict[str, tuple[str, ...]]:
    """The process's own properties: who may start it (names, comma-separated)."""
    found: dict[str, str] = {}
    ext = process.find(_q(BPMN, "extensionElements"))
    for ns in (SPIFF, CAMUNDA):
        for prop in ext.iter(_q(ns, "property")) if ext is not None else ():
            name = prop.get("name", "")
            if name in STARTER_PROPERTIES:
                found[name] = prop.get("value") or ""
            else:
                problems.append(
                    ErrorDetail(
                        f"#{process.get('id', '')}",
                        f"unknown process property {name!r}; a process reads "
                        + ", ".join(sorted(STARTER_PROPERTIES)),
                    )
                )
    for attr, ours in CAMUNDA_STARTERS.items():
        value = process.get(_q(CAMUNDA, attr))
        if value is not None:
            found.setdefault(ours, _unwrap(value))
    return {k: tuple(property_names(v)) for k, v in found.items()}


def property_names(text: str) -> list[str]:
    """The names in a comma-separated property (``"risk_officer, branch_head"``)."""
    return [n.strip() for n in text.split(",") if n.strip()]


def _owner(node: Any) -> str:
    """The id of the nearest ancestor (or self) that has one."""
    while node is not None:
        if node.get("id"):
            return str(node.get("id"))
        node = node.getparent()
    return ""


def _unwrap(value: str) -> str:
    """``${initiator}`` (Camunda's JUEL) -> ``initiator``."""
    text = value.strip()
    if text.startswith(("${", "#{")) and text.endswith("}"):
        return text[2:-1].strip()
    return text
