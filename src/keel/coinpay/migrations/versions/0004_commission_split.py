"""the commission split: a plan per business, the split stored on the payment

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import keel.core.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("coinpay_businesses") as batch_op:
        batch_op.add_column(
            sa.Column("plan", sa.String(length=8), nullable=False, server_default="free")
        )
    with op.batch_alter_table("coinpay_payments") as batch_op:
        batch_op.add_column(sa.Column("commission_bps", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("commission_amount", keel.core.types.BigUInt(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("coinpay_payments") as batch_op:
        batch_op.drop_column("commission_amount")
        batch_op.drop_column("commission_bps")
    with op.batch_alter_table("coinpay_businesses") as batch_op:
        batch_op.drop_column("plan")
