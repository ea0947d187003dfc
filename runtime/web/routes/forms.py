"""Published form definitions and their versions (read-only here; the designer publishes).

Each caller sees the forms they may do something with (any action), each
definition without the fields hidden from them; a form they may do nothing
with answers 404, like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from engine.catalog import list_versions
from engine.errors import NotFoundError
from permissions.gate import Gate
from permissions.policy import ACTIONS
from permissions.view import visible_document
from runtime.web.deps import Access, Db

router = APIRouter(prefix="/api/v1/forms", tags=["forms"])


class FormSummary(BaseModel):
    key: str
    label: str
    version: int
    table: str


class FormVersion(BaseModel):
    version: int
    published_at: str
    published_by: int | None


class FormDetail(FormSummary):
    definition: dict[str, Any]
    versions: list[FormVersion]
    actions: list[str]


def _actions(gate: Gate, form: str) -> list[str]:
    return [a for a in ACTIONS if gate.access(form, a).allowed]


@router.get("", response_model=list[FormSummary], summary="List published forms")
def list_forms(gate: Access) -> list[FormSummary]:
    schema = gate.schema
    return [
        FormSummary(key=k, label=t.definition.label, version=schema.versions[k], table=t.table.name)
        for k, t in sorted(schema.forms.items())
        if _actions(gate, k)
    ]


@router.get("/{form}", response_model=FormDetail, summary="A published form with its versions")
def get_form(form: str, conn: Db, gate: Access) -> FormDetail:
    schema = gate.schema
    tables = schema.form(form)
    actions = _actions(gate, form)
    if not actions:
        raise NotFoundError(f"There is no published form {form!r}.")
    versions = [
        FormVersion(
            version=int(str(v["version"])),
            published_at=v["published_at"].isoformat(),  # type: ignore[attr-defined]
            published_by=v["published_by"],  # type: ignore[arg-type]
        )
        for v in list_versions(conn, form)
    ]
    return FormDetail(
        key=form,
        label=tables.definition.label,
        version=schema.versions[form],
        table=tables.table.name,
        # Field levels do not depend on the action; a create-only caller sees them too.
        definition=visible_document(
            tables.definition, gate.access(form, "read" if "read" in actions else actions[0])
        ),
        versions=versions,
        actions=actions,
    )
