"""Machine keys for forms and fields.

A key becomes a physical SQL identifier, so it is restricted to a portable
subset: lower-case ASCII, not an SQL reserved word, not a system column.
"""

from __future__ import annotations

import re

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,40}$"
_KEY_RE = re.compile(KEY_PATTERN)

SYSTEM_COLUMNS: frozenset[str] = frozenset(
    {
        "id",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "owner_id",
        "dept_id",
        "version",
        "deleted_at",
        # child (sub-table) rows
        "parent_id",
        "position",
    }
)

# Words PostgreSQL reserves (plus a few SQLite ones): a key that is one
# would need quoting in every hand-written report query.
SQL_RESERVED: frozenset[str] = frozenset(
    {
        "add",
        "all",
        "alter",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "between",
        "binary",
        "both",
        "by",
        "case",
        "cast",
        "check",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "delete",
        "desc",
        "distinct",
        "do",
        "drop",
        "else",
        "end",
        "escape",
        "except",
        "exists",
        "false",
        "fetch",
        "filter",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "ilike",
        "in",
        "index",
        "initially",
        "inner",
        "insert",
        "intersect",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "natural",
        "new",
        "off",
        "old",
        "not",
        "notnull",
        "null",
        "of",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "over",
        "overlaps",
        "placing",
        "primary",
        "references",
        "regexp",
        "returning",
        "right",
        "select",
        "session_user",
        "set",
        "similar",
        "some",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "update",
        "user",
        "using",
        "values",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    }
)


# Query-string names of record lists (``?sort=...&fields=...``) and the
# ``expand`` member of returned records: a field with such a key could not be
# filtered on.
API_RESERVED: frozenset[str] = frozenset(
    {"fields", "sort", "limit", "cursor", "page", "count", "expand"}
)


def key_problem(key: object) -> str | None:
    """Return why ``key`` is not a valid machine key, or ``None`` if it is."""
    if not isinstance(key, str):
        return "a key must be a string"
    if not _KEY_RE.fullmatch(key):  # not match(): "$" also matches before a final "\n"
        return (
            f"key {key!r} must start with a lower-case letter and contain only "
            "a-z, 0-9 and '_' (at most 41 characters)"
        )
    if key in SQL_RESERVED:
        return f"key {key!r} is an SQL reserved word; choose another key"
    if key in SYSTEM_COLUMNS:
        return f"key {key!r} is a system column; choose another key"
    if "__" in key:
        return f"key {key!r} must not contain '__' (reserved for sub-table names)"
    if key in API_RESERVED:
        return f"key {key!r} is a reserved word of the REST API's list queries; choose another key"
    return None


def stored_key_problem(key: object) -> str | None:
    """The rules a key published earlier must still meet.

    Word lists grow (a new reserved word, a new query parameter); a form
    published before must keep loading, so only the structural rules apply.
    """
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        return f"key {key!r} is not a valid identifier"
    if key in SYSTEM_COLUMNS or "__" in key:
        return f"key {key!r} clashes with a system name"
    return None


def table_name(form_key: str) -> str:
    return f"form_{form_key}"


def child_table_name(form_key: str, field_key: str) -> str:
    return f"form_{form_key}__{field_key}"


MAX_IDENTIFIER_LENGTH = 63  # PostgreSQL's limit; the stricter of our two databases
