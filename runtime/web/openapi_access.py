"""The OpenAPI document as one caller may use it.

``/openapi.json`` without credentials describes every published form (its
shape is metadata, not data); with a token, cookie or API key it describes
what that caller may do: forms they may do nothing with are gone,
operations whose action they lack are gone, hidden fields are gone from
records, bodies and filters, masked fields are typed as the masked strings
they receive, and fields they may not write are not in the request bodies.
Tailored documents are cached per catalogue and access signature (the
allowed actions and field levels per form, which is all a document depends
on), so callers with the same grants share one.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from engine.forms.definition import FormDefinition
from permissions.compile import Level
from permissions.gate import Gate
from permissions.policy import ACTIONS
from runtime.web.openapi import pascal

MAX_CACHED = 256
_MASKED = {"anyOf": [{"type": "string"}, {"type": "null"}]}

Signature = tuple[tuple[str, tuple[str, ...], tuple[tuple[str, int], ...]], ...]


def signature(gate: Gate) -> Signature:
    """What the document depends on: per form, the allowed actions and field levels."""
    out = []
    for key in sorted(gate.schema.forms):
        actions = tuple(a for a in ACTIONS if gate.access(key, a).allowed)
        levels = gate.access(key, "read").levels if actions else {}
        out.append((key, actions, tuple(sorted((k, int(v)) for k, v in levels.items()))))
    return tuple(out)


def tailor(doc: dict[str, Any], gate: Gate) -> dict[str, Any]:
    """A copy of the full document ``doc`` cut down to ``gate``'s access."""
    doc = copy.deepcopy(doc)
    paths: dict[str, Any] = doc.get("paths", {})
    schemas: dict[str, Any] = doc.get("components", {}).get("schemas", {})
    for key, tables in sorted(gate.schema.forms.items()):
        allowed = {a for a in ACTIONS if gate.access(key, a).allowed}
        _operations(paths, key, allowed)
        name = pascal(key)
        if not allowed:
            for suffix in ("Record", "Create", "Patch", "List", "BatchRequest", "BatchResponse"):
                schemas.pop(f"{name}{suffix}", None)
            continue
        levels = gate.access(key, "read").levels
        _fields(schemas, paths, tables.definition, name, levels)
    return doc


def _operations(paths: dict[str, Any], form: str, allowed: set[str]) -> None:
    base = f"/api/v1/forms/{form}/records"
    needs = {
        (base, "get"): {"read"},
        (base, "post"): {"create"},
        (f"{base}:batch", "post"): {"create", "update"},
        (f"{base}/{{record_id}}", "get"): {"read"},
        (f"{base}/{{record_id}}", "patch"): {"update"},
        (f"{base}/{{record_id}}", "delete"): {"delete"},
        (f"{base}/{{record_id}}/history", "get"): {"read"},
    }
    for (path, method), actions in needs.items():
        if path in paths and not actions & allowed:
            paths[path].pop(method, None)
            if not paths[path]:
                del paths[path]


def _fields(
    schemas: dict[str, Any],
    paths: dict[str, Any],
    definition: FormDefinition,
    name: str,
    levels: Any,
) -> None:
    def level(key: str) -> Level:
        return Level(levels.get(key, Level.HIDDEN))

    record = schemas.get(f"{name}Record", {}).get("properties", {})
    for f in definition.fields:
        lv = level(f.key)
        if lv == Level.HIDDEN:
            record.pop(f.key, None)
            record.get("expand", {}).get("properties", {}).pop(f.key, None)
        elif lv == Level.MASK and f.key in record:
            label = record[f.key].get("description", f.key)
            record[f.key] = {**_MASKED, "description": f"{label} (masked for you)"}
    for body in ("Create", "Patch"):
        schema = schemas.get(f"{name}{body}")
        if schema is None:
            continue
        props = schema.get("properties", {})
        for key in [k for k in props if level(k) < Level.WRITE]:
            del props[key]
        if "required" in schema:
            schema["required"] = [k for k in schema["required"] if k in props]
            if not schema["required"]:
                del schema["required"]
    listing = paths.get(f"/api/v1/forms/{definition.key}/records", {}).get("get")
    if listing is not None:
        unreadable = {f.key for f in definition.fields if level(f.key) < Level.READ}
        listing["parameters"] = [
            p for p in listing["parameters"] if p["name"].split("__")[0] not in unreadable
        ]


class TailoredDocuments:
    """Tailored documents, cached per (catalogue, signature)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, full: Callable[[], dict[str, Any]], gate: Gate) -> dict[str, Any]:
        key = (gate.schema.fingerprint, signature(gate))
        found = self._cache.get(key)
        if found is None:
            found = tailor(full(), gate)
            with self._lock:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
                self._cache[key] = found
        return found
