"""Physical column shapes and the rules for changing them.

A :class:`ColumnSpec` is the database-independent description of one column
that a field needs. Publishing compares specs, never SQLAlchemy types, so the
comparison is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

ColumnKind = Literal[
    "string", "text", "integer", "numeric", "boolean", "date", "datetime", "json", "fk"
]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware datetimes stored as UTC on every database.

    SQLite has no time zone type; storing naive UTC there and tagging it UTC
    on the way out gives both databases the same behaviour.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# A BIGINT primary key that still autoincrements on SQLite (which only does
# so for the exact type INTEGER).
BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


@dataclass(frozen=True)
class ColumnSpec:
    kind: ColumnKind
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    references: str | None = None  # "table.column" for kind == "fk"

    def sa_type(self) -> sa.types.TypeEngine[Any]:
        match self.kind:
            case "string":
                return sa.String(self.length or 255)
            case "text":
                return sa.Text()
            case "integer" | "fk":
                return sa.BigInteger()
            case "numeric":
                return sa.Numeric(self.precision or 18, self.scale or 0, asdecimal=True)
            case "boolean":
                return sa.Boolean(create_constraint=False)
            case "date":
                return sa.Date()
            case "datetime":
                return UTCDateTime()
            case "json":
                return sa.JSON()
        raise AssertionError(self.kind)  # pragma: no cover - Literal is closed

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSpec:
        return cls(**data)

    def describe(self) -> str:
        match self.kind:
            case "string":
                return f"text({self.length})"
            case "numeric":
                return f"decimal({self.precision},{self.scale})"
            case "fk":
                return f"link({self.references})"
        return self.kind


def change_kind(
    old: ColumnSpec, new: ColumnSpec
) -> Literal["same", "widen", "narrow", "incompatible"]:
    """Classify a change of column shape.

    ``widen``: every value of ``old`` fits ``new`` (no data can be lost);
    ``narrow``: same family but some values may not fit (allowed only when no
    row holds such a value); ``incompatible``: a different kind of data.
    """
    if old == new:
        return "same"
    if old.kind == "string" and new.kind == "string":
        return "widen" if (new.length or 0) >= (old.length or 0) else "narrow"
    if old.kind == "string" and new.kind == "text":
        return "widen"
    if old.kind == "text" and new.kind == "string":
        return "narrow"
    if old.kind == "numeric" and new.kind == "numeric":
        old_int = (old.precision or 0) - (old.scale or 0)
        new_int = (new.precision or 0) - (new.scale or 0)
        if new_int >= old_int and (new.scale or 0) >= (old.scale or 0):
            return "widen"
        return "narrow"
    if old.kind == "integer" and new.kind == "numeric":
        return "widen" if (new.precision or 0) - (new.scale or 0) >= 19 else "narrow"
    return "incompatible"
