"""XRP: one receiving account per business and mode, a destination tag per payment

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import keel.core.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNTAGGED = sa.text("destination_tag IS NULL")


def upgrade() -> None:
    op.create_table(
        "coinpay_receiving_accounts",
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("mode", sa.String(length=4), nullable=False),
        sa.Column("chain", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("family_key", sa.String(length=80), nullable=False),
        sa.Column("derivation_index", sa.Integer(), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", keel.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("activation_tx_hash", sa.String(length=128), nullable=True),
        sa.Column("activation_raw_tx", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["coinpay_businesses.id"],
            name=op.f("fk_coinpay_receiving_accounts_business_id_coinpay_businesses"),
        ),
        sa.PrimaryKeyConstraint(
            "business_id", "mode", "chain", name=op.f("pk_coinpay_receiving_accounts")
        ),
        sa.UniqueConstraint("address", name=op.f("uq_coinpay_receiving_accounts_address")),
    )
    with op.batch_alter_table("coinpay_payments") as batch_op:
        batch_op.add_column(sa.Column("destination_tag", sa.BigInteger(), nullable=True))
        batch_op.drop_constraint("uq_coinpay_payments_payment_address", type_="unique")
        batch_op.create_index(
            "uq_coinpay_payments_address_tag", ["payment_address", "destination_tag"], unique=True
        )
        batch_op.create_index(
            "uq_coinpay_payments_address_untagged",
            ["payment_address"],
            unique=True,
            sqlite_where=_UNTAGGED,
            postgresql_where=_UNTAGGED,
        )
    with op.batch_alter_table("coinpay_simulated_transfers") as batch_op:
        batch_op.add_column(sa.Column("memo", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # Fails, as it must, while two payments share an address (XRP payments exist).
    with op.batch_alter_table("coinpay_simulated_transfers") as batch_op:
        batch_op.drop_column("memo")
    with op.batch_alter_table("coinpay_payments") as batch_op:
        batch_op.drop_index("uq_coinpay_payments_address_untagged")
        batch_op.drop_index("uq_coinpay_payments_address_tag")
        batch_op.create_unique_constraint(
            "uq_coinpay_payments_payment_address", ["payment_address"]
        )
        batch_op.drop_column("destination_tag")
    op.drop_table("coinpay_receiving_accounts")
