"""The OpenAPI document: FastAPI's routes plus a typed schema for every published form.

Record handlers are generic; this module writes each form's concrete paths
(``/api/v1/forms/customer/records``) with ``CustomerRecord``,
``CustomerCreate``, ``CustomerPatch`` and ``CustomerList`` components. The
document is rebuilt only when the catalogue fingerprint changes.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from engine.catalog import Schema
from engine.forms.definition import Field, FormDefinition
from engine.forms.fieldtypes import INT64_MAX, DecimalType
from engine.records.query import SYSTEM_FILTERS
from runtime.web.listing import MAX_BATCH, RESERVED_PARAMS

PROBLEM = {"$ref": "#/components/schemas/Problem"}
PROBLEM_JSON = "application/problem+json"
SYSTEM_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer", "readOnly": True},
    "version": {"type": "integer", "readOnly": True, "description": "Send it back in If-Match."},
    "created_at": {"type": "string", "format": "date-time", "readOnly": True},
    "created_by": {"anyOf": [{"type": "integer"}, {"type": "null"}], "readOnly": True},
    "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
    "updated_by": {"anyOf": [{"type": "integer"}, {"type": "null"}], "readOnly": True},
    "owner_id": {"anyOf": [{"type": "integer"}, {"type": "null"}], "readOnly": True},
    "dept_id": {"anyOf": [{"type": "integer"}, {"type": "null"}], "readOnly": True},
}
HISTORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "action", "actor_id", "at", "version", "changes"],
                "properties": {
                    "id": {"type": "integer"},
                    "action": {"type": "string", "enum": ["create", "update", "delete"]},
                    "actor_id": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "at": {"type": "string", "format": "date-time"},
                    "version": {"type": "integer"},
                    "changes": {
                        "type": "object",
                        "description": "field -> {before, after}",
                        "additionalProperties": {"type": "object"},
                    },
                },
            },
        }
    },
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "current_version": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "message"],
                "properties": {"pointer": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def pascal(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _label(f: Field) -> dict[str, Any]:
    # The label goes in "description", not "title": client generators name
    # classes after a schema's title, and labels are prose (often Chinese).
    return {"description": f.label}


def _field_out(f: Field) -> dict[str, Any]:
    if f.type.name == "subtable":
        return {"type": "array", "items": _row_schema(f.children, output=True), **_label(f)}
    return {**_nullable(f.type.openapi(f.prop)), **_label(f)}


def _field_in(f: Field) -> dict[str, Any]:
    if f.type.name == "subtable":
        return {
            **f.type.fragment(f.prop),
            "items": _row_schema(f.children, output=False),
            **_label(f),
        }
    fragment = f.type.fragment(f.prop)
    if isinstance(f.type, DecimalType):
        # Documented as exact strings; JSON numbers are accepted as well.
        digits = f.type.precision(f.prop) - f.type.scale(f.prop)
        scale = f.type.scale(f.prop)
        fraction = rf"(\.[0-9]{{1,{scale}}})?" if scale else ""
        fragment = {"type": "string", "pattern": rf"^-?[0-9]{{1,{max(digits, 1)}}}{fraction}$"}
    return {**(fragment if f.required else _nullable(fragment)), **_label(f)}


def _row_schema(children: tuple[Field, ...], *, output: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"id": {"type": "integer"}}
    for c in children:
        props[c.key] = _field_out(c) if output else _field_in(c)
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    required = [c.key for c in children if c.required]
    if output:
        schema["required"] = ["id", *[c.key for c in children]]
    elif required:
        schema["required"] = required
    return schema


def form_components(definition: FormDefinition) -> dict[str, Any]:
    name = pascal(definition.key)
    out_props: dict[str, Any] = dict(SYSTEM_PROPERTIES)
    in_props: dict[str, Any] = {}
    for f in definition.fields:
        out_props[f.key] = _field_out(f)
        if f.writable:
            in_props[f.key] = _field_in(f)
    links = {
        f.key: {"anyOf": [{"type": "object"}, {"type": "null"}]}
        for f in definition.fields
        if f.link_target
    }
    if links:
        out_props["expand"] = {
            "type": "object",
            "properties": links,
            "description": "Linked records asked for with ?expand=.",
        }
    required_in = [f.key for f in definition.fields if f.required and f.writable]
    record = {
        "type": "object",
        "description": f"A {definition.label} record. Only `id` and `version` are always "
        "present: `?fields=` leaves the other fields out, and lists leave sub-tables out "
        "unless `fields` names them.",
        "properties": out_props,
        "required": ["id", "version"],
    }
    create: dict[str, Any] = {
        "type": "object",
        "properties": in_props,
        "additionalProperties": False,
    }
    if required_in:
        create["required"] = required_in
    patch = {"type": "object", "properties": in_props, "additionalProperties": False}
    listing = {
        "type": "object",
        "required": ["items", "next_cursor", "limit"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}Record"}},
            "next_cursor": _nullable({"type": "string"}),
            "limit": {"type": "integer"},
            "total": {"type": "integer"},
        },
    }
    return {
        f"{name}Record": record,
        f"{name}Create": create,
        f"{name}Patch": patch,
        f"{name}List": listing,
        **_batch_components(name),
    }


def _batch_components(name: str) -> dict[str, Any]:
    """Schemas of ``POST .../records:batch``.

    Their names end in Operation, Request, Response or Result, which no
    form's Record/Create/Patch/List name does, so no two forms' names meet.
    """

    def ref(suffix: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}{suffix}"}

    create_op = {
        "type": "object",
        "required": ["op", "data"],
        "properties": {"op": {"type": "string", "const": "create"}, "data": ref("Create")},
        "additionalProperties": False,
    }
    update_op = {
        "type": "object",
        "required": ["op", "id", "version", "data"],
        "properties": {
            "op": {"type": "string", "const": "update"},
            "id": {"type": "integer"},
            "version": {"type": "integer", "description": "The version you read."},
            "data": ref("Patch"),
        },
        "additionalProperties": False,
    }
    request = {
        "type": "object",
        "required": ["operations"],
        "properties": {
            "operations": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": {
                    "oneOf": [ref("BatchCreateOperation"), ref("BatchUpdateOperation")],
                    "discriminator": {
                        "propertyName": "op",
                        "mapping": {
                            "create": ref("BatchCreateOperation")["$ref"],
                            "update": ref("BatchUpdateOperation")["$ref"],
                        },
                    },
                },
            }
        },
        "additionalProperties": False,
    }
    result = {
        "type": "object",
        "required": ["op", "id", "version", "record"],
        "properties": {
            "op": {"type": "string", "enum": ["create", "update"]},
            "id": {"type": "integer"},
            "version": {"type": "integer"},
            "record": ref("Record"),
        },
    }
    response = {
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": ref("BatchResult")}},
    }
    return {
        f"{name}BatchCreateOperation": create_op,
        f"{name}BatchUpdateOperation": update_op,
        f"{name}BatchRequest": request,
        f"{name}BatchResult": result,
        f"{name}BatchResponse": response,
    }


def _problems(*codes: int) -> dict[str, Any]:
    text = {
        400: "Bad request",
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not found",
        409: "Conflict",
        412: "Stale version (someone else changed it)",
        413: "Body too large",
        415: "Not JSON",
        422: "Invalid data",
        428: "If-Match required",
    }
    content = {PROBLEM_JSON: {"schema": PROBLEM}}
    return {str(c): {"description": text[c], "content": content} for c in codes}


def _json_body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _ok(ref: str, description: str, *, etag: bool = True) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ref}}},
    }
    if etag:
        response["headers"] = {"ETag": {"schema": {"type": "string"}}}
    return response


def _list_parameters(definition: FormDefinition) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {
            "name": "sort",
            "in": "query",
            "schema": {"type": "string"},
            "description": "Comma-separated indexed fields; '-' for descending.",
        },
        {"name": "fields", "in": "query", "schema": {"type": "string"}},
        {"name": "count", "in": "query", "schema": {"type": "boolean"}},
        {"name": "expand", "in": "query", "schema": {"type": "string"}},
    ]
    filterable: list[tuple[str, str, frozenset[str]]] = [
        (k, t.name, t.filter_ops) for k, (t, _) in SYSTEM_FILTERS.items()
    ]
    filterable += [(f.key, f.type.name, f.type.filter_ops) for f in definition.column_fields]
    for key, type_name, ops in filterable:
        for op in sorted(ops):
            params.append(
                {
                    "name": key if op == "eq" else f"{key}__{op}",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": f"Filter {key} ({type_name}) with '{op}'.",
                }
            )
    assert not RESERVED_PARAMS & {p["name"] for p in params[7:]}
    return params


def form_paths(definition: FormDefinition) -> dict[str, Any]:
    name = pascal(definition.key)
    ref = f"#/components/schemas/{name}"
    base = f"/api/v1/forms/{definition.key}/records"
    tag = [definition.key]
    record_id = {
        "name": "record_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
    }
    if_match = {
        "name": "If-Match",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "The ETag you read.",
    }
    return {
        base: {
            "get": {
                "tags": tag,
                "operationId": f"list_{definition.key}",
                "summary": f"List {definition.label}",
                "parameters": _list_parameters(definition),
                "responses": {
                    "200": _ok(f"{ref}List", "A page of records", etag=False),
                    **_problems(400, 401, 403, 404),
                },
            },
            "post": {
                "tags": tag,
                "operationId": f"create_{definition.key}",
                "summary": f"Create a {definition.label} record",
                "requestBody": _json_body(f"{ref}Create"),
                "responses": {
                    "201": _ok(f"{ref}Record", "Created"),
                    **_problems(400, 401, 403, 404, 409, 413, 415, 422),
                },
            },
        },
        f"{base}:batch": {
            "post": {
                "tags": tag,
                "operationId": f"batch_{definition.key}",
                "summary": f"Create and change up to {MAX_BATCH} {definition.label} records: "
                "all of them, or none",
                "description": "If any operation fails, nothing is saved and the 422 problem "
                "points at each failure, e.g. `/operations/3/data/name`.",
                "requestBody": _json_body(f"{ref}BatchRequest"),
                "responses": {
                    "200": _ok(f"{ref}BatchResponse", "Every operation was saved", etag=False),
                    **_problems(400, 401, 403, 404, 413, 415, 422),
                },
            },
        },
        f"{base}/{{record_id}}": {
            "get": {
                "tags": tag,
                "operationId": f"get_{definition.key}",
                "summary": f"Get a {definition.label} record",
                "parameters": [
                    record_id,
                    {"name": "fields", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _ok(f"{ref}Record", "The record"),
                    **_problems(400, 401, 403, 404, 422),
                },
            },
            "patch": {
                "tags": tag,
                "operationId": f"update_{definition.key}",
                "summary": f"Change a {definition.label} record",
                "parameters": [record_id, if_match],
                "requestBody": _json_body(f"{ref}Patch"),
                "responses": {
                    "200": _ok(f"{ref}Record", "The changed record"),
                    **_problems(400, 401, 403, 404, 409, 412, 413, 415, 422, 428),
                },
            },
            "delete": {
                "tags": tag,
                "operationId": f"delete_{definition.key}",
                "summary": f"Delete a {definition.label} record",
                "parameters": [record_id, if_match],
                "responses": {
                    "204": {"description": "Deleted"},
                    **_problems(400, 401, 403, 404, 412, 422, 428),
                },
            },
        },
        f"{base}/{{record_id}}/history": {
            "get": {
                "tags": tag,
                "operationId": f"history_{definition.key}",
                "summary": f"Who changed a {definition.label} record, what and when",
                "description": "Oldest first. Fields hidden from you are left out and masked "
                "ones masked, in old values as in current ones.",
                "parameters": [record_id],
                "responses": {
                    "200": _ok("#/components/schemas/RecordHistory", "The history", etag=False),
                    **_problems(400, 401, 403, 404, 422),
                },
            },
        },
    }


class OpenAPIBuilder:
    """Caches the document per catalogue fingerprint."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._cache: tuple[tuple[tuple[str, int], ...], dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def build(self, schema: Schema) -> dict[str, Any]:
        cached = self._cache
        if cached is not None and cached[0] == schema.fingerprint:
            return cached[1]
        with self._lock:
            doc = get_openapi(
                title=self.app.title,
                version=self.app.version,
                description=self.app.description,
                routes=self.app.routes,
            )
            doc = copy.deepcopy(doc)
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = PROBLEM_SCHEMA
            components["RecordHistory"] = HISTORY_SCHEMA
            for _key, tables in sorted(schema.forms.items()):
                generated = form_components(tables.definition)
                clash = sorted(generated.keys() & components.keys())
                if clash:  # pragma: no cover - the naming rules make this impossible
                    raise RuntimeError(f"OpenAPI schema names used twice: {clash}")
                components.update(generated)
                doc.setdefault("paths", {}).update(form_paths(tables.definition))
            doc["components"]["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A login token or an API key.",
                },
            }
            doc["security"] = [{"bearer": []}]
            document_problems(doc)
            self._cache = (schema.fingerprint, doc)
            return doc


def document_problems(doc: dict[str, Any]) -> None:
    """The problem responses every operation can give, where it does not list them.

    FastAPI documents a request validation error as ``HTTPValidationError``
    JSON, but :mod:`runtime.web.problems` answers every error as a problem
    document. And an operation that needs credentials (the document's
    default security, not an empty ``security``) can answer 401, one with a
    path parameter 404 (nothing by that name or id), one with a body 413
    (too large); any operation can answer 400 (a NUL character in the
    request, malformed JSON). Responses an operation
    declares itself are kept; an error response declared without a body is
    given the problem document's schema.
    """
    validation_error = "#/components/schemas/HTTPValidationError"
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            codes = []
            if validation_error in json.dumps(responses.get("422", {})):
                del responses["422"]
                codes.append(422)
            if operation.get("security", doc.get("security")):
                codes.append(401)
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                codes.append(404)
            # Any request may be refused for a NUL character in its query,
            # path or body (runtime.web.limits), so every operation can give 400.
            codes.append(400)
            if "requestBody" in operation:
                codes.append(413)  # larger than the body limit
            for code, response in _problems(*codes).items():
                responses.setdefault(code, response)
            for code, response in responses.items():
                content = response.setdefault("content", {}) if code[0] in "45" else {}
                if code[0] in "45" and "schema" not in content.get(PROBLEM_JSON, {}):
                    content[PROBLEM_JSON] = {"schema": PROBLEM}  # every error is a problem
    schemas = doc.get("components", {}).get("schemas", {})
    if validation_error not in json.dumps(doc.get("paths", {})):
        # Nothing refers to FastAPI's default error body any more.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
