"""Alembic environment for coinpay: run by keel.core.migrations with a live connection."""

from keel.coinpay.models import metadata
from keel.core.migrations import run_env

run_env(metadata, "coinpay_alembic_version")
