"""torrent trackers and the swarm scrape schedule

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import keel.core.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "torrent_trackers",
        sa.Column("info_hash", sa.LargeBinary(length=20), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["info_hash"],
            ["torrents.info_hash"],
            name=op.f("fk_torrent_trackers_info_hash_torrents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("info_hash", "url", name=op.f("pk_torrent_trackers")),
    )
    op.create_table(
        "torrent_scrapes",
        sa.Column("info_hash", sa.LargeBinary(length=20), nullable=False),
        sa.Column("scraped_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["info_hash"],
            ["torrents.info_hash"],
            name=op.f("fk_torrent_scrapes_info_hash_torrents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("info_hash", name=op.f("pk_torrent_scrapes")),
    )
    with op.batch_alter_table("torrent_scrapes", schema=None) as batch_op:
        batch_op.create_index("ix_torrent_scrapes_scraped_at", ["scraped_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("torrent_scrapes", schema=None) as batch_op:
        batch_op.drop_index("ix_torrent_scrapes_scraped_at")
    op.drop_table("torrent_scrapes")
    op.drop_table("torrent_trackers")
