"""Alembic environment for roadmaps: run by keel.core.migrations with a live connection."""

from keel.core.migrations import run_env
from keel.roadmaps.models import metadata

run_env(metadata, "roadmaps_alembic_version")
