"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:32:20.228763
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import keel.core.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "coinpay_businesses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_businesses")),
    )
    op.create_table(
        "coinpay_hd_families",
        sa.Column("family_key", sa.String(length=80), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("sequence_name", sa.String(length=63), nullable=True),
        sa.PrimaryKeyConstraint("family_key", name=op.f("pk_coinpay_hd_families")),
    )
    op.create_table(
        "coinpay_idempotency_keys",
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("business_id", "key", name=op.f("pk_coinpay_idempotency_keys")),
    )
    op.create_table(
        "coinpay_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", keel.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_by", sa.String(length=128), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", keel.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_jobs")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_coinpay_jobs_dedupe_key")),
    )
    with op.batch_alter_table("coinpay_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_coinpay_jobs_claim", ["status", "run_after"], unique=False)

    op.create_table(
        "coinpay_master_seed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mnemonic_enc", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_master_seed")),
    )
    op.create_table(
        "coinpay_rate_limits",
        sa.Column("bucket", sa.String(length=120), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_coinpay_rate_limits")),
    )
    op.create_table(
        "coinpay_simulated_transfers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("tx_hash", sa.String(length=128), nullable=False),
        sa.Column("amount", keel.core.types.BigUInt(), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("reverted", sa.Boolean(), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_simulated_transfers")),
        sa.UniqueConstraint("tx_hash", name=op.f("uq_coinpay_simulated_transfers_tx_hash")),
    )
    with op.batch_alter_table("coinpay_simulated_transfers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coinpay_simulated_transfers_address"), ["address"], unique=False
        )

    op.create_table(
        "coinpay_api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("mode", sa.String(length=4), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", keel.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["coinpay_businesses.id"],
            name=op.f("fk_coinpay_api_keys_business_id_coinpay_businesses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_coinpay_api_keys_key_hash")),
    )
    op.create_table(
        "coinpay_payments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("mode", sa.String(length=4), nullable=False),
        sa.Column("amount", keel.core.types.ExactDecimal(20, 8), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("blockchain", sa.String(length=16), nullable=False),
        sa.Column("crypto_amount", keel.core.types.BigUInt(), nullable=False),
        sa.Column("rate", keel.core.types.ExactDecimal(38, 18), nullable=False),
        sa.Column("rate_source", sa.String(length=200), nullable=False),
        sa.Column("payment_address", sa.String(length=200), nullable=False),
        sa.Column("family_key", sa.String(length=80), nullable=False),
        sa.Column("derivation_index", sa.Integer(), nullable=False),
        sa.Column("custody", sa.String(length=16), nullable=False),
        sa.Column("payout_address", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paid_partial", sa.Boolean(), nullable=False),
        sa.Column("paid_over", sa.Boolean(), nullable=False),
        sa.Column("paid_late", sa.Boolean(), nullable=False),
        sa.Column("received_amount", keel.core.types.BigUInt(), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("required_confirmations", sa.Integer(), nullable=False),
        sa.Column("tolerance_percent", keel.core.types.ExactDecimal(6, 3), nullable=False),
        sa.Column("tx_hash", sa.String(length=128), nullable=True),
        sa.Column("forward_tx_hash", sa.String(length=128), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("expires_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("monitor_until", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", keel.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("forwarded_at", keel.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["coinpay_businesses.id"],
            name=op.f("fk_coinpay_payments_business_id_coinpay_businesses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_payments")),
        sa.UniqueConstraint("payment_address", name=op.f("uq_coinpay_payments_payment_address")),
    )
    with op.batch_alter_table("coinpay_payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_coinpay_payments_business_created",
            ["business_id", "mode", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_coinpay_payments_status_expires", ["status", "expires_at"], unique=False
        )

    op.create_table(
        "coinpay_wallets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("coin", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["coinpay_businesses.id"],
            name=op.f("fk_coinpay_wallets_business_id_coinpay_businesses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_wallets")),
        sa.UniqueConstraint("business_id", "coin", name="uq_coinpay_wallets_business_coin"),
    )
    op.create_table(
        "coinpay_watch_only_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("family", sa.String(length=8), nullable=False),
        sa.Column("extended_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["coinpay_businesses.id"],
            name=op.f("fk_coinpay_watch_only_keys_business_id_coinpay_businesses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_watch_only_keys")),
        sa.UniqueConstraint(
            "business_id", "family", name="uq_coinpay_watch_only_keys_business_family"
        ),
    )
    op.create_table(
        "coinpay_webhook_endpoints",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=True),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("previous_secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column(
            "previous_valid_until", keel.core.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["coinpay_businesses.id"],
            name=op.f("fk_coinpay_webhook_endpoints_business_id_coinpay_businesses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_webhook_endpoints")),
    )
    with op.batch_alter_table("coinpay_webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coinpay_webhook_endpoints_business_id"), ["business_id"], unique=False
        )

    op.create_table(
        "coinpay_webhook_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=4), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["coinpay_businesses.id"],
            name=op.f("fk_coinpay_webhook_events_business_id_coinpay_businesses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_webhook_events")),
    )
    with op.batch_alter_table("coinpay_webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coinpay_webhook_events_payment_id"), ["payment_id"], unique=False
        )

    op.create_table(
        "coinpay_deposits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("tx_hash", sa.String(length=128), nullable=False),
        sa.Column("amount", keel.core.types.BigUInt(), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("reverted", sa.Boolean(), nullable=False),
        sa.Column("after_expiry", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["coinpay_payments.id"],
            name=op.f("fk_coinpay_deposits_payment_id_coinpay_payments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_deposits")),
        sa.UniqueConstraint("payment_id", "tx_hash", name="uq_coinpay_deposits_payment_tx"),
    )
    op.create_table(
        "coinpay_payment_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["coinpay_payments.id"],
            name=op.f("fk_coinpay_payment_events_payment_id_coinpay_payments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_payment_events")),
    )
    with op.batch_alter_table("coinpay_payment_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coinpay_payment_events_payment_id"), ["payment_id"], unique=False
        )

    op.create_table(
        "coinpay_webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["coinpay_webhook_endpoints.id"],
            name=op.f("fk_coinpay_webhook_deliveries_endpoint_id_coinpay_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["coinpay_webhook_events.id"],
            name=op.f("fk_coinpay_webhook_deliveries_event_id_coinpay_webhook_events"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_webhook_deliveries")),
    )
    with op.batch_alter_table("coinpay_webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coinpay_webhook_deliveries_event_id"), ["event_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("coinpay_webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coinpay_webhook_deliveries_event_id"))

    op.drop_table("coinpay_webhook_deliveries")
    with op.batch_alter_table("coinpay_payment_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coinpay_payment_events_payment_id"))

    op.drop_table("coinpay_payment_events")
    op.drop_table("coinpay_deposits")
    with op.batch_alter_table("coinpay_webhook_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coinpay_webhook_events_payment_id"))

    op.drop_table("coinpay_webhook_events")
    with op.batch_alter_table("coinpay_webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coinpay_webhook_endpoints_business_id"))

    op.drop_table("coinpay_webhook_endpoints")
    op.drop_table("coinpay_watch_only_keys")
    op.drop_table("coinpay_wallets")
    with op.batch_alter_table("coinpay_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_coinpay_payments_status_expires")
        batch_op.drop_index("ix_coinpay_payments_business_created")

    op.drop_table("coinpay_payments")
    op.drop_table("coinpay_api_keys")
    with op.batch_alter_table("coinpay_simulated_transfers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coinpay_simulated_transfers_address"))

    op.drop_table("coinpay_simulated_transfers")
    op.drop_table("coinpay_rate_limits")
    op.drop_table("coinpay_master_seed")
    with op.batch_alter_table("coinpay_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_coinpay_jobs_claim")

    op.drop_table("coinpay_jobs")
    op.drop_table("coinpay_idempotency_keys")
    op.drop_table("coinpay_hd_families")
    op.drop_table("coinpay_businesses")
