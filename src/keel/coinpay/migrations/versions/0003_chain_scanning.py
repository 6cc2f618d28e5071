"""real chains read block by block: scan cursors, recent block hashes, transfers to our addresses

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
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
        "coinpay_chain_cursors",
        sa.Column("chain", sa.String(length=16), nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=128), nullable=False),
        sa.Column("updated_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_coinpay_chain_cursors")),
    )
    op.create_table(
        "coinpay_chain_blocks",
        sa.Column("chain", sa.String(length=16), nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=128), nullable=False),
        sa.Column("parent_hash", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("chain", "height", name=op.f("pk_coinpay_chain_blocks")),
    )
    op.create_table(
        "coinpay_chain_transfers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain", sa.String(length=16), nullable=False),
        sa.Column("coin", sa.String(length=16), nullable=False),
        sa.Column("tx_hash", sa.String(length=128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("amount", keel.core.types.BigUInt(), nullable=False),
        sa.Column("memo", sa.String(length=64), nullable=True),
        sa.Column("block_height", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=128), nullable=True),
        sa.Column("orphaned", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_chain_transfers")),
        sa.UniqueConstraint(
            "chain", "tx_hash", "position", name="uq_coinpay_chain_transfers_output"
        ),
    )
    with op.batch_alter_table("coinpay_chain_transfers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_coinpay_chain_transfers_address", ["address", "coin"], unique=False
        )
        batch_op.create_index(
            "ix_coinpay_chain_transfers_block", ["chain", "block_height"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("coinpay_chain_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_coinpay_chain_transfers_block")
        batch_op.drop_index("ix_coinpay_chain_transfers_address")
    op.drop_table("coinpay_chain_transfers")
    op.drop_table("coinpay_chain_blocks")
    op.drop_table("coinpay_chain_cursors")
