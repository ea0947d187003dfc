"""Column shapes, how they may change, and the exact decimal / UTC types."""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal

import pytest
import sqlalchemy as sa

from engine.forms.columns import ColumnSpec, ExactDecimal, UTCDateTime, change_kind

S10, S50 = ColumnSpec("string", length=10), ColumnSpec("string", length=50)
TEXT = ColumnSpec("text")
N10_2 = ColumnSpec("numeric", precision=10, scale=2)
N12_2 = ColumnSpec("numeric", precision=12, scale=2)
N12_3 = ColumnSpec("numeric", precision=12, scale=3)
INT, BOOL, DATE, DATETIME, JSON = (
    ColumnSpec(k) for k in ("integer", "boolean", "date", "datetime", "json")
)
FK_A = ColumnSpec("fk", references="form_a.id")
FK_B = ColumnSpec("fk", references="form_b.id")


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        (S10, ColumnSpec("string", length=10), "same"),
        (N10_2, ColumnSpec("numeric", precision=10, scale=2), "same"),
        (FK_A, ColumnSpec("fk", references="form_a.id"), "same"),
        (JSON, JSON, "same"),
        (S10, S50, "widen"),
        (S50, S10, "narrow"),
        (S10, TEXT, "widen"),
        (TEXT, S10, "narrow"),
        (N10_2, N12_2, "widen"),
        (N12_2, N10_2, "narrow"),
        (N12_2, N12_3, "incompatible"),  # a change of scale would rescale values
        (N12_3, N12_2, "incompatible"),
        (INT, N12_2, "incompatible"),
        (N12_2, INT, "incompatible"),
        (DATE, DATETIME, "incompatible"),
        (DATETIME, DATE, "incompatible"),
        (S10, INT, "incompatible"),
        (INT, S10, "incompatible"),
        (BOOL, INT, "incompatible"),
        (S50, JSON, "incompatible"),
        (JSON, TEXT, "incompatible"),
        (FK_A, FK_B, "incompatible"),  # a link to another form
        (FK_A, INT, "incompatible"),
        (INT, FK_A, "incompatible"),
        (TEXT, DATE, "incompatible"),
    ],
)
def test_change_kind(old: ColumnSpec, new: ColumnSpec, kind: str) -> None:
    assert change_kind(old, new) == kind


def test_spec_round_trips_through_json_data() -> None:
    for spec in (S10, TEXT, N12_3, ColumnSpec("numeric", precision=5, scale=0), FK_A, DATETIME):
        assert ColumnSpec.from_dict(spec.as_dict()) == spec
    assert N12_3.as_dict() == {"kind": "numeric", "precision": 12, "scale": 3}
    assert ColumnSpec("numeric", precision=5, scale=0).as_dict() == {
        "kind": "numeric",
        "precision": 5,
        "scale": 0,
    }


def test_describe() -> None:
    assert S10.describe() == "text(10)"
    assert N12_3.describe() == "decimal(12,3)"
    assert FK_A.describe() == "link(form_a.id)"
    assert TEXT.describe() == "text"
    assert DATE.describe() == "date"


# --- on the database ---------------------------------------------------------

EXACT_VALUES = [
    Decimal("0.00"),
    Decimal("0.01"),
    Decimal("-0.01"),
    Decimal("0.10"),
    Decimal("0.30"),  # 0.1 + 0.2 in binary floats is not 0.3
    Decimal("12.34"),
    Decimal("1234567890123456.78"),
    Decimal("9999999999999999.99"),
    Decimal("-9999999999999999.99"),
    Decimal("9007199254740993.00"),  # 2**53 + 1: not representable as a double
]


@pytest.fixture
def money_table(connection: sa.Connection) -> sa.Table:
    table = sa.Table(
        "t_money",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("amount", ExactDecimal(18, 2)),
        sa.Column("rate", ExactDecimal(18, 18)),
        sa.Column("units", ExactDecimal(18, 0)),
    )
    table.create(connection)
    return table


def test_exact_decimal_round_trip(connection: sa.Connection, money_table: sa.Table) -> None:
    connection.execute(
        sa.insert(money_table), [{"id": i, "amount": v} for i, v in enumerate(EXACT_VALUES)]
    )
    rows = (
        connection.execute(sa.select(money_table.c.amount).order_by(money_table.c.id))
        .scalars()
        .all()
    )
    assert rows == EXACT_VALUES
    # Equal *and* the same representation: "0.30", not "0.3" or "0.299999...".
    assert [str(v) for v in rows] == [str(v) for v in EXACT_VALUES]


def test_exact_decimal_extreme_scales(connection: sa.Connection, money_table: sa.Table) -> None:
    connection.execute(
        sa.insert(money_table),
        [
            {
                "id": 1,
                "rate": Decimal("0.999999999999999999"),
                "units": Decimal("999999999999999999"),
            },
            {"id": 2, "rate": Decimal("-0.000000000000000001"), "units": Decimal("-1")},
        ],
    )
    rows = connection.execute(
        sa.select(money_table.c.rate, money_table.c.units).order_by(money_table.c.id)
    ).all()
    assert [tuple(map(str, r)) for r in rows] == [
        ("0.999999999999999999", "999999999999999999"),
        ("-1E-18", "-1"),
    ]
    assert rows[1].rate == Decimal("-0.000000000000000001")


def test_exact_decimal_sorts_compares_and_sums_in_sql(
    connection: sa.Connection, money_table: sa.Table
) -> None:
    connection.execute(
        sa.insert(money_table), [{"id": i, "amount": v} for i, v in enumerate(EXACT_VALUES)]
    )
    c = money_table.c.amount
    ordered = connection.execute(sa.select(c).order_by(c)).scalars().all()
    assert ordered == sorted(EXACT_VALUES)
    above = (
        connection.execute(sa.select(c).where(c > Decimal("9999999999999999.98"))).scalars().all()
    )
    assert above == [Decimal("9999999999999999.99")]
    between = connection.execute(
        sa.select(sa.func.count()).where(c >= Decimal("-0.01"), c <= Decimal("0.30"))
    ).scalar_one()
    assert between == 5
    small = connection.execute(
        sa.select(sa.func.sum(c)).where(c.between(Decimal("-1"), Decimal("100")))
    ).scalar_one()
    assert small == Decimal("12.74")


def test_exact_decimal_storage(
    connection: sa.Connection, money_table: sa.Table, backend: str
) -> None:
    connection.execute(sa.insert(money_table).values(id=1, amount=Decimal("9999999999999999.99")))
    raw = connection.exec_driver_sql("SELECT amount FROM t_money").scalar_one()
    if backend == "sqlite":
        # A scaled integer: exact, and never a binary float.
        assert raw == 999999999999999999
        assert type(raw) is int
    else:
        assert raw == Decimal("9999999999999999.99")
        column = next(
            c for c in sa.inspect(connection).get_columns("t_money") if c["name"] == "amount"
        )
        assert (column["type"].precision, column["type"].scale) == (18, 2)


def test_exact_decimal_quantizes_to_its_scale(
    connection: sa.Connection, money_table: sa.Table
) -> None:
    connection.execute(sa.insert(money_table).values(id=1, amount=7, units=Decimal("3.0")))
    row = connection.execute(sa.select(money_table.c.amount, money_table.c.units)).one()
    assert (str(row.amount), str(row.units)) == ("7.00", "3")


def test_exact_decimal_null(connection: sa.Connection, money_table: sa.Table) -> None:
    connection.execute(sa.insert(money_table).values(id=1, amount=None))
    assert connection.execute(sa.select(money_table.c.amount)).scalar_one() is None


def test_utc_datetime(connection: sa.Connection) -> None:
    table = sa.Table(
        "t_when",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime),
    )
    table.create(connection)
    shanghai = dt.timezone(dt.timedelta(hours=8))
    connection.execute(
        sa.insert(table),
        [
            {"id": 1, "at": dt.datetime(2024, 5, 31, 9, 30, tzinfo=shanghai)},
            {"id": 2, "at": dt.datetime(2024, 5, 31, 1, 0, 0, 123456, tzinfo=dt.UTC)},
        ],
    )
    rows = connection.execute(sa.select(table.c.at).order_by(table.c.id)).scalars().all()
    assert rows == [
        dt.datetime(2024, 5, 31, 1, 30, tzinfo=dt.UTC),
        dt.datetime(2024, 5, 31, 1, 0, 0, 123456, tzinfo=dt.UTC),
    ]
    assert all(r.utcoffset() == dt.timedelta(0) for r in rows)
    # Compared in UTC in SQL, whatever offset the parameter has.
    later = (
        connection.execute(
            sa.select(table.c.id).where(
                table.c.at > dt.datetime(2024, 5, 31, 9, 15, tzinfo=shanghai)
            )
        )
        .scalars()
        .all()
    )
    assert later == [1]


def test_utc_datetime_refuses_naive_values() -> None:
    with pytest.raises(ValueError, match="naive datetimes are ambiguous"):
        UTCDateTime().process_bind_param(
            dt.datetime(2024, 5, 31), sa.create_engine("sqlite://").dialect
        )


def test_sqlite_decimal_is_never_a_float() -> None:
    # The same bind on SQLite: an int, scaled; a float input is made exact first.
    dialect = sa.create_engine("sqlite://").dialect
    t = ExactDecimal(18, 2)
    assert t.process_bind_param(Decimal("0.30"), dialect) == 30
    assert t.process_bind_param("12.345", dialect) == 1234  # banker's rounding to scale
    assert t.process_result_value(30, dialect) == Decimal("0.30")
    assert isinstance(decimal.Decimal(1), Decimal)
