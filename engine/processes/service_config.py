"""A service task's configuration: its Formflow properties, checked at publish.

A ``bpmn:serviceTask`` is configured with task properties, like a user task
(``spiffworkflow:properties`` or ``camunda:properties``), documented in
docs/processes.md:

* ``connector``: which connector calls out; ``http`` is the only one so far;
* ``url``: an ``http``/``https`` address, or an expression giving one;
* ``method``: GET, POST, PUT, PATCH or DELETE (POST with a body, else GET);
* ``body``: an expression giving the JSON body from the process data;
* ``resultVariable``: the data name the JSON answer is stored under;
* ``timeout``: seconds to wait for the answer, 1-60 (10).

Only the connector keys are known here; the code that calls out lives in
``connectors/`` and is handed to the job handler by the runtime.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from engine.errors import ErrorDetail
from engine.expressions.api import parse_cached
from engine.expressions.errors import ExpressionError
from engine.processes.scripting import expression_text

CONNECTORS = frozenset({"http"})
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_TIMEOUT, MAX_TIMEOUT = 10, 60
SERVICE_PROPERTIES = frozenset({"connector", "url", "method", "body", "resultVariable", "timeout"})
_LOOPS = frozenset({"multiInstanceLoopCharacteristics", "standardLoopCharacteristics"})
_EXTENSIONS = "{http://www.omg.org/spec/BPMN/20100524/MODEL}extensionElements"
_SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
_VARIABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


@dataclass(frozen=True)
class ServiceConfig:
    connector: str
    url: str  # an address, or an expression giving one
    method: str
    body: str | None  # an expression
    result_variable: str | None
    timeout: float

    @property
    def url_is_literal(self) -> bool:
        return is_literal_url(self.url)


def is_literal_url(text: str) -> bool:
    return bool(_SCHEME.match(text.strip()))


def service_config(properties: Mapping[str, str]) -> ServiceConfig:
    """The configuration of a service task whose properties passed :func:`check_service`."""
    body = properties.get("body") or None
    method = (properties.get("method") or ("POST" if body else "GET")).upper()
    return ServiceConfig(
        connector=properties.get("connector", ""),
        url=properties.get("url", "").strip(),
        method=method,
        body=body,
        result_variable=properties.get("resultVariable") or None,
        timeout=float(properties.get("timeout") or DEFAULT_TIMEOUT),
    )


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be called (only absolute http/https addresses), or None."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"url {url!r} is not an address: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"url {url!r}: only http and https addresses can be called"
    if not parts.hostname:
        return f"url {url!r} has no host"
    if any(c.isspace() for c in url):
        return f"url {url!r} contains spaces"
    return None


def check_service(node: Any, kind: str, properties: Mapping[str, str]) -> list[ErrorDetail]:
    """What is wrong with the service configuration of ``node`` (a BPMN element), if anything.

    Service properties on any other element, and the other (user task)
    properties on a service task, are refused too: they would do nothing.
    """
    where = f"#{node.get('id', '')}"
    if kind != "serviceTask":
        return [
            ErrorDetail(where, f"{name} is a service task property; this is a {kind}")
            for name in sorted(SERVICE_PROPERTIES & set(properties))
        ]
    problems = [
        ErrorDetail(where, f"{name} is a user task property; a service task has no people")
        for name in sorted(set(properties) - SERVICE_PROPERTIES)
    ]
    children = {etree.QName(child).localname for child in node if isinstance(child.tag, str)}
    if children & _LOOPS:
        problems.append(ErrorDetail(where, "a service task cannot be a loop or multi-instance"))
    if node.find(f"{_EXTENSIONS}/{{{_SPIFF}}}serviceTaskOperator") is not None:
        problems.append(
            ErrorDetail(
                where,
                "spiffworkflow:serviceTaskOperator (SpiffArena's connector proxy) is not run "
                "by Formflow; configure the call with the properties connector, url, method, "
                "body and resultVariable",
            )
        )
    connector = properties.get("connector")
    if connector is None:
        problems.append(
            ErrorDetail(where, 'a service task needs a connector (connector="http") and a url')
        )
    elif connector not in CONNECTORS:
        problems.append(
            ErrorDetail(
                where,
                f"unknown connector {connector!r}; Formflow has " + ", ".join(sorted(CONNECTORS)),
            )
        )
    url = properties.get("url", "").strip()
    if connector is not None and not url:
        problems.append(ErrorDetail(where, "a service task needs a url"))
    elif url and is_literal_url(url):
        reason = check_url(url)
        if reason:
            problems.append(ErrorDetail(where, reason))
    elif url:
        _expression(where, "url", url, problems)
    if properties.get("body"):
        _expression(where, "body", properties["body"], problems)
    method = properties.get("method")
    if method is not None and method.upper() not in METHODS:
        problems.append(ErrorDetail(where, f"method {method!r}: one of {', '.join(METHODS)}"))
    variable = properties.get("resultVariable")
    if variable is not None and not _VARIABLE.match(variable):
        problems.append(
            ErrorDetail(
                where,
                f"resultVariable {variable!r}: a name of letters, digits and _, "
                "starting with a letter",
            )
        )
    timeout = properties.get("timeout")
    if timeout is not None and not (timeout.isdigit() and 1 <= int(timeout) <= MAX_TIMEOUT):
        problems.append(
            ErrorDetail(where, f"timeout {timeout!r}: whole seconds from 1 to {MAX_TIMEOUT}")
        )
    return problems


def _expression(where: str, what: str, text: str, problems: list[ErrorDetail]) -> None:
    try:
        parse_cached(expression_text(text))
    except ExpressionError as exc:
        problems.append(ErrorDetail(where, f"{what} {expression_text(text)!r}: {exc.message}"))
