"""Alembic environment: runs on the connection given by ``lifecycle.persistence.engine.migrate``."""

from alembic import context

from lifecycle.persistence.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by a bare `alembic` invocation
    raise RuntimeError(
        "run migrations through `tenantctl db upgrade` (lifecycle.persistence.engine.migrate)"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
