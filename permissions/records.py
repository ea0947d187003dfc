"""Records as one caller may see and change them: the enforcement point.

Every path to form data (REST, pages, exports, imports, process forms,
automations) goes through :class:`GuardedRecords`, which wraps the engine's
:class:`~engine.records.service.RecordStore` and list queries with the
caller's compiled :class:`~permissions.compile.Access`:

* **Rows.** The action's data scope is part of the SQL of every read and
  write (``UPDATE … WHERE id = :id AND <scope>``): a record out of scope
  answers exactly like a missing one (404). Creates file the record under
  the caller (``owner_id``) and their primary department (``dept_id``),
  then check in SQL that the new rows are inside the create scope; a change
  that would move a record out of the update scope is refused too. Both
  refusals roll the whole request back.
* **Fields.** Responses leave hidden fields out and mask masked ones (the
  audit history's old values too). A filter, sort, expand or ``fields``
  naming a hidden field is answered as for a field that does not exist; on
  a masked field it is refused (403), so no one can binary-search a hidden
  value. A payload that writes a field below level ``write`` is refused
  (403, naming the field) — except an unchanged value sent back as read,
  or as shown masked, which is dropped: a masked value is never written.
* **Forms.** An action not granted at all is a 403 naming the form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail, PermissionDeniedError, QueryError, RecordValidationError
from engine.records.audit import record_history
from engine.records.codec import row_json
from engine.records.query import ListQuery, Page, count_records, list_records
from engine.records.service import Actor, LinkScope, RecordStore, utcnow
from engine.tables import FormTables
from permissions.compile import Access, Level
from permissions.gate import Gate
from permissions.view import FieldView, masked_value


@dataclass(frozen=True)
class Listing:
    page: Page
    total: int | None


class GuardedRecords:
    def __init__(
        self,
        conn: sa.Connection,
        gate: Gate,
        form: str,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.conn = conn
        self.gate = gate
        self.form = form
        self.tables: FormTables = gate.schema.form(form)
        self.definition = self.tables.definition
        caller = gate.caller
        self.store = RecordStore(
            conn,
            self.tables,
            actor=Actor(user_id=caller.user_id, dept_id=caller.primary_dept_id),
            clock=clock,
            link_scopes=self._link_scopes(),
        )
        self._views: dict[str, FieldView] = {}

    def _link_scopes(self) -> dict[str, LinkScope]:
        """A link may only name a record the caller may read: any other "does not exist"."""
        out: dict[str, LinkScope] = {}
        targets = {
            g.link_target
            for f in self.definition.fields
            for g in (f, *f.children)
            if g.link_target is not None
        }
        for key in sorted(targets):
            target = self.gate.schema.form(key)
            if not self.gate.access(key, "read").allowed:
                out[target.table.name] = (target.table, sa.false())
            elif (scope := self.gate.scope(key, "read")) is not None:
                out[target.table.name] = (target.table, scope)
        return out

    # -- views ---------------------------------------------------------------

    def view(self, action: str = "read") -> FieldView:
        found = self._views.get(action)
        if found is None:
            found = self._views[action] = FieldView.build(
                self.definition, self.gate.access(self.form, action)
            )
        return found

    # -- reads ---------------------------------------------------------------

    def page(self, query: ListQuery, *, count: bool = False) -> Listing:
        access = self.gate.require(self.form, "read")
        view = self.view()
        self._check_query(query, access, view)
        if query.fields is None:
            # Hidden columns are not even selected.
            visible = [f.key for f in self.definition.column_fields if view.visible(f.key)]
            query = replace(query, fields=visible)
        scope = self.gate.scope(self.form, "read")
        t = self.tables
        page = list_records(
            self.conn, t.table, dict(t.children), self.definition, query, scope=scope
        )
        page.items = view.records(page.items)
        total = (
            count_records(self.conn, t.table, self.definition, query.filters, scope=scope)
            if count
            else None
        )
        return Listing(page, total)

    def get(self, record_id: int, *, fields: Sequence[str] | None = None) -> dict[str, Any]:
        self.gate.require(self.form, "read")
        view = self.view()
        if fields is not None:
            self._check_names(fields, "fields", view)
        record = self.store.get(record_id, fields=fields, scope=self.gate.scope(self.form, "read"))
        return view.record(record)

    def history(self, record_id: int) -> list[dict[str, Any]]:
        """The record's audit trail, with old values shown as the caller may see them now."""
        self.gate.require(self.form, "read")
        # In scope now, or not at all: the same 404 as a missing record.
        self.store.get(record_id, fields=(), scope=self.gate.scope(self.form, "read"))
        view = self.view()
        entries = record_history(self.conn, self.form, record_id)
        for e in entries:
            e["changes"] = view.changes(e["changes"])
        return entries

    def expand(self, items: list[dict[str, Any]], keys: Sequence[str]) -> None:
        """Embed linked records, each as the caller may see it: one query per link field.

        A linked record outside the caller's read scope of its form embeds as
        ``null``, like a deleted one.
        """
        view = self.view()
        problems: list[ErrorDetail] = []
        refused: list[ErrorDetail] = []
        for i, key in enumerate(keys):
            f = self.definition.field(key)
            if f is None or f.link_target is None or not view.visible(key):
                problems.append(ErrorDetail(f"/expand/{i}", f"{key!r} is not a link field"))
            elif key in view.masked:
                refused.append(ErrorDetail(f"/expand/{i}", f"{f.describe()} is masked for you"))
            elif not self.gate.access(f.link_target, "read").allowed:
                label = self.gate.schema.form(f.link_target).definition.label
                refused.append(ErrorDetail(f"/expand/{i}", f"you may not read {label} records"))
        if problems:
            raise QueryError("Only link fields can be expanded.", problems)
        if refused:
            raise PermissionDeniedError("You may not expand these fields.", refused)
        for key in keys:
            f = self.definition.field(key)
            assert f is not None and f.link_target is not None
            target = self.gate.schema.form(f.link_target)
            target_view = FieldView.build(
                target.definition, self.gate.access(f.link_target, "read")
            )
            ids = sorted({item[key] for item in items if item.get(key) is not None})
            found: dict[int, dict[str, Any]] = {}
            if ids:
                t = target.table
                query = sa.select(t).where(t.c.id.in_(ids), t.c.deleted_at.is_(None))
                scope = self.gate.scope(f.link_target, "read")
                if scope is not None:
                    query = query.where(scope)
                found = {
                    r.id: target_view.record(row_json(target.definition, r._mapping))
                    for r in self.conn.execute(query)
                }
            for item in items:
                linked = item.get(key)
                item.setdefault("expand", {})[key] = (
                    found.get(linked) if linked is not None else None
                )

    # -- writes --------------------------------------------------------------

    def create(self, payload: Any) -> dict[str, Any]:
        return self._create([payload], indexed=False)[0]

    def create_many(self, payloads: Sequence[Any]) -> list[dict[str, Any]]:
        return self._create(payloads, indexed=True)

    def _create(self, payloads: Sequence[Any], *, indexed: bool) -> list[dict[str, Any]]:
        access = self.gate.require(self.form, "create")
        cleaned = [
            self._writable(p, access, None, f"/{i}" if indexed else "")
            for i, p in enumerate(payloads)
        ]
        records = self.store.create_many(cleaned) if indexed else [self.store.create(cleaned[0])]
        scope = self.gate.scope(self.form, "create")
        if scope is not None:
            ids = [r["id"] for r in records]
            inside = self.store.in_scope(ids, scope)
            outside = [i for i, rid in enumerate(ids) if rid not in inside]
            if outside:
                raise PermissionDeniedError(
                    f"You may not create these {self.definition.label} records: they would be "
                    "outside the records you may create.",
                    [
                        ErrorDetail(f"/{i}" if indexed else "", "outside your scope")
                        for i in outside
                    ],
                )
        return self.view().records(records)

    def update(self, record_id: int, payload: Any, *, expected_version: int) -> dict[str, Any]:
        access = self.gate.require(self.form, "update")
        scope = self.gate.scope(self.form, "update")
        current = None
        if isinstance(payload, dict) and any(
            access.level(k) < Level.WRITE for k in payload if self.definition.field(k)
        ):
            current = self.store.get(record_id, scope=scope)
        cleaned = self._writable(payload, access, current, "")
        record = self.store.update(
            record_id, cleaned, expected_version=expected_version, scope=scope
        )
        if scope is not None and record_id not in self.store.in_scope([record_id], scope):
            raise PermissionDeniedError(
                f"This change would move {self.definition.label} {record_id} out of the "
                "records you may change; it was not saved."
            )
        return self.view().record(record)

    def delete(self, record_id: int, *, expected_version: int) -> None:
        self.gate.require(self.form, "delete")
        self.store.delete(
            record_id,
            expected_version=expected_version,
            scope=self.gate.scope(self.form, "delete"),
        )

    # -- checks --------------------------------------------------------------

    def _writable(
        self, payload: Any, access: Access, current: dict[str, Any] | None, prefix: str
    ) -> Any:
        """The payload without unchanged read-only values; refused if it writes one."""
        if not isinstance(payload, dict):
            return payload  # the codec reports the shape
        out: dict[str, Any] = {}
        unknown: list[ErrorDetail] = []
        denied: list[ErrorDetail] = []
        for key, value in payload.items():
            f = self.definition.field(key)
            level = access.level(key) if f is not None else Level.WRITE
            if level >= Level.WRITE:
                out[key] = value
            elif level == Level.HIDDEN:
                unknown.append(ErrorDetail(f"{prefix}/{key}", f"unknown field {key!r}"))
            elif current is None:
                if value is not None:
                    denied.append(ErrorDetail(f"{prefix}/{key}", _cannot_write(f, level)))
            elif not _unchanged(f, level, value, current.get(key)):
                denied.append(ErrorDetail(f"{prefix}/{key}", _cannot_write(f, level)))
        if unknown:
            raise RecordValidationError(
                f"The {self.definition.label} record has {len(unknown)} problem(s).", unknown
            )
        if denied:
            raise PermissionDeniedError(
                f"You may not change {len(denied)} field(s) of {self.definition.label}.", denied
            )
        return out

    def _check_query(self, query: ListQuery, access: Access, view: FieldView) -> None:
        self._check_names([f.field for f in query.filters], "filters", view)
        self._check_names([s.field for s in query.sort], "sort", view)
        if query.fields is not None:
            self._check_names(query.fields, "fields", view)

    def _check_names(self, names: Sequence[str], kind: str, view: FieldView) -> None:
        unknown: list[ErrorDetail] = []
        refused: list[ErrorDetail] = []
        for i, key in enumerate(names):
            if self.definition.field(key) is None:
                continue  # system columns, or an unknown name the engine reports
            if not view.visible(key):
                unknown.append(ErrorDetail(f"/{kind}/{i}", f"unknown field {key!r}"))
            elif key in view.masked and kind != "fields":
                what = "filtered" if kind == "filters" else "sorted"
                refused.append(
                    ErrorDetail(f"/{kind}/{i}", f"{key} is masked for you and cannot be {what} on")
                )
        if unknown:
            raise QueryError(f"Unknown field in '{kind}'.", unknown)
        if refused:
            raise PermissionDeniedError("Masked fields cannot be filtered or sorted on.", refused)


def _cannot_write(f: Any, level: Level) -> str:
    how = "masked" if level == Level.MASK else "read-only"
    return f"{f.describe()} is {how} for you and cannot be changed"


def _unchanged(f: Any, level: Level, value: Any, current: Any) -> bool:
    """The value sent is the one the caller was shown: nothing to write."""
    if level == Level.MASK:
        return bool(value == masked_value(f, current))
    return bool(value == current)
