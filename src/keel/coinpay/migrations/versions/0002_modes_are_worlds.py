"""test and live are separate worlds: mode on payout wallets, watch-only keys, webhook
endpoints and idempotency records; API-key use and revocation; an append-only audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

Rows written before this revision served both modes. Payout wallets and watch-only keys are
copied into each mode, so both keep receiving as before. Webhook endpoints cannot be copied
(their secrets are sealed to the endpoint id), so they stay with the live world: a merchant
adds a test endpoint for test events. Idempotency records take the mode of their payment.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import keel.core.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MODE = sa.String(length=4)


def _add_mode(table: str, default: str) -> None:
    # Added with a server default so old rows get a value, which is then dropped: new rows
    # must always say their mode.
    with op.batch_alter_table(table) as batch_op:
        batch_op.add_column(sa.Column("mode", _MODE, nullable=False, server_default=default))
    with op.batch_alter_table(table) as batch_op:
        batch_op.alter_column("mode", server_default=None, existing_type=_MODE)


def _copy_into_test_world(table: str) -> None:
    bind = op.get_bind()
    t = sa.table(
        table,
        sa.column("id", sa.String),
        sa.column("mode", sa.String),
        *(sa.column(c) for c in _COPIED[table]),
    )
    rows = bind.execute(sa.select(t).where(t.c.mode == "live")).mappings().all()
    for row in rows:
        bind.execute(t.insert().values({**row, "id": str(uuid.uuid4()), "mode": "test"}))


_COPIED = {
    "coinpay_wallets": ("business_id", "coin", "address", "created_at"),
    "coinpay_watch_only_keys": ("business_id", "family", "extended_key", "created_at"),
}

_APPEND_ONLY_SQLITE = (
    "CREATE TRIGGER coinpay_audit_log_no_{op} BEFORE {OP} ON coinpay_audit_log "
    "BEGIN SELECT RAISE(ABORT, 'coinpay_audit_log is append-only'); END"
)
_APPEND_ONLY_PG = [
    "CREATE FUNCTION coinpay_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'coinpay_audit_log is append-only'; END $$",
    "CREATE TRIGGER coinpay_audit_log_no_change BEFORE UPDATE OR DELETE ON coinpay_audit_log "
    "FOR EACH ROW EXECUTE FUNCTION coinpay_audit_log_append_only()",
    "CREATE TRIGGER coinpay_audit_log_no_truncate BEFORE TRUNCATE ON coinpay_audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION coinpay_audit_log_append_only()",
]


def upgrade() -> None:
    # Payout wallets and watch-only keys: one row per mode.
    _add_mode("coinpay_wallets", "live")
    with op.batch_alter_table("coinpay_wallets") as batch_op:
        batch_op.drop_constraint("uq_coinpay_wallets_business_coin", type_="unique")
        batch_op.create_unique_constraint(
            "uq_coinpay_wallets_business_mode_coin", ["business_id", "mode", "coin"]
        )
    _copy_into_test_world("coinpay_wallets")

    _add_mode("coinpay_watch_only_keys", "live")
    with op.batch_alter_table("coinpay_watch_only_keys") as batch_op:
        batch_op.drop_constraint("uq_coinpay_watch_only_keys_business_family", type_="unique")
        batch_op.create_unique_constraint(
            "uq_coinpay_watch_only_keys_business_mode_family", ["business_id", "mode", "family"]
        )
    _copy_into_test_world("coinpay_watch_only_keys")

    # Webhook endpoints stay live (module docstring).
    _add_mode("coinpay_webhook_endpoints", "live")
    with op.batch_alter_table("coinpay_webhook_endpoints") as batch_op:
        batch_op.drop_index("ix_coinpay_webhook_endpoints_business_id")
        batch_op.create_index(
            "ix_coinpay_webhook_endpoints_business_mode", ["business_id", "mode"], unique=False
        )

    # Idempotency records: keyed by (business, mode, key); the mode is their payment's.
    _add_mode("coinpay_idempotency_keys", "live")
    op.execute(
        "UPDATE coinpay_idempotency_keys SET mode = (SELECT p.mode FROM coinpay_payments p "
        "WHERE p.id = coinpay_idempotency_keys.payment_id) "
        "WHERE EXISTS (SELECT 1 FROM coinpay_payments p "
        "WHERE p.id = coinpay_idempotency_keys.payment_id)"
    )
    with op.batch_alter_table("coinpay_idempotency_keys") as batch_op:
        batch_op.drop_constraint("pk_coinpay_idempotency_keys", type_="primary")
        batch_op.create_primary_key("pk_coinpay_idempotency_keys", ["business_id", "mode", "key"])

    with op.batch_alter_table("coinpay_api_keys") as batch_op:
        batch_op.add_column(
            sa.Column("last_used_at", keel.core.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("revoked_by", sa.String(length=64), nullable=True))

    op.create_table(
        "coinpay_audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("business_id", sa.String(length=36), nullable=False),
        sa.Column("mode", _MODE, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", keel.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["coinpay_businesses.id"],
            name=op.f("fk_coinpay_audit_log_business_id_coinpay_businesses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coinpay_audit_log")),
    )
    op.create_index(
        "ix_coinpay_audit_log_business_mode",
        "coinpay_audit_log",
        ["business_id", "mode", "id"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in _APPEND_ONLY_PG:
            op.execute(statement)
    else:
        for kind in ("update", "delete"):
            op.execute(_APPEND_ONLY_SQLITE.format(op=kind, OP=kind.upper()))


def downgrade() -> None:  # pragma: no cover - forward-only in practice; kept for symmetry
    raise NotImplementedError("0002 splits rows per mode; there is no lossless way back")
