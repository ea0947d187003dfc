"""Published form definitions and their versions (read-only here; the designer publishes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from engine.catalog import list_versions
from runtime.web.deps import Ctx, CurrentUser, Db

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


@router.get("", response_model=list[FormSummary], summary="List published forms")
def list_forms(conn: Db, ctx: Ctx, user: CurrentUser) -> list[FormSummary]:
    schema = ctx.schemas.get(conn)
    return [
        FormSummary(key=k, label=t.definition.label, version=schema.versions[k], table=t.table.name)
        for k, t in sorted(schema.forms.items())
    ]


@router.get("/{form}", response_model=FormDetail, summary="A published form with its versions")
def get_form(form: str, conn: Db, ctx: Ctx, user: CurrentUser) -> FormDetail:
    schema = ctx.schemas.get(conn)
    tables = schema.form(form)
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
        definition=dict(tables.definition.document),
        versions=versions,
    )
