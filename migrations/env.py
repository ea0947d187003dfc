"""Alembic environment: runs on the connection handed in by the caller."""

from __future__ import annotations

from alembic import context

from engine.system import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the CLI always passes a connection
    raise RuntimeError("run migrations through `formflow db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    # Dynamic form tables live in the same database; leave them alone.
    include_name=lambda name, type_, _parent: type_ != "table" or str(name).startswith("ff_"),
)
with context.begin_transaction():
    context.run_migrations()
