"""Fixtures of the records tests: the test forms published on a real database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from records_support import Forms, open_forms, publish_forms


@pytest.fixture
def forms(engine: sa.Engine) -> Iterator[Forms]:
    """The test forms on a connection of this test's own database.

    A database of its own (not the shared ``connection``) so that ids and
    sequences start at 1 on PostgreSQL too, and records can be asserted
    exactly. The transaction is rolled back at the end.
    """
    with engine.connect() as conn, conn.begin():
        publish_forms(conn)
        yield open_forms(conn)
        conn.rollback()


@pytest.fixture
def committed_engine(engine: sa.Engine) -> sa.Engine:
    """``engine`` with the test forms published and committed."""
    with engine.begin() as conn:
        publish_forms(conn)
    return engine
