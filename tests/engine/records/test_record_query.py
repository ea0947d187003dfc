"""list_records and count_records: filters, sort, keyset cursors, field selection, cost."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from records_support import T0, Forms

from engine.errors import QueryError
from engine.records.query import Filter, Sort

SORTABLE = (
    "id, created_at, updated_at, title, qty, rate, amount, born, seen_at, mail, id_no, company"
)

# id: title, qty, amount, active, born, seen_at, level, tags, notes, mobile
ROWS: list[dict[str, Any]] = [
    {
        "title": "Apple",
        "qty": 5,
        "amount": "100.00",
        "active": True,
        "born": "1990-01-01",
        "seen_at": "2024-01-01T08:00:00+08:00",
        "level": "low",
        "tags": ["red", "green"],
        "notes": "50% off_sale",
        "mobile": "13800000001",
    },
    {
        "title": "apricot",
        "qty": 10,
        "amount": "200.50",
        "active": False,
        "born": "1985-06-15",
        "seen_at": "2024-02-01T00:00:00Z",
        "level": "mid",
        "tags": ["blue"],
        "notes": "half off",
        "mobile": "13800000002",
    },
    {"title": "Banana"},
    {
        "title": "cherry",
        "qty": 5,
        "amount": "100.00",
        "active": True,
        "born": "2000-02-29",
        "seen_at": "2024-03-01T00:00:00Z",
        "level": "high",
        "tags": [],
        "notes": "50 percent",
        "mobile": "13900000003",
    },
    {
        "title": "Da_te",
        "qty": 0,
        "amount": "-1.00",
        "active": False,
        "born": "1990-01-01",
        "seen_at": "2024-01-01T00:00:00Z",
        "level": "low",
        "tags": ["green", "blue"],
        "notes": "HALF price 100%",
        "mobile": "13900000004",
    },
]


@pytest.fixture
def fruit(forms: Forms) -> Forms:
    """Records 1..5 of ROWS; record 3 is owned by user 2 in department 2."""
    for i, row in enumerate(ROWS, start=1):
        if i == 3:
            forms.store(user_id=2).create(row, dept_id=2)
        else:
            forms.store().create(row)
    forms.store().update(4, {"notes": "50 percent!"}, expected_version=1)
    return forms


def ids(page: Any) -> list[int]:
    return [item["id"] for item in page.items]


def where(forms: Forms, *filters: Filter) -> list[int]:
    found = ids(forms.list(filters=list(filters)))
    assert forms.count(list(filters)) == len(found)
    return found


def refused(call: Any) -> tuple[str, list[tuple[str, str]]]:
    with pytest.raises(QueryError) as exc:
        call()
    return exc.value.message, [(e.pointer, e.message) for e in exc.value.errors]


# -- filters -----------------------------------------------------------------------


FILTERS: list[tuple[Filter, list[int]]] = [
    (Filter("title", "eq", "Apple"), [1]),
    (Filter("title", "eq", "apple"), []),
    (Filter("title", "ne", "Apple"), [2, 3, 4, 5]),
    (Filter("qty", "eq", 5), [1, 4]),
    (Filter("qty", "eq", "5"), [1, 4]),
    (Filter("qty", "ne", 5), [2, 3, 5]),
    (Filter("qty", "lt", 5), [5]),
    (Filter("qty", "lte", 5), [1, 4, 5]),
    (Filter("qty", "gt", "5"), [2]),
    (Filter("qty", "gte", 0), [1, 2, 4, 5]),
    (Filter("qty", "eq", None), [3]),
    (Filter("qty", "ne", None), [1, 2, 4, 5]),
    (Filter("amount", "eq", "100"), [1, 4]),
    (Filter("amount", "gt", "100.00"), [2]),
    (Filter("amount", "lt", 0), [5]),
    (Filter("amount", "lte", 100), [1, 4, 5]),
    (Filter("amount", "gte", "200.5"), [2]),
    (Filter("active", "eq", True), [1, 4]),
    (Filter("active", "eq", "false"), [2, 5]),
    (Filter("active", "ne", "1"), [2, 3, 5]),
    (Filter("born", "eq", "1990-01-01"), [1, 5]),
    (Filter("born", "lt", "1990-01-01"), [2]),
    (Filter("born", "gte", "1990-01-02"), [4]),
    (Filter("seen_at", "eq", "2024-01-01T00:00:00Z"), [1, 5]),
    (Filter("seen_at", "gt", "2024-01-01T08:00:00+08:00"), [2, 4]),
    (Filter("seen_at", "lte", "2024-02-01T08:00:00+08:00"), [1, 2, 5]),
    (Filter("level", "eq", "low"), [1, 5]),
    (Filter("level", "in", "low,high"), [1, 4, 5]),
    (Filter("level", "in", ["mid"]), [2]),
    (Filter("qty", "in", "5,10"), [1, 2, 4]),
    (Filter("qty", "in", "0"), [5]),
    (Filter("qty", "in", [10, 0]), [2, 5]),
    (Filter("amount", "in", "100,-1"), [1, 4, 5]),
    (Filter("title", "contains", "AP"), [1, 2]),
    (Filter("title", "contains", "an"), [3]),
    (Filter("title", "contains", "_"), [5]),
    (Filter("title", "contains", "a_t"), [5]),
    (Filter("title", "contains", "p_l"), []),
    (Filter("title", "contains", "a%"), []),
    (Filter("notes", "contains", "%"), [1, 5]),
    (Filter("notes", "contains", "50%"), [1]),
    (Filter("notes", "contains", "0%"), [1, 5]),
    (Filter("notes", "contains", "f_s"), [1]),
    (Filter("notes", "contains", "f%s"), []),
    (Filter("notes", "contains", "half"), [2, 5]),
    (Filter("mobile", "contains", "1390"), [4, 5]),
    (Filter("tags", "contains", "red"), [1]),
    (Filter("tags", "contains", "blue"), [2, 5]),
    (Filter("tags", "contains", "bl"), []),
    (Filter("tags", "isnull", True), [3]),
    (Filter("tags", "isnull", "false"), [1, 2, 4, 5]),
    (Filter("qty", "isnull", "true"), [3]),
    (Filter("qty", "isnull", "0"), [1, 2, 4, 5]),
    (Filter("notes", "isnull", False), [1, 2, 4, 5]),
]


def test_each_filter_operator(fruit: Forms) -> None:
    # One database for all cases; a dict so that a failure shows every wrong case.
    assert {repr(f): where(fruit, f) for f, _ in FILTERS} == {repr(f): e for f, e in FILTERS}


def test_filters_are_combined_with_and(fruit: Forms) -> None:
    assert where(fruit, Filter("qty", "eq", 5), Filter("title", "contains", "err")) == [4]
    assert where(fruit, Filter("qty", "eq", 5), Filter("level", "eq", "mid")) == []


SYSTEM_FILTERS: list[tuple[Filter, list[int]]] = [
    (Filter("id", "in", "1,3,5"), [1, 3, 5]),
    (Filter("id", "gt", 3), [4, 5]),
    (Filter("created_by", "eq", 2), [3]),
    (Filter("updated_by", "ne", "2"), [1, 2, 4, 5]),
    (Filter("owner_id", "in", "1"), [1, 2, 4, 5]),
    (Filter("dept_id", "eq", 2), [3]),
    (Filter("dept_id", "isnull", True), [1, 2, 4, 5]),
    (Filter("version", "gte", 2), [4]),
    (Filter("created_at", "gte", "2024-06-01T08:00:03Z"), [4, 5]),
    (Filter("created_at", "lt", "2024-06-01T16:00:01+08:00"), [1]),
    (Filter("updated_at", "eq", "2024-06-01T08:00:05Z"), [4]),
]


def test_filters_on_system_columns(fruit: Forms) -> None:
    assert {repr(f): where(fruit, f) for f, _ in SYSTEM_FILTERS} == {
        repr(f): e for f, e in SYSTEM_FILTERS
    }


def test_a_soft_deleted_record_is_never_listed(fruit: Forms) -> None:
    fruit.store().delete(1, expected_version=1)
    assert ids(fruit.list()) == [2, 3, 4, 5]
    assert where(fruit, Filter("qty", "eq", 5)) == [4]
    assert fruit.count([]) == 4


BAD_FILTERS: list[tuple[Filter, str]] = [
    (Filter("nope", "eq", 1), "unknown field 'nope'"),
    (Filter("deleted_at", "isnull", True), "unknown field 'deleted_at'"),
    (Filter("docs", "eq", 1), "unknown field 'docs'"),
    (Filter("id", "eq", str(2**64)), "id is out of range (64-bit whole numbers only)"),
    (Filter("company", "in", f"1,{2**63}"), "company is out of range (64-bit whole numbers only)"),
    (
        Filter("qty", "contains", "1"),
        "qty supports eq, gt, gte, in, isnull, lt, lte, ne, not 'contains'",
    ),
    (Filter("qty", "like", "1"), "qty supports eq, gt, gte, in, isnull, lt, lte, ne, not 'like'"),
    (Filter("level", "lt", "low"), "level supports eq, in, isnull, ne, not 'lt'"),
    (Filter("tags", "eq", "red"), "tags supports contains, isnull, not 'eq'"),
    (Filter("notes", "eq", "x"), "notes supports contains, isnull, not 'eq'"),
    (Filter("photo", "ne", "x"), "photo supports eq, isnull, not 'ne'"),
    (Filter("qty", "eq", "five"), "qty needs a whole number, not 'five'"),
    (Filter("qty", "eq", 5.5), "qty needs a whole number, not 5.5"),
    (Filter("qty", "eq", True), "qty needs a whole number, not True"),
    (Filter("qty", "in", "1,x"), "qty needs a whole number, not 'x'"),
    (Filter("qty", "in", ""), "qty needs a whole number, not ''"),
    (Filter("title", "eq", 5), "title needs text, not 5"),
    (Filter("title", "in", [1, "a"]), "title needs text, not 1"),
    (Filter("company", "eq", "acme"), "company needs a whole number, not 'acme'"),
    (Filter("created_by", "eq", 1.5), "created_by needs a whole number, not 1.5"),
    (Filter("active", "eq", "yes"), "active needs true or false, not 'yes'"),
    (Filter("active", "eq", 1), "active needs true or false, not 1"),
    (Filter("amount", "gt", "abc"), "amount must be a decimal number"),
    (Filter("amount", "gt", True), "amount needs a number or text, not True"),
    (Filter("amount", "eq", "1.001"), "amount must have at most 2 decimal places"),
    (Filter("born", "eq", "1990-13-01"), "born must be a date like 2024-05-31"),
    (
        Filter("seen_at", "gt", "2024-01-01T00:00:00"),
        "seen_at must include a time zone offset, e.g. +08:00 or Z",
    ),
    (
        Filter("seen_at", "gt", "2024-01-01"),
        "seen_at must be a date-time like 2024-05-31T09:30:00+08:00",
    ),
    (Filter("created_at", "gt", 5), "created_at needs text, not 5"),
    (Filter("qty", "isnull", "maybe"), "isnull needs true or false, not 'maybe'"),
    (Filter("qty", "in", ",".join(["1"] * 501)), "'in' takes 1 to 500 values"),
    (Filter("qty", "in", []), "'in' takes 1 to 500 values"),
]


def test_a_bad_filter_is_a_query_error_with_its_pointer(fruit: Forms) -> None:
    ok = Filter("qty", "gte", 0)
    actual: dict[str, Any] = {}
    for flt, _ in BAD_FILTERS:
        title, errors = refused(lambda flt=flt: fruit.list(filters=[ok, flt]))
        assert refused(lambda flt=flt: fruit.count([ok, flt])) == (title, errors)
        unknown = "unknown field" in errors[0][1] if errors else False
        assert title == ("Unknown field in query." if unknown else "Invalid filter.")
        actual[repr(flt)[:80]] = errors
    assert actual == {repr(f)[:80]: [("/filters/1", m)] for f, m in BAD_FILTERS}


def test_the_in_operator_accepts_exactly_500_values(fruit: Forms) -> None:
    values = ",".join(str(i) for i in range(500))
    assert where(fruit, Filter("qty", "in", values)) == [1, 2, 4, 5]


def test_isnull_sees_a_multi_select_emptied_with_null(fruit: Forms) -> None:
    fruit.store().update(1, {"tags": None}, expected_version=1)
    fruit.store().create({"title": "Nul", "tags": None})
    assert where(fruit, Filter("tags", "isnull", True)) == [1, 3, 6]


# -- sort and keyset cursors -----------------------------------------------------------

QTYS = [3, None, 1, 3, 2, None, 3, 1, 0, None, 2, 3, 5, 0, None]
AMOUNTS = ["1", "2", None, "1", "2", "1", None, "2", "1", "1", None, "2", "1", "2", "1"]


@pytest.fixture
def ties(forms: Forms) -> Forms:
    """15 records (ids 1..15) whose qty and amount have ties and NULLs."""
    store = forms.store()
    for i, (qty, amount) in enumerate(zip(QTYS, AMOUNTS, strict=True), start=1):
        store.create({"title": f"T{i:02}", "qty": qty, "amount": amount})
    return forms


def null_last(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


def expected_order(sorts: list[tuple[list[Any], bool]]) -> list[int]:
    """Ids in (sort..., id) order with NULL largest; id follows the last sort's direction."""
    ordered = list(range(1, len(QTYS) + 1))
    id_desc = sorts[-1][1] if sorts else False
    ordered.sort(key=lambda i: i, reverse=id_desc)
    for values, desc in reversed(sorts):
        ordered.sort(key=lambda i: null_last(values[i - 1]), reverse=desc)
    return ordered


def walk(forms: Forms, sort: list[Sort], limit: int) -> tuple[list[int], list[int]]:
    """All ids page by page, and the size of each page."""
    seen: list[int] = []
    sizes: list[int] = []
    cursor = None
    for _ in range(100):
        page = forms.list(sort=sort, limit=limit, cursor=cursor)
        seen += ids(page)
        sizes.append(len(page.items))
        cursor = page.next_cursor
        if cursor is None:
            return seen, sizes
    raise AssertionError("the cursor never ended")


def decimal_values() -> list[Any]:
    return [None if a is None else float(a) for a in AMOUNTS]


@pytest.mark.parametrize(
    "sort",
    [
        [Sort("qty")],
        [Sort("qty", descending=True)],
        [Sort("amount", descending=True), Sort("qty")],
        [Sort("amount"), Sort("qty", descending=True)],
        [],
        [Sort("id", descending=True)],
    ],
    ids=lambda s: ",".join(f"{'-' if x.descending else ''}{x.field}" for x in s) or "none",
)
def test_cursor_pages_visit_every_record_once_in_order(ties: Forms, sort: list[Sort]) -> None:
    columns = {"qty": QTYS, "amount": decimal_values(), "id": list(range(1, 16))}
    expected = expected_order([(columns[s.field], s.descending) for s in sort])
    assert ids(ties.list(sort=sort, limit=50)) == expected
    for limit in (1, 2, 3, 7, 15, 50):
        seen, sizes = walk(ties, sort, limit)
        assert (limit, seen) == (limit, expected)
        full, rest = divmod(len(expected), limit)
        assert (limit, sizes) == (limit, [limit] * full + ([rest] if rest else []))


def test_the_expected_order_itself(ties: Forms) -> None:
    # Spelled out once, so the helper that computes orders cannot hide a mistake.
    assert expected_order([(QTYS, False)]) == [9, 14, 3, 8, 5, 11, 1, 4, 7, 12, 13, 2, 6, 10, 15]
    assert expected_order([(QTYS, True)]) == [15, 10, 6, 2, 13, 12, 7, 4, 1, 11, 5, 8, 3, 14, 9]
    assert ids(ties.list(sort=[Sort("qty")], limit=50)) == expected_order([(QTYS, False)])


def test_cursor_pages_follow_inserts_between_pages(ties: Forms) -> None:
    first = ties.list(sort=[Sort("qty")], limit=5)
    assert ids(first) == [9, 14, 3, 8, 5]
    ties.store().create({"title": "New", "qty": 0})  # sorts before the cursor: not seen
    ties.store().create({"title": "Newer", "qty": 4})  # sorts after it: seen
    rest = ties.list(sort=[Sort("qty")], limit=50, cursor=first.next_cursor)
    assert ids(rest) == [11, 1, 4, 7, 12, 17, 13, 2, 6, 10, 15]


def test_sort_on_a_datetime_and_a_date(fruit: Forms) -> None:
    assert ids(fruit.list(sort=[Sort("seen_at")])) == [1, 5, 2, 4, 3]
    assert ids(fruit.list(sort=[Sort("born", descending=True)])) == [3, 4, 5, 1, 2]
    assert ids(fruit.list(sort=[Sort("updated_at", descending=True)])) == [4, 5, 3, 2, 1]
    seen, _ = walk(fruit, [Sort("seen_at", descending=True)], 2)
    assert seen == [3, 4, 2, 5, 1]


def test_sort_on_a_field_without_index_is_refused(fruit: Forms) -> None:
    for field in ("notes", "tags", "level", "handler", "photo", "score"):
        assert refused(lambda field=field: fruit.list(sort=[Sort("qty"), Sort(field)])) == (
            "This field cannot be sorted on.",
            [("/sort/1", f"sort on one of: {SORTABLE}")],
        )
    assert refused(lambda: fruit.list(sort=[Sort("docs")])) == (
        "Unknown field in query.",
        [("/sort/0", "unknown field 'docs'")],
    )


def test_a_cursor_of_another_sort_is_refused(ties: Forms) -> None:
    cursor = ties.list(sort=[Sort("qty")], limit=2).next_cursor
    assert cursor is not None
    for other in ([Sort("qty", descending=True)], [Sort("amount")], [], [Sort("qty"), Sort("id")]):
        assert refused(lambda other=other: ties.list(sort=other, cursor=cursor)) == (
            "The cursor belongs to a different sort order; start again.",
            [],
        )


def encode(data: Any) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


GARBAGE_CURSORS: list[tuple[list[Sort], str]] = [
    ([Sort("qty")], "!!!not-base64!!!"),
    ([Sort("qty")], "e30"),
    ([Sort("qty")], encode([1, 2])),
    ([Sort("qty")], encode("qty")),
    ([Sort("qty")], encode({"s": "qty", "v": [1]})),
    ([Sort("qty")], encode({"s": "qty", "v": 1, "id": 1})),
    ([Sort("qty")], encode({"s": "qty", "v": ["x"], "id": 1})),
    ([Sort("qty")], encode({"s": "qty", "v": [1.5], "id": 1})),
    ([Sort("qty")], encode({"s": "qty", "v": [1], "id": "1"})),
    ([Sort("qty")], encode({"s": "qty", "v": [1], "id": None})),
    ([Sort("amount")], encode({"s": "amount", "v": ["abc"], "id": 1})),
    ([Sort("amount")], encode({"s": "amount", "v": [True], "id": 1})),
    ([Sort("born")], encode({"s": "born", "v": ["1990-13-01"], "id": 1})),
    ([Sort("seen_at")], encode({"s": "seen_at", "v": ["2024-01-01T00:00:00"], "id": 1})),
    ([Sort("seen_at")], encode({"s": "seen_at", "v": [5], "id": 1})),
    ([Sort("title")], encode({"s": "title", "v": [5], "id": 1})),
    ([], base64.urlsafe_b64encode(b"\xff\xfe").decode()),
]


def test_a_garbage_cursor_is_refused(ties: Forms) -> None:
    invalid = ("The cursor is not valid; start again from the first page.", [])
    actual = {c: refused(lambda s=s, c=c: ties.list(sort=s, cursor=c)) for s, c in GARBAGE_CURSORS}
    assert actual == {c: invalid for _, c in GARBAGE_CURSORS}


def test_a_hand_made_cursor_with_valid_values_works(ties: Forms) -> None:
    cursor = encode({"s": "qty", "v": [3], "id": 4})
    assert ids(ties.list(sort=[Sort("qty")], cursor=cursor)) == [7, 12, 13, 2, 6, 10, 15]
    # After (amount NULL, qty 1, id 3) in amount-descending order: the rest of
    # the NULL amounts (qty 2, then 3), then the largest amounts.
    cursor = encode({"s": "-amount,qty", "v": [None, 1], "id": 3})
    sort = [Sort("amount", True), Sort("qty")]
    assert ids(ties.list(sort=sort, cursor=cursor, limit=3)) == [11, 7, 14]


def test_offset_pages_and_their_limits(ties: Forms) -> None:
    page = ties.list(sort=[Sort("qty")], limit=3, offset=3)
    assert (ids(page), page.next_cursor) == ([8, 5, 11], None)
    assert ids(ties.list(sort=[Sort("qty")], limit=3, offset=14)) == [15]
    assert ids(ties.list(limit=3, offset=0)) == [1, 2, 3]
    assert refused(lambda: ties.list(offset=1, cursor="x")) == (
        "Use either a cursor or an offset, not both.",
        [],
    )
    assert refused(lambda: ties.list(limit=0)) == (
        "Invalid page size.",
        [("/limit", "limit must be at least 1")],
    )
    assert refused(lambda: ties.list(offset=-1)) == (
        "Invalid offset.",
        [("/offset", "offset must be 0 or more")],
    )


def test_the_last_page_has_no_cursor(ties: Forms) -> None:
    assert ties.list(limit=15).next_cursor is None
    assert ties.list(limit=14).next_cursor is not None
    assert ties.list(filters=[Filter("qty", "eq", 99)]).items == []


# -- field selection and cost ------------------------------------------------------------

SYSTEM = [
    "id",
    "version",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "owner_id",
    "dept_id",
]


def test_a_list_item_is_the_record_without_its_sub_tables(forms: Forms) -> None:
    record = forms.store().create({"title": "Full", "qty": 1, "docs": [{"kind": "passport"}]})
    (item,) = forms.list().items
    assert item == {k: v for k, v in record.items() if k != "docs"}


def test_field_selection_returns_system_fields_and_the_named_ones(
    fruit: Forms, count_statements: Any
) -> None:
    fruit.store().update(
        2, {"docs": [{"kind": "passport"}, {"kind": "licence", "pages": 2}]}, expected_version=1
    )
    with count_statements(fruit.conn) as log:
        page = fruit.list(fields=["title", "docs", "version"], filters=[Filter("qty", "gte", 5)])
    assert log.count == 2
    assert [sorted(item) for item in page.items] == [sorted([*SYSTEM, "title", "docs"])] * 3
    assert [(item["title"], item["docs"]) for item in page.items] == [
        ("Apple", []),
        (
            "apricot",
            [
                {"id": 1, "kind": "passport", "pages": None, "issuer": None},
                {"id": 2, "kind": "licence", "pages": 2, "issuer": None},
            ],
        ),
        ("cherry", []),
    ]
    with count_statements(fruit.conn) as log:
        page = fruit.list(fields=["title", "tags"])
    assert log.count == 1
    assert page.items[0] == {
        "id": 1,
        "version": 1,
        "created_at": "2024-06-01T08:00:00Z",
        "created_by": 1,
        "updated_at": "2024-06-01T08:00:00Z",
        "updated_by": 1,
        "owner_id": 1,
        "dept_id": None,
        "title": "Apple",
        "tags": ["red", "green"],
    }


def test_selecting_an_unknown_field_is_refused(fruit: Forms) -> None:
    assert refused(lambda: fruit.list(fields=["title", "nope", "deleted_at"])) == (
        "Unknown field in 'fields'.",
        [("/fields/1", "unknown field 'nope'"), ("/fields/2", "unknown field 'deleted_at'")],
    )


def insert_many(forms: Forms, n: int) -> None:
    table = forms.schema.form("specimen").table
    forms.conn.execute(
        sa.insert(table),
        [
            {
                "title": f"R{i:03}",
                "qty": i % 7,
                "amount": f"{i}.50",
                "tags": ["red"] if i % 2 else ["blue"],
                "created_at": T0 + dt.timedelta(seconds=i),
                "updated_at": T0 + dt.timedelta(seconds=i),
                "version": 1,
            }
            for i in range(n)
        ],
    )


@pytest.mark.parametrize("limit", [1, 200])
def test_a_page_is_one_statement(forms: Forms, count_statements: Any, limit: int) -> None:
    n = 801
    insert_many(forms, n)
    red_not_6 = sum(1 for i in range(n) if i % 2 and i % 7 != 6)
    assert red_not_6 == 343
    queries: list[tuple[dict[str, Any], int]] = [
        ({}, n),
        ({"sort": [Sort("qty", descending=True), Sort("amount")]}, n),
        ({"filters": [Filter("tags", "contains", "red"), Filter("qty", "in", "0,1,2,3,4,5")]}, 343),
        ({"fields": ["title", "qty"], "sort": [Sort("created_at")]}, n),
    ]
    for query, total in queries:
        with count_statements(forms.conn) as log:
            first = forms.list(limit=limit, **query)
        assert log.count == 1, log.statements
        assert len(first.items) == limit
        with count_statements(forms.conn) as log:
            second = forms.list(limit=limit, cursor=first.next_cursor, **query)
        assert log.count == 1, log.statements
        assert len(second.items) == min(limit, total - limit)
        assert not {i["id"] for i in first.items} & {i["id"] for i in second.items}
        assert forms.count(list(query.get("filters", []))) == total


@pytest.mark.parametrize("descending", [False, True])
def test_cursor_pages_work_when_fields_leave_out_the_sort_column(
    ties: Forms, descending: bool
) -> None:
    sort = [Sort("qty", descending=descending)]
    expected = expected_order([(QTYS, descending)])
    seen: list[int] = []
    cursor = None
    for _ in range(20):
        page = ties.list(sort=sort, limit=4, cursor=cursor, fields=["title"])
        assert all("qty" not in item for item in page.items)
        seen += ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected


def test_a_page_crossing_into_the_nulls_costs_one_more_statement_only(
    ties: Forms, count_statements: Any
) -> None:
    order = expected_order([(QTYS, False)])
    nulls = sum(1 for q in QTYS if q is None)
    assert nulls > 0
    # A first page that ends on the last non-NULL value, then one that crosses.
    first = ties.list(sort=[Sort("qty")], limit=len(order) - nulls - 1)
    with count_statements(ties.conn) as log:
        page = ties.list(sort=[Sort("qty")], limit=nulls + 1, cursor=first.next_cursor)
    assert ids(page) == order[len(order) - nulls - 1 :]
    assert log.count == 2
    inside = ties.list(sort=[Sort("qty")], limit=1).next_cursor
    with count_statements(ties.conn) as log:
        ties.list(sort=[Sort("qty")], limit=2, cursor=inside)
    assert log.count == 1  # a page that stays among the values: one statement
