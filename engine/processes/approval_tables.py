"""System tables of the approval operations (revision 0006), beside the projection.

They only add to ``ff_work_item``; nothing here changes how a task is
projected from SpiffWorkflow's state.

* ``ff_work_item_delegation``: a delegated task's owner and delegate and
  whether the delegate has resolved it yet (Flowable/Camunda delegation).
* ``ff_work_item_signer``: signers added before or after a task's assignee
  (加签); each gets a work item of its own when its turn comes.
* ``ff_process_cc``: who was sent a copy (抄送) of an instance or one of its
  tasks — a read-only inbox, never a task.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.forms.columns import BigIntId, UTCDateTime
from engine.system import metadata

delegation_table = sa.Table(
    "ff_work_item_delegation",
    metadata,
    sa.Column("work_item_id", sa.BigInteger, sa.ForeignKey("ff_work_item.id"), primary_key=True),
    sa.Column("owner_id", sa.BigInteger, nullable=False),  # decides in the end
    sa.Column("delegate_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | resolved
    sa.Column("delegated_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
)

signer_table = sa.Table(
    "ff_work_item_signer",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    # The assignee's work item the signer was added to.
    sa.Column("work_item_id", sa.BigInteger, sa.ForeignKey("ff_work_item.id"), nullable=False),
    sa.Column("position", sa.String(8), nullable=False),  # before | after
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("added_by", sa.BigInteger, nullable=False),
    sa.Column("added_at", UTCDateTime, nullable=False),
    # The signer's own work item, once it is their turn.
    sa.Column("signer_item_id", sa.BigInteger, sa.ForeignKey("ff_work_item.id"), nullable=True),
    sa.Index("ix_ff_work_item_signer_item", "work_item_id", "id"),
    sa.Index("ix_ff_work_item_signer_own", "signer_item_id"),
)

cc_table = sa.Table(
    "ff_process_cc",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column(
        "instance_id", sa.BigInteger, sa.ForeignKey("ff_process_instance.id"), nullable=False
    ),
    sa.Column("work_item_id", sa.BigInteger, sa.ForeignKey("ff_work_item.id"), nullable=True),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("sent_by", sa.BigInteger, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Index("ix_ff_process_cc_user", "user_id", "id"),
    sa.Index("ix_ff_process_cc_instance", "instance_id", "user_id"),
)
