"""The statements of every process command, built once.

Building a statement (and its cache key) costs SQLAlchemy more than SQLite
takes to run it, and a command runs about ten: :mod:`engine.processes.instances`
executes these with parameters instead.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.processes.tables import (
    CANCELLED,
    OPEN,
    candidate_table,
    history_table,
    instance_table,
    work_item_table,
)

_W, _I, _C = work_item_table, instance_table, candidate_table
ITEM = sa.select(_W).where(_W.c.id == sa.bindparam("item_id"))
_BUT_STATE = [c for c in _I.c if c.key != "state"]
_THE_INSTANCE = _I.c.id == sa.bindparam("instance_id")
_ITEMS_INSTANCE = _I.c.id == (
    sa.select(_W.c.instance_id).where(_W.c.id == sa.bindparam("item_id")).scalar_subquery()
)
LOCK = sa.select(_I).where(_THE_INSTANCE).with_for_update()
LOCK_NO_STATE = sa.select(*_BUT_STATE).where(_THE_INSTANCE).with_for_update()
LOCK_OF_ITEM = sa.select(_I).where(_ITEMS_INSTANCE).with_for_update()
LOCK_OF_ITEM_NO_STATE = sa.select(*_BUT_STATE).where(_ITEMS_INSTANCE).with_for_update()
ITEM_STATUS = sa.select(_W.c.status).where(_W.c.id == sa.bindparam("item_id"))
IS_CANDIDATE = (
    sa.select(_C.c.work_item_id)
    .where(
        _C.c.work_item_id == sa.bindparam("item_id"),
        sa.or_(
            sa.and_(_C.c.kind == "user", _C.c.ref == sa.bindparam("user")),
            sa.and_(_C.c.kind == "role", _C.c.ref.in_(sa.bindparam("roles", expanding=True))),
            sa.and_(_C.c.kind == "dept", _C.c.ref.in_(sa.bindparam("depts", expanding=True))),
        ),
    )
    .limit(1)
)
CLOSE_ITEM = (
    sa.update(_W)
    .where(_W.c.id == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status"),
        completed_at=sa.bindparam("b_at"),
        completed_by=sa.bindparam("b_by"),
        outcome=sa.bindparam("b_outcome"),
        assignee_id=sa.bindparam("b_assignee"),
    )
)
ASSIGN = (
    sa.update(_W)
    .where(_W.c.id == sa.bindparam("b_id"))
    .values(assignee_id=sa.bindparam("b_assignee"))
)
SAVE = (
    sa.update(_I)
    .where(_I.c.id == sa.bindparam("b_id"), _I.c.row_version == sa.bindparam("b_version"))
    .values(
        state=sa.bindparam("b_state", type_=_I.c.state.type),
        row_version=sa.bindparam("b_version") + 1,
        status=sa.bindparam("b_status"),
        ended_at=sa.bindparam("b_ended"),
    )
)
OPEN_ITEMS = sa.select(_W.c.id, _W.c.task_id).where(
    _W.c.instance_id == sa.bindparam("instance_id"), _W.c.status == OPEN
)
CANCEL_ITEMS = (
    sa.update(_W).where(_W.c.id.in_(sa.bindparam("ids", expanding=True))).values(status=CANCELLED)
)
NEW_ITEM = sa.insert(_W).returning(_W.c.id)
NEW_CANDIDATES = sa.insert(_C)
HISTORY = sa.insert(history_table)
