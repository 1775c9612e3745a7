"""Alembic environment: runs on the connection given by ``lifecycle.db.migrate``."""

from alembic import context

from lifecycle.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by a bare `alembic` invocation
    raise RuntimeError("run migrations through `tenantctl db upgrade` (lifecycle.db.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
