"""coinpay's tables. Only this product reads or writes them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from keel.core.jobs import jobs_table
from keel.core.ratelimit import rate_limit_table
from keel.core.types import BigUInt, ExactDecimal, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_id = BigInteger().with_variant(Integer, "sqlite")

master_seed = Table(
    "coinpay_master_seed",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mnemonic_enc", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

businesses = Table(
    "coinpay_businesses",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The commission plan (keel.coinpay.commission.PLANS).
    Column("plan", String(8), nullable=False, server_default="free"),
)

# Test and live are separate worlds (ADR 0009): every configuration row belongs to one mode.
wallets = Table(
    "coinpay_wallets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("business_id", ForeignKey("coinpay_businesses.id"), nullable=False),
    Column("mode", String(4), nullable=False),
    Column("coin", String(16), nullable=False),
    Column("address", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("business_id", "mode", "coin", name="uq_coinpay_wallets_business_mode_coin"),
)

watch_only_keys = Table(
    "coinpay_watch_only_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("business_id", ForeignKey("coinpay_businesses.id"), nullable=False),
    Column("mode", String(4), nullable=False),
    Column("family", String(8), nullable=False),
    Column("extended_key", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint(
        "business_id", "mode", "family", name="uq_coinpay_watch_only_keys_business_mode_family"
    ),
)

api_keys = Table(
    "coinpay_api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("business_id", ForeignKey("coinpay_businesses.id"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(24), nullable=False),
    Column("mode", String(4), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_by", String(64), nullable=True),
)

hd_families = Table(
    "coinpay_hd_families",
    metadata,
    Column("family_key", String(80), primary_key=True),
    Column("next_index", Integer, nullable=False),
    Column("sequence_name", String(63), nullable=True),
)

payments = Table(
    "coinpay_payments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("business_id", ForeignKey("coinpay_businesses.id"), nullable=False),
    Column("mode", String(4), nullable=False),
    Column("amount", ExactDecimal(20, 8), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("blockchain", String(16), nullable=False),
    Column("crypto_amount", BigUInt, nullable=False),
    Column("rate", ExactDecimal(38, 18), nullable=False),
    Column("rate_source", String(200), nullable=False),
    # Unique, except where the chain tells payments apart by a destination tag (XRP: one account
    # per business and mode, coinpay_receiving_accounts): there (address, tag) is unique.
    Column("payment_address", String(200), nullable=False),
    Column("destination_tag", BigInteger, nullable=True),
    Column("family_key", String(80), nullable=False),
    Column("derivation_index", Integer, nullable=False),
    Column("custody", String(16), nullable=False),
    Column("payout_address", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("paid_partial", Boolean, nullable=False),
    Column("paid_over", Boolean, nullable=False),
    Column("paid_late", Boolean, nullable=False),
    Column("received_amount", BigUInt, nullable=False),
    Column("confirmations", Integer, nullable=False),
    Column("required_confirmations", Integer, nullable=False),
    Column("tolerance_percent", ExactDecimal(6, 3), nullable=False),
    Column("tx_hash", String(128), nullable=True),
    Column("forward_tx_hash", String(128), nullable=True),
    Column("description", String(500), nullable=True),
    Column("metadata", JSON, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("monitor_until", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("forwarded_at", UTCDateTime, nullable=True),
    # The split, written when forwarding starts and before anything is sent (commission.split).
    Column("commission_bps", Integer, nullable=True),
    Column("commission_amount", BigUInt, nullable=True),
    # The sweep carrying the funds out, and this payment's share of its network fee.
    Column("sweep_id", String(36), nullable=True, index=True),
    Column("network_fee", BigUInt, nullable=True),
    # Why a payment in forwarding is still there (a refused or stuck sweep); null otherwise.
    Column("settlement_note", String(300), nullable=True),
    Index("ix_coinpay_payments_business_created", "business_id", "mode", "created_at"),
    Index("ix_coinpay_payments_status_expires", "status", "expires_at"),
    Index("uq_coinpay_payments_address_tag", "payment_address", "destination_tag", unique=True),
    Index(
        "uq_coinpay_payments_address_untagged",
        "payment_address",
        unique=True,
        sqlite_where=text("destination_tag IS NULL"),
        postgresql_where=text("destination_tag IS NULL"),
    ),
)

# The receiving account of a chain whose accounts cost a reserve (XRP): one per business, mode and
# chain, derived once from the custody root; its payments differ by destination tag. A live
# account is activated (funded with the reserve from the platform's fee wallet) before its
# first payment: the signed activation is stored before it is sent, like a sweep.
receiving_accounts = Table(
    "coinpay_receiving_accounts",
    metadata,
    Column("business_id", ForeignKey("coinpay_businesses.id"), primary_key=True),
    Column("mode", String(4), primary_key=True),
    Column("chain", String(16), primary_key=True),
    Column("address", String(200), nullable=False, unique=True),
    Column("family_key", String(80), nullable=False),
    Column("derivation_index", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime, nullable=True),
    Column("activation_tx_hash", String(128), nullable=True),
    Column("activation_raw_tx", Text, nullable=True),
)

payment_events = Table(
    "coinpay_payment_events",
    metadata,
    Column("id", _id, primary_key=True),
    Column("payment_id", ForeignKey("coinpay_payments.id"), nullable=False, index=True),
    Column("type", String(40), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("cause", String(40), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

deposits = Table(
    "coinpay_deposits",
    metadata,
    Column("id", _id, primary_key=True),
    Column("payment_id", ForeignKey("coinpay_payments.id"), nullable=False),
    Column("tx_hash", String(128), nullable=False),
    Column("amount", BigUInt, nullable=False),
    Column("confirmations", Integer, nullable=False),
    Column("reverted", Boolean, nullable=False),
    Column("after_expiry", Boolean, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("payment_id", "tx_hash", name="uq_coinpay_deposits_payment_tx"),
)

# The simulated chain's ledger: what test-mode "customers" sent, read back by the chain watcher.
simulated_transfers = Table(
    "coinpay_simulated_transfers",
    metadata,
    Column("id", _id, primary_key=True),
    Column("chain", String(16), nullable=False),
    Column("address", String(200), nullable=False, index=True),
    Column("tx_hash", String(128), nullable=False, unique=True),
    Column("amount", BigUInt, nullable=False),
    Column("memo", String(64), nullable=True),  # the destination tag paid (XRP)
    Column("confirmations", Integer, nullable=False),
    Column("reverted", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Sweeps (keel.coinpay.payments.sweeping): a signed transaction is stored before it is sent,
# so whatever happens to the worker, what reaches the chain is these bytes, at most once.
sweeps = Table(
    "coinpay_sweeps",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("mode", String(4), nullable=False),
    Column("chain", String(16), nullable=False),
    Column("status", String(12), nullable=False),
    Column("tx_hash", String(128), nullable=False),
    Column("raw_tx", Text, nullable=False),
    Column("payments", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("broadcast_at", UTCDateTime, nullable=True),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Index("ix_coinpay_sweeps_open", "mode", "chain", "status"),
)

# Real chains, read block by block (keel.coinpay.chains.scanner). Per chain: how far the
# scanner got, the hashes of the recent blocks it scanned (to notice a reorg), and every
# transfer to one of our payment addresses, with the block it is in now (none: in the mempool,
# or dropped by a reorg: ``orphaned``).
chain_cursors = Table(
    "coinpay_chain_cursors",
    metadata,
    Column("chain", String(16), primary_key=True),
    Column("height", BigInteger, nullable=False),
    Column("hash", String(128), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

chain_blocks = Table(
    "coinpay_chain_blocks",
    metadata,
    Column("chain", String(16), primary_key=True),
    Column("height", BigInteger, primary_key=True),
    Column("hash", String(128), nullable=False),
    Column("parent_hash", String(128), nullable=False),
)

chain_transfers = Table(
    "coinpay_chain_transfers",
    metadata,
    Column("id", _id, primary_key=True),
    Column("chain", String(16), nullable=False),
    Column("coin", String(16), nullable=False),
    Column("tx_hash", String(128), nullable=False),
    Column("position", Integer, nullable=False),
    Column("address", String(200), nullable=False),
    Column("amount", BigUInt, nullable=False),
    Column("memo", String(64), nullable=True),
    Column("block_height", BigInteger, nullable=True),
    Column("block_hash", String(128), nullable=True),
    Column("orphaned", Boolean, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("chain", "tx_hash", "position", name="uq_coinpay_chain_transfers_output"),
    Index("ix_coinpay_chain_transfers_address", "address", "coin"),
    Index("ix_coinpay_chain_transfers_block", "chain", "block_height"),
)

webhook_endpoints = Table(
    "coinpay_webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("business_id", ForeignKey("coinpay_businesses.id"), nullable=False),
    Column("mode", String(4), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("events", JSON, nullable=True),
    Column("secret_enc", LargeBinary, nullable=False),
    Column("previous_secret_enc", LargeBinary, nullable=True),
    Column("previous_valid_until", UTCDateTime, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_coinpay_webhook_endpoints_business_mode", "business_id", "mode"),
)

webhook_events = Table(
    "coinpay_webhook_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("business_id", ForeignKey("coinpay_businesses.id"), nullable=False),
    Column("payment_id", String(36), nullable=True, index=True),
    Column("type", String(40), nullable=False),
    Column("mode", String(4), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

webhook_deliveries = Table(
    "coinpay_webhook_deliveries",
    metadata,
    Column("id", _id, primary_key=True),
    Column("event_id", ForeignKey("coinpay_webhook_events.id"), nullable=False, index=True),
    Column("endpoint_id", ForeignKey("coinpay_webhook_endpoints.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("response_excerpt", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# Keyed by (business, mode, key): a test key never replays a live request. ``request_hash``
# is the fingerprint of the first request; the same key with another body is refused.
idempotency_keys = Table(
    "coinpay_idempotency_keys",
    metadata,
    Column("business_id", String(36), primary_key=True),
    Column("mode", String(4), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("payment_id", String(36), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Who changed which configuration, append-only: triggers refuse UPDATE and DELETE (migration
# 0002). ``actor`` is an API key id or "cli"; ``detail`` never holds a secret.
audit_log = Table(
    "coinpay_audit_log",
    metadata,
    Column("id", _id, primary_key=True),
    Column("business_id", ForeignKey("coinpay_businesses.id"), nullable=False),
    Column("mode", String(4), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(40), nullable=False),
    Column("target", String(64), nullable=True),
    Column("detail", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_coinpay_audit_log_business_mode", "business_id", "mode", "id"),
)

rate_limits = rate_limit_table(metadata, "coinpay_rate_limits")

jobs = jobs_table(metadata, "coinpay_jobs")
