"""pairux's tables. Only this product reads or writes them.

Rooms and participants are durable: a token outlives a process restart, and the room's roles
are what the host last reported. Who is connected right now lives in the signaling hub's
memory (``keel.pairux.signaling.hub``), never here.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, MetaData, String, Table

from keel.core.ratelimit import rate_limit_table
from keel.core.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "pairux_accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    # Keyed hash (HMAC-SHA256 under a subkey of the server secret) of the pxa_ key.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

rooms = Table(
    "pairux_rooms",
    metadata,
    Column("id", String(32), primary_key=True),
    # NULL once the room ended: a code is unique among live rooms only (NULLs are distinct).
    Column("code", String(6), nullable=True, unique=True),
    Column("status", String(8), nullable=False),  # live | ended
    Column("topology", String(4), nullable=False),  # p2p | sfu (sticky once sfu)
    Column("host_id", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
)

participants = Table(
    "pairux_participants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "room_id",
        String(32),
        ForeignKey("pairux_rooms.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("account_id", String(32), ForeignKey("pairux_accounts.id"), nullable=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(10), nullable=False),  # host | controller | viewer
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("joined_at", UTCDateTime, nullable=False),
    Column("left_at", UTCDateTime, nullable=True),
    Index("ix_pairux_participants_room", "room_id", "left_at"),
)

rate_limits = rate_limit_table(metadata, "pairux_rate_limits")
