"""The closed registry of field types.

Each type knows four things about a field: which schema keywords an author
may use with it, the JSON Schema fragment that validates its JSON value, the
column that stores it, and how a value travels between JSON and the
database. Adding a type means adding a class here and nothing else.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from engine.forms.checks import CN_MOBILE_PATTERN, EMAIL_PATTERN, cn_id_problem
from engine.forms.columns import ColumnSpec
from engine.forms.keys import table_name

Prop = Mapping[str, Any]

# Keywords every field may carry. ``title``/``description`` are labels;
# ``x-*`` keys are Formflow's own extensions (see docs/forms.md).
COMMON_KEYWORDS: frozenset[str] = frozenset(
    {
        "title",
        "description",
        "x-type",
        "x-labels",
        "x-index",
        "x-unique",
        "x-renamed-from",
        "default",
        "readOnly",
        "examples",
        "type",
        "format",
    }
)

EQUALITY_OPS = frozenset({"eq", "ne", "in", "isnull"})
ORDER_OPS = EQUALITY_OPS | {"lt", "lte", "gt", "gte"}
TEXT_OPS = ORDER_OPS | {"contains"}

MAX_TEXT = 1_000_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class FieldType:
    name: ClassVar[str]
    keywords: ClassVar[frozenset[str]] = frozenset()
    filter_ops: ClassVar[frozenset[str]] = ORDER_OPS
    sortable: ClassVar[bool] = True
    # JSON Schema base types the author's optional "type" keyword may name.
    json_types: ClassVar[frozenset[str]] = frozenset()
    writable: ClassVar[bool] = True

    def fragment(self, prop: Prop) -> dict[str, Any]:
        """JSON Schema for the field's JSON value (used to validate payloads)."""
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def column(self, prop: Prop) -> ColumnSpec | None:
        raise NotImplementedError  # pragma: no cover

    def definition_problems(self, prop: Prop) -> list[tuple[str, str]]:
        """Problems in the field's own definition: (relative pointer, message)."""
        return []

    def check(self, value: Any, prop: Prop) -> str | None:
        """A problem JSON Schema cannot see, for a value that passed it."""
        return None

    def to_python(self, value: Any, prop: Prop) -> Any:
        return value

    def to_json(self, value: Any) -> Any:
        return value

    def openapi(self, prop: Prop) -> dict[str, Any]:
        """The field's schema as records are *returned* (OpenAPI)."""
        return self.fragment(prop)


def _copy(prop: Prop, *names: str) -> dict[str, Any]:
    return {n: prop[n] for n in names if n in prop}


class TextType(FieldType):
    name = "text"
    keywords = frozenset({"minLength", "maxLength", "pattern"})
    filter_ops = TEXT_OPS
    json_types = frozenset({"string"})

    def length(self, prop: Prop) -> int:
        return int(prop.get("maxLength", 255))

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {
            "type": "string",
            "maxLength": self.length(prop),
            **_copy(prop, "minLength", "pattern"),
        }

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("string", length=self.length(prop))

    def definition_problems(self, prop: Prop) -> list[tuple[str, str]]:
        n = prop.get("maxLength", 255)
        if not isinstance(n, int) or not 1 <= n <= 4000:
            return [("/maxLength", "maxLength of a text field must be 1..4000; use long_text")]
        return []


class LongTextType(FieldType):
    name = "long_text"
    keywords = frozenset({"minLength", "maxLength"})
    filter_ops = frozenset({"contains", "isnull"})
    sortable = False
    json_types = frozenset({"string"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {
            "type": "string",
            "maxLength": int(prop.get("maxLength", MAX_TEXT)),
            **_copy(prop, "minLength"),
        }

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("text")


class IntegerType(FieldType):
    name = "integer"
    keywords = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
    json_types = frozenset({"integer"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {
            "type": "integer",
            "minimum": prop.get("minimum", INT64_MIN),
            "maximum": prop.get("maximum", INT64_MAX),
            **_copy(prop, "exclusiveMinimum", "exclusiveMaximum"),
        }

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("integer")


class DecimalType(FieldType):
    """Exact decimals: accepted as JSON number or numeric string, returned as string."""

    name = "decimal"
    keywords = frozenset({"minimum", "maximum", "x-precision", "x-scale"})
    json_types = frozenset({"number", "string"})
    default_precision = 18
    default_scale = 2

    def precision(self, prop: Prop) -> int:
        return int(prop.get("x-precision", self.default_precision))

    def scale(self, prop: Prop) -> int:
        return int(prop.get("x-scale", self.default_scale))

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {"type": ["number", "string"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}

    def openapi(self, prop: Prop) -> dict[str, Any]:
        return {"type": "string", "format": "decimal", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("numeric", precision=self.precision(prop), scale=self.scale(prop))

    def definition_problems(self, prop: Prop) -> list[tuple[str, str]]:
        p, s = (
            prop.get("x-precision", self.default_precision),
            prop.get("x-scale", self.default_scale),
        )
        if not (isinstance(p, int) and isinstance(s, int) and 1 <= p <= 18 and 0 <= s <= p):
            return [("/x-precision", "x-precision must be 1..18 and x-scale 0..x-precision")]
        return []

    def _parse(self, value: Any) -> decimal.Decimal | None:
        if isinstance(value, bool):
            return None
        try:
            d = decimal.Decimal(str(value)) if not isinstance(value, decimal.Decimal) else value
        except decimal.InvalidOperation:
            return None
        return d if d.is_finite() else None

    def check(self, value: Any, prop: Prop) -> str | None:
        d = self._parse(value)
        if d is None:
            return "must be a decimal number"
        scale, precision = self.scale(prop), self.precision(prop)
        # The magnitude first: quantizing a huge value would overflow the
        # decimal context (InvalidOperation) instead of giving a message.
        if abs(d) >= decimal.Decimal(10) ** (precision - scale):
            return f"must have at most {precision - scale} digits before the decimal point"
        exponent = d.as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > scale and d != d.quantize(decimal.Decimal(1).scaleb(-scale)):
            return f"must have at most {scale} decimal places"
        if "minimum" in prop and d < decimal.Decimal(str(prop["minimum"])):
            return f"must be at least {prop['minimum']}"
        if "maximum" in prop and d > decimal.Decimal(str(prop["maximum"])):
            return f"must be at most {prop['maximum']}"
        return None

    def to_python(self, value: Any, prop: Prop) -> decimal.Decimal:
        d = self._parse(value)
        assert d is not None
        return d.quantize(decimal.Decimal(1).scaleb(-self.scale(prop)))

    def to_json(self, value: Any) -> Any:
        return None if value is None else str(value)


class MoneyType(DecimalType):
    name = "money"
    keywords = frozenset({"minimum", "maximum", "x-currency"})
    default_precision = 18
    default_scale = 2

    def precision(self, prop: Prop) -> int:
        return self.default_precision

    def scale(self, prop: Prop) -> int:
        return self.default_scale

    def definition_problems(self, prop: Prop) -> list[tuple[str, str]]:
        return []


class BooleanType(FieldType):
    name = "boolean"
    filter_ops = EQUALITY_OPS
    json_types = frozenset({"boolean"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {"type": "boolean"}

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("boolean")


_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME_PREFIX_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")


class DateType(FieldType):
    name = "date"
    json_types = frozenset({"string"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {"type": "string", "format": "date"}

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("date")

    def check(self, value: Any, prop: Prop) -> str | None:
        # fromisoformat alone also takes "20240531" and week dates ("2024-W22-5").
        if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
            return "must be a date like 2024-05-31"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return "must be a date like 2024-05-31"
        return None

    def to_python(self, value: Any, prop: Prop) -> dt.date:
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)

    def to_json(self, value: Any) -> Any:
        return None if value is None else value.isoformat()


class DateTimeType(FieldType):
    """Instants: the client must say its offset; stored and returned in UTC."""

    name = "datetime"
    json_types = frozenset({"string"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("datetime")

    def _parse(self, value: Any) -> dt.datetime | None:
        if isinstance(value, dt.datetime):
            return value
        try:
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed

    def check(self, value: Any, prop: Prop) -> str | None:
        parsed = self._parse(value)
        # fromisoformat alone also takes basic ("20240531T0930Z") and week dates.
        if parsed is None or (
            not isinstance(value, dt.datetime) and not _DATETIME_PREFIX_RE.match(str(value))
        ):
            return "must be a date-time like 2024-05-31T09:30:00+08:00"
        if parsed.tzinfo is None:
            return "must include a time zone offset, e.g. +08:00 or Z"
        return None

    def to_python(self, value: Any, prop: Prop) -> dt.datetime:
        parsed = self._parse(value)
        assert parsed is not None
        return parsed.astimezone(dt.UTC)

    def to_json(self, value: Any) -> Any:
        if value is None:
            return None
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class SelectType(FieldType):
    name = "select"
    keywords = frozenset({"enum", "x-enum-labels"})
    filter_ops = EQUALITY_OPS
    json_types = frozenset({"string"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {"type": "string", "enum": list(prop.get("enum", []))}

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("string", length=64)

    def definition_problems(self, prop: Prop) -> list[tuple[str, str]]:
        return _enum_problems(prop.get("enum"), "/enum")


def _enum_problems(values: Any, pointer: str) -> list[tuple[str, str]]:
    if not isinstance(values, list) or not values:
        return [(pointer, "a select field needs a non-empty 'enum' list of options")]
    bad = [v for v in values if not isinstance(v, str) or not 1 <= len(v) <= 64]
    if bad:
        return [(pointer, f"options must be strings of 1..64 characters: {bad[:3]}")]
    if len(set(values)) != len(values):
        return [(pointer, "options must be unique")]
    return []


class MultiSelectType(FieldType):
    name = "multi_select"
    keywords = frozenset({"items", "x-enum-labels", "maxItems", "minItems", "uniqueItems"})
    filter_ops = frozenset({"contains", "isnull"})
    sortable = False
    json_types = frozenset({"array"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        items = prop.get("items", {})
        return {
            "type": "array",
            "items": {"type": "string", "enum": list(items.get("enum", []))},
            "uniqueItems": True,
            **_copy(prop, "minItems", "maxItems"),
        }

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("json")

    def definition_problems(self, prop: Prop) -> list[tuple[str, str]]:
        items = prop.get("items")
        if not isinstance(items, Mapping):
            return [("/items", "a multi_select field needs 'items': {'enum': [...]}")]
        return _enum_problems(items.get("enum"), "/items/enum")


class PhoneType(FieldType):
    name = "phone"
    filter_ops = TEXT_OPS
    json_types = frozenset({"string"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {"type": "string", "pattern": CN_MOBILE_PATTERN}

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("string", length=20)

    def check(self, value: Any, prop: Prop) -> str | None:
        return _no_trailing_newline(value, CN_MOBILE_PATTERN, "a mainland China mobile number")


def _no_trailing_newline(value: Any, pattern: str, what: str) -> str | None:
    # Python's "$" (which jsonschema uses) also matches before a final "\n";
    # ECMA-262's, the one JSON Schema means, does not.
    if not re.fullmatch(pattern, str(value)):
        return f"must be {what}"
    return None


class EmailType(FieldType):
    name = "email"
    filter_ops = TEXT_OPS
    json_types = frozenset({"string"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN}

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("string", length=254)

    def check(self, value: Any, prop: Prop) -> str | None:
        return _no_trailing_newline(value, EMAIL_PATTERN, "an email address")

    def to_python(self, value: Any, prop: Prop) -> str:
        local, _, domain = str(value).rpartition("@")
        return f"{local}@{domain.lower()}"


class CnIdNumberType(FieldType):
    name = "cn_id_number"
    filter_ops = EQUALITY_OPS
    json_types = frozenset({"string"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {"type": "string", "pattern": "^[0-9]{17}[0-9Xx]$"}

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("string", length=18)

    def check(self, value: Any, prop: Prop) -> str | None:
        return cn_id_problem(str(value))

    def to_python(self, value: Any, prop: Prop) -> str:
        return str(value).upper()


class AttachmentType(FieldType):
    """A reference to a stored file (the file store arrives with connectors)."""

    name = "attachment"
    filter_ops = frozenset({"eq", "isnull"})
    sortable = False
    json_types = frozenset({"string"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": 255}

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("string", length=255)


class _ReferenceType(FieldType):
    filter_ops = EQUALITY_OPS
    json_types = frozenset({"integer"})
    target_table: ClassVar[str]

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1, "maximum": INT64_MAX}

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("fk", references=f"{self.target_table}.id")


class UserType(_ReferenceType):
    name = "user"
    target_table = "ff_user"


class DepartmentType(_ReferenceType):
    name = "department"
    target_table = "ff_department"


class LinkType(_ReferenceType):
    """A link to a record of another (or the same) form: a foreign key."""

    name = "link"
    keywords = frozenset({"x-link"})

    def column(self, prop: Prop) -> ColumnSpec:
        return ColumnSpec("fk", references=f"{table_name(str(prop.get('x-link')))}.id")


class SubtableType(FieldType):
    """An ordered list of rows stored in a child table with a foreign key."""

    name = "subtable"
    keywords = frozenset({"items", "minItems", "maxItems"})
    filter_ops = frozenset()
    sortable = False
    json_types = frozenset({"array"})

    def fragment(self, prop: Prop) -> dict[str, Any]:
        # The item schema is assembled by engine.forms.schema from child fields.
        return {
            "type": "array",
            "maxItems": int(prop.get("maxItems", 1000)),
            **_copy(prop, "minItems"),
        }

    def column(self, prop: Prop) -> ColumnSpec | None:
        return None


RESULT_TYPES = ("text", "integer", "decimal", "money", "boolean", "date", "datetime")


class ComputedType(FieldType):
    """A value derived from other fields by an expression; never written by clients.

    The expression is stored now and evaluated by the expression engine; the
    column exists so the value can be filtered and sorted in SQL.
    """

    name = "computed"
    keywords = frozenset({"x-expression", "x-result-type", "x-precision", "x-scale", "maxLength"})
    writable = False

    def result(self, prop: Prop) -> FieldType:
        return FIELD_TYPES[str(prop.get("x-result-type", "text"))]

    def fragment(self, prop: Prop) -> dict[str, Any]:
        return {**self.result(prop).fragment(prop), "readOnly": True}

    def openapi(self, prop: Prop) -> dict[str, Any]:
        return {**self.result(prop).openapi(prop), "readOnly": True}

    def column(self, prop: Prop) -> ColumnSpec | None:
        return self.result(prop).column(prop)

    def definition_problems(self, prop: Prop) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        expr = prop.get("x-expression")
        if not isinstance(expr, str) or not expr.strip() or len(expr) > 2000:
            problems.append(
                ("/x-expression", "a computed field needs an x-expression (1..2000 characters)")
            )
        if prop.get("x-result-type", "text") not in RESULT_TYPES:
            problems.append(
                ("/x-result-type", f"x-result-type must be one of {', '.join(RESULT_TYPES)}")
            )
        else:  # the result type's own rules (maxLength, x-precision/x-scale)
            problems.extend(self.result(prop).definition_problems(prop))
        return problems

    def to_json(self, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return FIELD_TYPES["datetime"].to_json(value)  # UTC with "Z", as a datetime field
        if isinstance(value, (dt.date, decimal.Decimal)):
            return str(value) if isinstance(value, decimal.Decimal) else value.isoformat()
        return value


FIELD_TYPES: dict[str, FieldType] = {
    t.name: t
    for t in (
        TextType(),
        LongTextType(),
        IntegerType(),
        DecimalType(),
        MoneyType(),
        BooleanType(),
        DateType(),
        DateTimeType(),
        SelectType(),
        MultiSelectType(),
        PhoneType(),
        EmailType(),
        CnIdNumberType(),
        AttachmentType(),
        UserType(),
        DepartmentType(),
        LinkType(),
        SubtableType(),
        ComputedType(),
    )
}


def infer_type(prop: Prop) -> str | None:
    """The field type implied by plain JSON Schema when ``x-type`` is absent."""
    json_type, fmt = prop.get("type"), prop.get("format")
    if json_type == "string":
        if fmt == "date":
            return "date"
        if fmt == "date-time":
            return "datetime"
        if fmt == "email":
            return "email"
        return "select" if "enum" in prop else "text"
    if json_type == "array":
        items = prop.get("items")
        if isinstance(items, Mapping) and items.get("type") == "object":
            return "subtable"
        return "multi_select"
    return {"integer": "integer", "number": "decimal", "boolean": "boolean"}.get(str(json_type))
