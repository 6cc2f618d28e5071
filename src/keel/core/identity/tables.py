"""The identity tables, defined on a product's own metadata (each product owns its data).

A product calls :func:`identity_tables` once in its ``models.py`` with its table prefix and
creates the tables in its own migrations. The schema is the same for every product, so one
service (``keel.core.identity``) serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, ForeignKey, Index, MetaData, String, Table

from keel.core.types import UTCDateTime


@dataclass(frozen=True)
class IdentityTables:
    users: Table
    sessions: Table


def identity_tables(metadata: MetaData, prefix: str) -> IdentityTables:
    """``<prefix>_users`` and ``<prefix>_sessions`` on ``metadata``."""
    users = Table(
        f"{prefix}_users",
        metadata,
        Column("id", String(32), primary_key=True),
        # Normalised (NFKC, trimmed, lower-cased); unique so two sign-ups cannot share it.
        Column("email", String(320), nullable=False, unique=True),
        Column("display_name", String(80), nullable=False),
        # argon2id PHC string; its tail also fingerprints reset tokens (one use each).
        Column("password_hash", String(200), nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("password_changed_at", UTCDateTime, nullable=False),
        Column("disabled_at", UTCDateTime, nullable=True),
    )
    sessions = Table(
        f"{prefix}_sessions",
        metadata,
        # SHA-256 of the cookie's token: a leaked table holds no usable session.
        Column("token_hash", String(64), primary_key=True),
        Column("user_id", String(32), ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("last_seen_at", UTCDateTime, nullable=False),
        Column("expires_at", UTCDateTime, nullable=False),
        Column("user_agent", String(200), nullable=False, default=""),
        Index(f"ix_{prefix}_sessions_user_id", "user_id"),
    )
    return IdentityTables(users=users, sessions=sessions)
