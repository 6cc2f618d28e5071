"""settlement note: why a payment in forwarding has not been forwarded yet

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("coinpay_payments") as batch_op:
        batch_op.add_column(sa.Column("settlement_note", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("coinpay_payments") as batch_op:
        batch_op.drop_column("settlement_note")
