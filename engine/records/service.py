"""Create, read, update and soft-delete records of one published form.

Every method runs inside the caller's transaction and flushes only; the
request edge commits. Writes take the row lock they need (``FOR UPDATE`` on
PostgreSQL) and still guard the ``UPDATE`` with the version the caller read,
so a concurrent writer can never be silently overwritten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.errors import (
    ConflictError,
    ErrorDetail,
    LinkError,
    NotFoundError,
    RecordValidationError,
    StaleVersionError,
)
from engine.forms.definition import Field, FormDefinition
from engine.forms.fieldtypes import DateTimeType
from engine.records.audit import AuditAction, AuditEntry, field_changes, write_audit, write_audits
from engine.records.codec import child_json, codec_for, row_json
from engine.records.payload import ParsedPayload
from engine.system import department_table, user_table
from engine.tables import FormTables


@dataclass(frozen=True)
class Actor:
    """Who acts: recorded in system columns and the audit trail."""

    user_id: int | None = None
    dept_id: int | None = None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RecordStore:
    def __init__(
        self,
        conn: sa.Connection,
        tables: FormTables,
        *,
        actor: Actor,
        clock: Callable[[], dt.datetime] = utcnow,
        link_scopes: Mapping[str, LinkScope] | None = None,
    ) -> None:
        """``link_scopes``: per linked form's table name, the table and the records a
        link may point at (those the caller may read); others are reported as not
        existing, exactly like missing ones."""
        self.conn = conn
        self.tables = tables
        self.definition: FormDefinition = tables.definition
        self.table = tables.table
        self.actor = actor
        self.clock = clock
        self.codec = codec_for(self.definition)
        self.link_scopes = dict(link_scopes or {})

    # -- reads -------------------------------------------------------------

    def get(
        self,
        record_id: int,
        *,
        fields: Sequence[str] | None = None,
        scope: Scope = None,
    ) -> dict[str, Any]:
        """One live record; ``scope`` (a WHERE clause) hides the rest as missing."""
        row = self._select_live(record_id, scope=scope)
        if row is None:
            raise self._not_found(record_id)
        record = row_json(self.definition, row._mapping)
        subs = [s for s in self.definition.subtables if fields is None or s.key in fields]
        for sub in subs:
            record[sub.key] = self._children_json(sub, [record_id])[record_id]
        if fields is not None:
            keep = {*fields, "id", "version"}
            record = {k: v for k, v in record.items() if k in keep}
        return record

    def _select_live(
        self, record_id: int, *, lock: bool = False, scope: Scope = None
    ) -> sa.Row[Any] | None:
        query = sa.select(self.table).where(
            self.table.c.id == record_id, self.table.c.deleted_at.is_(None)
        )
        if scope is not None:
            query = query.where(scope)
        if lock:
            query = query.with_for_update()  # ignored by SQLite, whose writers serialize
        return self.conn.execute(query).one_or_none()

    def _children_json(
        self, sub: Field, parent_ids: Sequence[int]
    ) -> dict[int, list[dict[str, Any]]]:
        child = self.tables.children[sub.key]
        rows = self.conn.execute(
            sa.select(child)
            .where(child.c.parent_id.in_(parent_ids))
            .order_by(child.c.parent_id, child.c.position)
        )
        out: dict[int, list[dict[str, Any]]] = {pid: [] for pid in parent_ids}
        for r in rows:
            out[r.parent_id].append(child_json(sub, r._mapping))
        return out

    # -- writes ------------------------------------------------------------

    def create(
        self, payload: Any, *, owner_id: int | None = None, dept_id: int | None = None
    ) -> dict[str, Any]:
        return self._create([payload], owner_id=owner_id, dept_id=dept_id, indexed=False)[0]

    def create_many(
        self, payloads: Sequence[Any], *, owner_id: int | None = None, dept_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Create records in a fixed number of statements, however many there are.

        All or nothing: every problem of every payload is reported at once,
        each pointer prefixed with the payload's index (``/3/name``).
        """
        return self._create(payloads, owner_id=owner_id, dept_id=dept_id, indexed=True)

    def _create(
        self,
        payloads: Sequence[Any],
        *,
        owner_id: int | None,
        dept_id: int | None,
        indexed: bool,
    ) -> list[dict[str, Any]]:
        if not payloads:
            return []
        items: list[tuple[str, dict[str, Any], ParsedPayload]] = []
        errors: list[ErrorDetail] = []
        defaults = self.codec.defaults()
        for i, payload in enumerate(payloads):
            prefix = f"/{i}" if indexed else ""
            try:
                parsed = self.codec.parse(payload, partial=False)
            except RecordValidationError as exc:
                errors.extend(ErrorDetail(prefix + e.pointer, e.message) for e in exc.errors)
                continue
            errors.extend(
                ErrorDetail(f"{prefix}/{key}/{j}/id", "a new record's rows cannot carry ids")
                for key, rows in parsed.children.items()
                for j, row in enumerate(rows)
                if "id" in row
            )
            items.append((prefix, {**defaults, **parsed.values}, parsed))
        if errors:
            what = "record" if not indexed else f"batch of {len(payloads)} records"
            raise RecordValidationError(
                f"The {self.definition.label} {what} has {len(errors)} problem(s).", errors
            )
        self._check_references([(prefix, values, parsed) for prefix, values, parsed in items])
        self._check_unique([(prefix, values) for prefix, values, _ in items], exclude_id=None)
        now = self.clock()
        writable = [f.key for f in self.definition.column_fields if f.writable]
        system = {
            "created_at": now,
            "created_by": self.actor.user_id,
            "updated_at": now,
            "updated_by": self.actor.user_id,
            "owner_id": owner_id if owner_id is not None else self.actor.user_id,
            "dept_id": dept_id if dept_id is not None else self.actor.dept_id,
            "version": 1,
        }
        rows = [{**dict.fromkeys(writable), **values, **system} for _, values, _ in items]
        ids = self._insert_returning_ids(rows)
        for sub in self.definition.subtables:
            child_rows = [
                {"parent_id": record_id, "position": pos, **_row_values(sub, row)}
                for record_id, (_, _, parsed) in zip(ids, items, strict=True)
                for pos, row in enumerate(parsed.children.get(sub.key, []))
            ]
            if child_rows:
                self.conn.execute(sa.insert(self.tables.children[sub.key]), child_rows)
        records = self._records_json(ids)
        fields = self._field_keys()
        write_audits(
            self.conn,
            [
                AuditEntry(
                    form_key=self.definition.key,
                    record_id=record["id"],
                    action="create",
                    actor_id=self.actor.user_id,
                    at=now,
                    record_version=1,
                    changes=field_changes(
                        {}, {k: v for k, v in record.items() if v not in (None, []) and k in fields}
                    ),
                )
                for record in records
            ],
        )
        return records

    def _insert_returning_ids(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert in batched multi-row statements; ids come back in ``rows`` order."""
        if self.conn.dialect.name == "sqlite":
            # SQLAlchemy can only order RETURNING rows on SQLite with a
            # sentinel column, else it inserts row by row. Under the write lock
            # a multi-row INSERT assigns ascending rowids in VALUES order, so
            # sorting the returned ids restores the order of ``rows``.
            result = self._execute_write(sa.insert(self.table).returning(self.table.c.id), rows)
            return sorted(r.id for r in result)
        statement = sa.insert(self.table).returning(self.table.c.id, sort_by_parameter_order=True)
        return [r.id for r in self._execute_write(statement, rows)]

    def _records_json(self, ids: list[int]) -> list[dict[str, Any]]:
        """Records by id in the given order: one statement, plus one per sub-table."""
        rows = self.conn.execute(sa.select(self.table).where(self.table.c.id.in_(ids)))
        by_id = {r.id: row_json(self.definition, r._mapping) for r in rows}
        for sub in self.definition.subtables:
            children = self._children_json(sub, ids)
            for record_id, record in by_id.items():
                record[sub.key] = children[record_id]
        return [by_id[i] for i in ids]

    def update(
        self, record_id: int, payload: Any, *, expected_version: int, scope: Scope = None
    ) -> dict[str, Any]:
        """Apply a partial change; ``scope`` limits which records may be changed
        (the rest answer as missing, and the UPDATE itself is guarded by it too)."""
        parsed = self.codec.parse(payload, partial=True)
        current = self._locked_current(record_id, expected_version, scope)
        before = row_json(self.definition, current._mapping)
        children_before = {
            key: self._children_json(self._sub(key), [record_id])[record_id]
            for key in parsed.children
        }
        self._check_row_ids(parsed.children, children_before)
        self._check_references([("", parsed.values, parsed)])
        self._check_unique([("", parsed.values)], exclude_id=record_id)
        after = {**before, **row_json(self.definition, parsed.values)}
        changes = field_changes(
            {k: before[k] for k in parsed.values}, {k: after[k] for k in parsed.values}
        )
        child_changed = any(
            _strip_ids(children_before[k]) != _child_rows_json(self._sub(k), rows)
            or len(children_before[k]) != len(rows)
            for k, rows in parsed.children.items()
        )
        if not changes and not child_changed:
            return self.get(record_id)
        now = self.clock()
        result = self._execute_write(
            sa.update(self.table)
            .where(
                self.table.c.id == record_id,
                self.table.c.version == expected_version,
                self.table.c.deleted_at.is_(None),
                *_scoped(scope),
            )
            .values(
                {
                    **{k: parsed.values[k] for k in changes},
                    "version": self.table.c.version + 1,
                    "updated_at": now,
                    "updated_by": self.actor.user_id,
                }
            )
        )
        if result.rowcount != 1:
            raise self._stale(record_id, expected_version, scope)
        for key, rows in parsed.children.items():
            existing = [r["id"] for r in children_before[key]]
            self._write_children(self._sub(key), record_id, rows, existing=existing)
        record = self.get(record_id)
        for key in parsed.children:
            if children_before[key] != record[key]:
                changes[key] = {"before": children_before[key], "after": record[key]}
        self._audit("update", record_id, expected_version + 1, now, changes)
        return record

    def delete(self, record_id: int, *, expected_version: int, scope: Scope = None) -> None:
        """Soft delete: the row stays (with its history) but is no longer visible."""
        self._locked_current(record_id, expected_version, scope)
        now = self.clock()
        result = self._execute_write(
            sa.update(self.table)
            .where(
                self.table.c.id == record_id,
                self.table.c.version == expected_version,
                *_scoped(scope),
            )
            .values(
                deleted_at=now,
                version=self.table.c.version + 1,
                updated_at=now,
                updated_by=self.actor.user_id,
            )
        )
        if result.rowcount != 1:
            raise self._stale(record_id, expected_version, scope)
        deleted = {"deleted_at": {"before": None, "after": _DATETIME.to_json(now)}}
        self._audit("delete", record_id, expected_version + 1, now, deleted)

    # -- helpers -----------------------------------------------------------

    def _audit(
        self,
        action: AuditAction,
        record_id: int,
        version: int,
        at: dt.datetime,
        changes: Mapping[str, Mapping[str, Any]],
    ) -> None:
        write_audit(
            self.conn,
            form_key=self.definition.key,
            record_id=record_id,
            action=action,
            actor_id=self.actor.user_id,
            at=at,
            record_version=version,
            changes=changes,
        )

    def _field_keys(self) -> set[str]:
        return {f.key for f in self.definition.fields}

    def _sub(self, key: str) -> Field:
        f = self.definition.field(key)
        assert f is not None
        return f

    def in_scope(self, record_ids: Sequence[int], scope: Scope) -> set[int]:
        """Those of ``record_ids`` (live records) that ``scope`` matches: one query."""
        if not record_ids:
            return set()
        query = sa.select(self.table.c.id).where(
            self.table.c.id.in_(record_ids), self.table.c.deleted_at.is_(None), *_scoped(scope)
        )
        return {int(i) for i in self.conn.execute(query).scalars()}

    def _locked_current(
        self, record_id: int, expected_version: int, scope: Scope = None
    ) -> sa.Row[Any]:
        current = self._select_live(record_id, lock=True, scope=scope)
        if current is None:
            raise self._not_found(record_id)
        if current.version != expected_version:
            raise StaleVersionError(
                f"{self.definition.label} {record_id} was changed by someone else "
                f"(you read version {expected_version}, it is now {current.version}); "
                "reload it and apply your change again.",
                expected=expected_version,
                actual=current.version,
            )
        return current

    def _stale(self, record_id: int, expected_version: int, scope: Scope) -> FormflowErrorT:
        now = self._select_live(record_id, scope=scope)
        if now is None:
            return self._not_found(record_id)
        return StaleVersionError(
            f"{self.definition.label} {record_id} was changed by someone else; reload it.",
            expected=expected_version,
            actual=now.version,
        )

    def _not_found(self, record_id: int) -> NotFoundError:
        return NotFoundError(f"{self.definition.label} {record_id} does not exist.")

    def _execute_write(
        self, statement: sa.Executable, params: list[dict[str, Any]] | None = None
    ) -> sa.CursorResult[Any]:
        try:
            return self.conn.execute(statement, params)
        except sa.exc.IntegrityError as exc:
            # The pre-checks give the friendly message; reaching here means a
            # concurrent writer won the race for a unique value or a link.
            raise ConflictError(
                f"{self.definition.label}: the change conflicts with a concurrent change "
                "(a unique value or a linked record); reload and try again."
            ) from exc
        except sa.exc.OperationalError as exc:
            # SQLite: another connection committed a write after this
            # transaction began reading (SQLITE_BUSY_SNAPSHOT), or held the
            # write lock past the busy timeout. Either way a concurrent writer
            # got in first; the caller must re-read, as for a stale version.
            if getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF != _SQLITE_BUSY:
                raise
            raise ConflictError(
                f"{self.definition.label}: another change was saved at the same time; "
                "reload and try again."
            ) from exc

    def _check_unique(
        self, items: Sequence[tuple[str, Mapping[str, Any]]], *, exclude_id: int | None
    ) -> None:
        """Unique values must be free among live records and within ``items``: one query."""
        unique = [f for f in self.definition.column_fields if f.unique]
        wanted = {f.key: {v[f.key] for _, v in items if v.get(f.key) is not None} for f in unique}
        wanted = {k: vals for k, vals in wanted.items() if vals}
        if not wanted:
            return
        t = self.table
        query = sa.select(t.c.id, *(t.c[k] for k in wanted)).where(
            t.c.deleted_at.is_(None), sa.or_(*(t.c[k].in_(vals) for k, vals in wanted.items()))
        )
        if exclude_id is not None:
            query = query.where(t.c.id != exclude_id)
        taken: dict[tuple[str, Any], int] = {}
        for row in self.conn.execute(query):
            for k in wanted:
                if row._mapping[k] in wanted[k]:
                    taken.setdefault((k, row._mapping[k]), row.id)
        errors: list[ErrorDetail] = []
        first: dict[tuple[str, Any], str] = {}
        for prefix, values in items:
            for f in unique:
                value = values.get(f.key)
                if value is None:
                    continue
                if (f.key, value) in taken:
                    other = taken[(f.key, value)]
                    errors.append(
                        ErrorDetail(
                            f"{prefix}/{f.key}",
                            f"{f.label} {value!s} is already used by record {other}",
                        )
                    )
                elif (f.key, value) in first:
                    errors.append(
                        ErrorDetail(
                            f"{prefix}/{f.key}",
                            f"{f.label} {value!s} is also given at {first[(f.key, value)]}",
                        )
                    )
                else:
                    first[(f.key, value)] = f"{prefix}/{f.key}"
        if errors:
            raise ConflictError(
                f"{self.definition.label}: a unique value is already taken.", errors
            )

    def _check_references(
        self, items: Sequence[tuple[str, Mapping[str, Any], ParsedPayload]]
    ) -> None:
        """Links, users and departments must exist: one query per target, never per row."""
        wanted: dict[str, dict[int, list[str]]] = {}
        for prefix, values, parsed in items:
            for f in self.definition.column_fields:
                self._collect(f, values.get(f.key), f"{prefix}/{f.key}", wanted)
            for key, rows in parsed.children.items():
                sub = self._sub(key)
                for i, row in enumerate(rows):
                    for c in sub.children:
                        self._collect(c, row.get(c.key), f"{prefix}/{key}/{i}/{c.key}", wanted)
        errors: list[ErrorDetail] = []
        for table_name, ids in wanted.items():
            query = _existing_ids(table_name, list(ids), self.link_scopes.get(table_name))
            found = set(self.conn.execute(query).scalars())
            for missing in sorted(set(ids) - found):
                for pointer in ids[missing]:
                    errors.append(
                        ErrorDetail(pointer, f"{_what(table_name)} {missing} does not exist")
                    )
        if errors:
            raise LinkError(f"{self.definition.label}: a linked record does not exist.", errors)

    def _check_row_ids(
        self,
        children: Mapping[str, list[dict[str, Any]]],
        before: Mapping[str, list[dict[str, Any]]],
    ) -> None:
        """Rows sent with an id must be distinct rows of this record (checked before writing)."""
        errors: list[ErrorDetail] = []
        for key, rows in children.items():
            existing = {r["id"] for r in before[key]}
            seen: set[int] = set()
            for i, row in enumerate(rows):
                if "id" not in row:
                    continue
                if row["id"] not in existing:
                    errors.append(ErrorDetail(f"/{key}/{i}/id", "no such row in this record"))
                elif row["id"] in seen:
                    errors.append(ErrorDetail(f"/{key}/{i}/id", f"row {row['id']} appears twice"))
                seen.add(row["id"])
        if errors:
            raise LinkError(
                f"{self.definition.label}: rows refer to ids that are not rows of this record.",
                errors,
            )

    @staticmethod
    def _collect(
        f: Field, value: Any, pointer: str, wanted: dict[str, dict[int, list[str]]]
    ) -> None:
        if value is None or f.column is None or f.column.kind != "fk":
            return
        assert f.column.references is not None
        table_name = f.column.references.split(".")[0]
        wanted.setdefault(table_name, {}).setdefault(int(value), []).append(pointer)

    def _write_children(
        self, sub: Field | None, parent_id: int, rows: list[dict[str, Any]], *, existing: list[int]
    ) -> None:
        assert sub is not None
        child = self.tables.children[sub.key]
        keys = [c.key for c in sub.children]
        kept = {r["id"] for r in rows if "id" in r}
        gone = [i for i in existing if i not in kept]
        if gone:
            self.conn.execute(sa.delete(child).where(child.c.id.in_(gone)))
        updates = [
            {"_id": r["id"], "position": pos, **{k: r.get(k) for k in keys}}
            for pos, r in enumerate(rows)
            if "id" in r
        ]
        if updates:
            self.conn.execute(
                sa.update(child)
                .where(child.c.id == sa.bindparam("_id"))
                .values(
                    {"position": sa.bindparam("position"), **{k: sa.bindparam(k) for k in keys}}
                ),
                updates,
            )
        inserts = [
            {"parent_id": parent_id, "position": pos, **{k: r.get(k) for k in keys}}
            for pos, r in enumerate(rows)
            if "id" not in r
        ]
        if inserts:
            self.conn.execute(sa.insert(child), inserts)


FormflowErrorT = NotFoundError | StaleVersionError
# A data scope: a WHERE clause over the form's table (None: every record).
Scope = sa.ColumnElement[bool] | None
# A linked form's table and the WHERE clause of the records a link may name.
LinkScope = tuple[sa.Table, sa.ColumnElement[bool]]


def _scoped(scope: Scope) -> tuple[sa.ColumnElement[bool], ...]:
    return () if scope is None else (scope,)


_DATETIME = DateTimeType()
_SQLITE_BUSY = 5  # primary result code; extended codes keep it in the low byte


def _existing_ids(
    table_name: str, ids: list[int], scoped: LinkScope | None
) -> sa.Select[tuple[int]]:
    if table_name == user_table.name:
        return sa.select(user_table.c.id).where(user_table.c.id.in_(ids))
    if table_name == department_table.name:
        return sa.select(department_table.c.id).where(department_table.c.id.in_(ids))
    if scoped is not None:
        table, scope = scoped
        return sa.select(table.c.id).where(table.c.id.in_(ids), table.c.deleted_at.is_(None), scope)
    t = sa.table(table_name, sa.column("id", sa.BigInteger), sa.column("deleted_at"))
    return sa.select(t.c.id).where(t.c.id.in_(ids), t.c.deleted_at.is_(None))


def _what(table_name: str) -> str:
    if table_name == user_table.name:
        return "user"
    if table_name == department_table.name:
        return "department"
    return f"{table_name.removeprefix('form_')} record"


def _row_values(sub: Field, row: Mapping[str, Any]) -> dict[str, Any]:
    return {c.key: row.get(c.key) for c in sub.children}


def _strip_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "id"} for r in rows]


def _child_rows_json(sub: Field, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{c.key: c.type.to_json(r.get(c.key)) for c in sub.children} for r in rows]
