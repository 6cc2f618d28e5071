"""Alembic environment for pairux: run by keel.core.migrations with a live connection."""

from keel.core.migrations import run_env
from keel.pairux.models import metadata

run_env(metadata, "pairux_alembic_version")
