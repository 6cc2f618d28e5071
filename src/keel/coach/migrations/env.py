"""Alembic environment for coach: run by keel.core.migrations with a live connection."""

from keel.coach.models import metadata
from keel.core.migrations import run_env

run_env(metadata, "coach_alembic_version")
