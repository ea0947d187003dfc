"""Physical column shapes and the rules for changing them.

A :class:`ColumnSpec` is the database-independent description of one column
that a field needs. Publishing compares specs, never SQLAlchemy types, so the
comparison is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import decimal
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


class ExactDecimal(TypeDecorator[decimal.Decimal]):
    """Exact decimals on every database.

    PostgreSQL has NUMERIC. SQLite has no decimal type and would round money
    through binary floats, so there the value is stored as a scaled 64-bit
    integer (``12.34`` at scale 2 is ``1234``): exact, and it still compares
    and sorts correctly in SQL. Hence precision is capped at 18 digits.
    """

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision, scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = decimal.Decimal(value).quantize(decimal.Decimal(1).scaleb(-self.scale))
        if dialect.name == "sqlite":
            return int(exact.scaleb(self.scale))
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> decimal.Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return decimal.Decimal(int(value)).scaleb(-self.scale)
        return decimal.Decimal(value).quantize(decimal.Decimal(1).scaleb(-self.scale))


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
                return ExactDecimal(self.precision or 18, self.scale or 0)
            case "boolean":
                return sa.Boolean(create_constraint=False)
            case "date":
                return sa.Date()
            case "datetime":
                return UTCDateTime()
            case "json":
                # An empty value is SQL NULL, so `isnull` filters see it.
                return sa.JSON(none_as_null=True)
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
    if old.kind == "numeric" and new.kind == "numeric" and old.scale == new.scale:
        # A change of scale would rescale stored values; it is refused as
        # incompatible (add a new field instead).
        return "widen" if (new.precision or 0) >= (old.precision or 0) else "narrow"
    return "incompatible"
