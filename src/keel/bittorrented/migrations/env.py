"""Alembic environment for bittorrented: run by keel.core.migrations with a live connection."""

from keel.bittorrented.models import metadata
from keel.core.migrations import run_env

run_env(metadata, "bittorrented_alembic_version")
