"""sweeps: signed transactions stored before they are sent; a payment's sweep and fee share

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import keel.core.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coinpay_sweeps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("mode", sa.String(length=4), nullable=False),
        sa.Column("chain", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("tx_hash", sa.String(length=128), nullable=False),
        sa.Column("raw_tx", sa.Text(), nullable=False),
        sa.Column("payments", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("broadcast_at", keel.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", keel.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_sweeps")),
    )
    with op.batch_alter_table("coinpay_sweeps") as batch_op:
        batch_op.create_index("ix_coinpay_sweeps_open", ["mode", "chain", "status"], unique=False)
    with op.batch_alter_table("coinpay_payments") as batch_op:
        batch_op.add_column(sa.Column("sweep_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("network_fee", keel.core.types.BigUInt(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_coinpay_payments_sweep_id"), ["sweep_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("coinpay_payments") as batch_op:
        batch_op.drop_index(batch_op.f("ix_coinpay_payments_sweep_id"))
        batch_op.drop_column("network_fee")
        batch_op.drop_column("sweep_id")
    with op.batch_alter_table("coinpay_sweeps") as batch_op:
        batch_op.drop_index("ix_coinpay_sweeps_open")
    op.drop_table("coinpay_sweeps")
