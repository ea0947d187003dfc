"""Query-string grammar of record lists, turned into an engine ListQuery.

``?tier=private&aum__gte=1000000&name__contains=王&sort=-aum,name&limit=50``
Reserved names (fields, sort, limit, cursor, page, count, expand) are never
field keys: the form key rules forbid them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from engine.errors import ErrorDetail, QueryError
from engine.records.query import FILTER_OPS, Filter, ListQuery, Sort

_ENGINE_POINTER = re.compile(r"^/(filters|sort|fields|expand)/([0-9]+)$")
RESERVED_PARAMS = frozenset({"fields", "sort", "limit", "cursor", "page", "count", "expand"})
DEFAULT_LIMIT = 50
MAX_BATCH = 1000  # operations in one records:batch request
MAX_OFFSET = 10_000


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_list_query(
    params: Iterable[tuple[str, str]], *, max_limit: int
) -> tuple[ListQuery, list[str], bool]:
    """Return the query, the link fields to expand, and whether to count."""
    single: dict[str, str] = {}
    filters: list[Filter] = []
    errors: list[ErrorDetail] = []
    for key, value in params:
        if key in RESERVED_PARAMS:
            if key in single:
                errors.append(ErrorDetail(f"/query/{key}", f"{key} may be given once"))
            single[key] = value
            continue
        field, _, op = key.partition("__")
        op = op or "eq"
        if op not in FILTER_OPS:
            errors.append(
                ErrorDetail(
                    f"/query/{key}", f"unknown operator {op!r}; use one of {sorted(FILTER_OPS)}"
                )
            )
            continue
        filters.append(Filter(field, op, value))
    limit = _int(single.get("limit"), "limit", DEFAULT_LIMIT, 1, max_limit, errors)
    page = _int(single.get("page"), "page", 0, 1, None, errors) if "page" in single else None
    offset = None
    if page is not None:
        offset = (page - 1) * limit
        if offset > MAX_OFFSET:
            errors.append(
                ErrorDetail("/query/page", f"pages beyond {MAX_OFFSET} records: use the cursor")
            )
    if page is not None and "cursor" in single:
        errors.append(ErrorDetail("/query/page", "use either page or cursor, not both"))
    count = single.get("count", "false").lower()
    if count not in ("true", "false", "1", "0"):
        errors.append(ErrorDetail("/query/count", "count is true or false"))
    if errors:
        raise QueryError("The list query is not valid.", errors)
    sort = [Sort(s.lstrip("-"), s.startswith("-")) for s in _csv(single.get("sort"))]
    fields = _csv(single.get("fields")) if "fields" in single else None
    query = ListQuery(
        filters=filters,
        sort=sort,
        limit=limit,
        cursor=single.get("cursor") or None,
        offset=offset,
        fields=fields,
    )
    return query, _csv(single.get("expand")), count in ("true", "1")


def _int(
    raw: str | None, name: str, default: int, low: int, high: int | None, errors: list[ErrorDetail]
) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(ErrorDetail(f"/query/{name}", f"{name} must be a whole number"))
        return default
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f"at least {low}"
        errors.append(ErrorDetail(f"/query/{name}", f"{name} must be {bound}"))
        return default
    return value


def request_pointer(pointer: str, query: ListQuery) -> str:
    """An engine pointer into the ListQuery as a pointer into the request.

    ``/filters/1`` becomes the parameter that made the second filter
    (``/query/qty__gt``); ``/sort/1`` and ``/fields/1`` the second item of
    the comma-separated ``sort`` or ``fields`` (``/query/sort/1``), like
    ``/query/expand/1``.
    """
    match = _ENGINE_POINTER.match(pointer)
    if match is None:
        return pointer
    kind, index = match.group(1), int(match.group(2))
    if kind == "filters":
        if index >= len(query.filters):
            return pointer
        f = query.filters[index]
        return f"/query/{f.field}" if f.op == "eq" else f"/query/{f.field}__{f.op}"
    return f"/query/{kind}/{index}"
