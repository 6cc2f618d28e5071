"""coach's tables. Only this product reads or writes them.

Users are Telegram users (their numeric id is the key). A conversation is a session of
messages; when it idles past the configured timeout the next message opens a new one, and the
old one's rolling summary carries the context forward.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from keel.core.types import BigUInt, UTCDateTime
from keel.core.usage import usage_table

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _user() -> ForeignKey:
    return ForeignKey("coach_users.id", ondelete="CASCADE")


users = Table(
    "coach_users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # Telegram user id
    Column("chat_id", BigInteger, nullable=False),  # their private chat with the bot
    Column("first_name", String(128), nullable=False, default=""),
    Column("persona", String(32), nullable=False),  # a key of personas.yaml
    # "pro" while paid_until is in the future; the plan sets the daily budgets.
    Column("paid_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
)

conversations = Table(
    "coach_conversations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", BigInteger, _user(), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_active_at", UTCDateTime, nullable=False),
    # A rolling summary of the messages that fell out of the kept window (and, for a new
    # session, of the previous one), sent to the model as context.
    Column("summary", Text, nullable=False, default=""),
    # Messages up to this id are in the summary; later ones are sent as they are.
    Column("summarised_through", Integer, nullable=False, default=0),
    Column("ended_at", UTCDateTime, nullable=True),  # idle timeout or /reset
)
Index("ix_coach_conversations_open", conversations.c.user_id, conversations.c.ended_at)

messages = Table(
    "coach_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, ForeignKey(conversations.c.id, ondelete="CASCADE")),
    Column("role", String(16), nullable=False),  # user | assistant
    Column("content", Text, nullable=False),
    Column("model", String(128), nullable=True),  # which model answered (assistant)
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_coach_messages_conversation", messages.c.conversation_id, messages.c.id)

# Daily counters per user and action ("tokens", "scans"): keel.core.usage.
usage = usage_table(
    metadata, "coach_usage", Column("user_id", BigInteger, _user(), primary_key=True)
)

watches = Table(
    "coach_watches",
    metadata,
    Column("user_id", BigInteger, _user(), primary_key=True),
    Column("chain", String(16), primary_key=True),  # "1", "56", ... or "solana"
    Column("address", String(64), primary_key=True),  # as GoPlus keys it (EVM lower-cased)
    Column("chat_id", BigInteger, nullable=False),
    Column("report", JSON, nullable=True),  # the last RiskReport seen, as JSON
    Column("checked_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_coach_watches_checked", watches.c.checked_at)

# What the user was asked to pay: through coinpay (coinpay_payment_id) or directly to one
# of our addresses (a pasted transaction hash is then checked against it).
invoices = Table(
    "coach_invoices",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", BigInteger, _user(), nullable=False),
    Column("route", String(16), nullable=False),  # coinpay | direct
    Column("chain", String(16), nullable=False),  # ETH, SOL, TRON, ...
    Column("asset", String(16), nullable=False),  # ETH, SOL, USDT, ...
    Column("amount", BigUInt, nullable=False),  # base units of the asset
    Column("recipient", String(128), nullable=False, default=""),
    Column("coinpay_payment_id", String(64), nullable=True, unique=True),
    Column("status", String(16), nullable=False),  # open | paid | expired
    Column("days", Integer, nullable=False),  # what paying buys
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime, nullable=True),
    Column("paid_by", String(128), nullable=True),  # tx hash or coinpay event id
)
Index("ix_coach_invoices_user", invoices.c.user_id, invoices.c.status)

# The replay store: one row per transaction ever accepted, so a hash unlocks once.
payment_claims = Table(
    "coach_payment_claims",
    metadata,
    Column("chain", String(16), primary_key=True),
    Column("tx_hash", String(128), primary_key=True),  # canonical form (lower-case hex)
    Column("invoice_id", String(32), ForeignKey(invoices.c.id), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    UniqueConstraint("invoice_id", name="uq_coach_payment_claims_invoice"),
)

# Webhook events from coinpay already applied (idempotency by event id).
coinpay_events = Table(
    "coach_coinpay_events",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)
