"""Alembic environment for coach: run by keel.core.migrations with a live connection."""

from alembic import context

from keel.coach.models import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline SQL generation is not supported
    raise RuntimeError("Run migrations through keel.core.migrations.upgrade")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=config.attributes.get("version_table", "coach_alembic_version"),
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
