"""Service tasks as connector jobs: what a connector is given, and when the job is enqueued.

A service task never calls out inside a command. The command that reaches
it leaves it waiting (:mod:`engine.processes.service_spec`) and, in the same
transaction, :func:`schedule_services` enqueues one ``process.service`` job
for it (dedupe key: instance + task, as for timers), so the call exists
exactly when the step that caused it commits. The job
(:mod:`engine.processes.service_handlers`) builds a :class:`ServiceRequest`
from the task's data, hands it to the connector, and completes the task.

Connectors live in ``connectors/`` (the engine imports nothing above it): a
connector is a callable from :class:`ServiceRequest` to
:class:`ServiceResponse` that raises :class:`ConnectorError` when trying
again may help and :class:`ConnectorRejected` when it cannot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail
from engine.expressions.api import evaluate_text
from engine.expressions.errors import ExpressionError
from engine.jobs import enqueue
from engine.processes.errors import ProcessRuntimeError
from engine.processes.scripting import expression_text, to_data
from engine.processes.service_config import ServiceConfig, check_url
from engine.processes.service_spec import waiting_services

SERVICE = "process.service"


@dataclass(frozen=True)
class ServiceRequest:
    connector: str
    method: str
    url: str
    body: Any  # JSON values (None: no body)
    timeout: float  # seconds, for the whole call
    # The same for every attempt of one task's call, so the other side can
    # recognise a call repeated after a worker died before committing.
    idempotency_key: str


@dataclass(frozen=True)
class ServiceResponse:
    status: int
    body: Any  # the JSON answer, decimals exact; None when empty or not JSON
    text: str | None = None  # the start of an answer that is not JSON


class ConnectorError(Exception):
    """The call failed in a way that trying again later may fix (5xx, network, timeout)."""


class ConnectorRejected(ConnectorError):
    """The other side refused the call (4xx, an answer too large): retrying cannot help."""


Connector = Callable[[ServiceRequest], ServiceResponse]


def schedule_services(
    conn: sa.Connection, instance_id: int, workflow: Any, now: dt.datetime
) -> None:
    """One connector job per waiting service task of the instance, due now (idempotent)."""
    for task in waiting_services(workflow):
        enqueue(
            conn,
            SERVICE,
            {"instance": instance_id, "task": str(task.id)},
            dedupe_key=f"service:{instance_id}:{task.id}",
            now=now,
        )


def build_request(
    task: Any, config: ServiceConfig, instance_id: int, now: dt.datetime
) -> ServiceRequest:
    """The call a waiting service task makes, from its data; ProcessRuntimeError if it cannot."""
    element = task.task_spec.bpmn_id
    url = config.url if config.url_is_literal else _evaluate(element, "url", config.url, task, now)
    if not isinstance(url, str):
        raise _problem(element, f"the url expression gave {type(url).__name__}, not text")
    reason = check_url(url)
    if reason:
        raise _problem(element, reason)
    body = _json(_evaluate(element, "body", config.body, task, now)) if config.body else None
    return ServiceRequest(
        connector=config.connector,
        method=config.method,
        url=url,
        body=body,
        timeout=config.timeout,
        idempotency_key=f"formflow-{instance_id}-{task.id}",
    )


def result_data(element: str, config: ServiceConfig, response: ServiceResponse) -> dict[str, Any]:
    """What the answer adds to the process data; an answer to keep must be JSON (or empty)."""
    if config.result_variable is None:
        return {}
    if response.text is not None:
        raise _problem(
            element, f"the answer ({response.status}) is not JSON: {response.text[:100]!r}"
        )
    return {config.result_variable: to_data(response.body)}


def _evaluate(element: str, what: str, text: str, task: Any, now: dt.datetime) -> Any:
    try:
        return evaluate_text(expression_text(text), dict(task.data), now=now)
    except ExpressionError as exc:
        raise _problem(element, f"{what}: {exc.message}") from None


def _json(value: Any) -> Any:
    """Process data as JSON values: dates as ISO text, decimals as numbers."""
    if isinstance(value, Decimal):
        # JSON has one number type; a whole decimal is an integer, any other
        # prints as the shortest float that reads back as the same digits.
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    converted = to_data(value)
    if converted is not value:
        return _json(converted)
    return value


def _problem(element: str, detail: str) -> ProcessRuntimeError:
    return ProcessRuntimeError(
        f"The service task {element} cannot call out: {detail}",
        [ErrorDetail(f"#{element}", detail)],
    )
