"""roadmaps' tables. Only this product reads or writes them.

Counters a page shows on every view (ratings, clones, followers) are kept on the row they
describe and changed in the same transaction as the row that causes them, so /discover and a
profile read one row instead of aggregating.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from keel.core.identity import identity_tables
from keel.core.jobs import jobs_table
from keel.core.ratelimit import rate_limit_table
from keel.core.types import ExactDecimal, UTCDateTime
from keel.core.usage import usage_table

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_identity = identity_tables(metadata, "roadmaps")
users = _identity.users
sessions = _identity.sessions
jobs = jobs_table(metadata, "roadmaps_jobs")
rate_limits = rate_limit_table(metadata, "roadmaps_rate_limits")


def _user() -> ForeignKey:
    return ForeignKey(users.c.id, ondelete="CASCADE")


profiles = Table(
    "roadmaps_profiles",
    metadata,
    Column("user_id", String(32), _user(), primary_key=True),
    # Public handle in /u/<handle>; lower-case letters, digits, '-' and '_'.
    Column("handle", String(40), nullable=False, unique=True),
    Column("bio", Text, nullable=False, default=""),  # sanitised HTML (nh3)
    Column("followers", Integer, nullable=False, default=0),
    Column("following", Integer, nullable=False, default=0),
    Column("public_roadmaps", Integer, nullable=False, default=0),
)

roadmaps = Table(
    "roadmaps_roadmaps",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", String(32), _user(), nullable=False),
    Column("title", String(200), nullable=False),
    Column("goal", Text, nullable=False),
    Column("source_kind", String(8), nullable=False),  # text | url | pdf
    Column("source_ref", String(2048), nullable=True),  # the URL or the PDF's file name
    # generating | ready | failed
    Column("status", String(12), nullable=False),
    Column("progress", SmallInteger, nullable=False, default=0),  # 0..100 while generating
    Column("stage", String(80), nullable=False, default=""),
    Column("error", String(500), nullable=True),
    Column("provider", String(40), nullable=False, default=""),
    Column("model", String(120), nullable=False, default=""),
    Column("visibility", String(8), nullable=False, default="private"),  # private | public
    Column("published_at", UTCDateTime, nullable=True),
    Column("cloned_from", String(32), nullable=True),
    # Kept with the steps (same transaction) so lists and /discover need no join.
    Column("step_count", Integer, nullable=False, default=0),
    Column("total_hours", ExactDecimal(10, 2), nullable=False, default=0),
    Column("rating_sum", Integer, nullable=False, default=0),
    Column("rating_count", Integer, nullable=False, default=0),
    Column("clone_count", Integer, nullable=False, default=0),
    Column("view_count", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_roadmaps_roadmaps_owner", "owner_id", "created_at"),
    Index("ix_roadmaps_roadmaps_public", "visibility", "published_at"),
)

steps = Table(
    "roadmaps_steps",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "roadmap_id",
        String(32),
        ForeignKey(roadmaps.c.id, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("position", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),  # sanitised HTML (nh3)
    Column("hours", ExactDecimal(8, 2), nullable=False),
    Column("resources", JSON, nullable=False),  # [{"title", "url", "kind"}]
    Index("ix_roadmaps_steps_order", "roadmap_id", "position", unique=True),
)

progress = Table(
    "roadmaps_progress",
    metadata,
    Column("user_id", String(32), _user(), primary_key=True),
    Column("step_id", String(32), ForeignKey(steps.c.id, ondelete="CASCADE"), primary_key=True),
    Column("roadmap_id", String(32), nullable=False),
    Column("status", String(8), nullable=False),  # done | learning | skip
    Column("minutes", Integer, nullable=False, default=0),  # time spent on the step
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_roadmaps_progress_roadmap", "user_id", "roadmap_id"),
)

# One row per user and UTC day with any activity: the heatmap and streaks read only this.
activity = Table(
    "roadmaps_activity",
    metadata,
    Column("user_id", String(32), _user(), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("steps_done", Integer, nullable=False, default=0),
    Column("minutes", Integer, nullable=False, default=0),
)

ratings = Table(
    "roadmaps_ratings",
    metadata,
    Column("user_id", String(32), _user(), primary_key=True),
    Column(
        "roadmap_id", String(32), ForeignKey(roadmaps.c.id, ondelete="CASCADE"), primary_key=True
    ),
    Column("stars", SmallInteger, nullable=False),  # 1..5
    Column("created_at", UTCDateTime, nullable=False),
)

follows = Table(
    "roadmaps_follows",
    metadata,
    Column("follower_id", String(32), _user(), primary_key=True),
    Column("followee_id", String(32), _user(), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# The /discover precompute's last result: shared by every process without Redis, and the
# stale copy served while a refresh runs.
discover_snapshots = Table(
    "roadmaps_discover_snapshots",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("payload", JSON, nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
)

# A write's outcome under its Idempotency-Key: a client retrying after a 503 or a dropped
# connection gets the first answer, and the write is applied once.
idempotency = Table(
    "roadmaps_idempotency",
    metadata,
    Column("key", String(64), primary_key=True),  # SHA-256 of (user, client key)
    Column("status", SmallInteger, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Daily counters per user and action (generate | ...): keel.core.usage.
usage = usage_table(
    metadata, "roadmaps_usage", Column("user_id", String(32), _user(), primary_key=True)
)

# Referrals and billing have their own migration (0002).

# One code per user, made from `secrets` (keel.roadmaps.referrals).
referral_codes = Table(
    "roadmaps_referral_codes",
    metadata,
    Column("user_id", String(32), _user(), primary_key=True),
    Column("code", String(16), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# pending -> completed -> rewarded; a user is referred at most once (unique referred_id).
referrals = Table(
    "roadmaps_referrals",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("referrer_id", String(32), _user(), nullable=False),
    Column("referred_id", String(32), _user(), nullable=False, unique=True),
    Column("code", String(16), nullable=False),
    Column("status", String(10), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("rewarded_at", UTCDateTime, nullable=True),
    CheckConstraint("referrer_id <> referred_id", name="ck_roadmaps_referrals_not_self"),
    CheckConstraint(
        "status IN ('pending', 'completed', 'rewarded')", name="ck_roadmaps_referrals_status"
    ),
    Index("ix_roadmaps_referrals_referrer", "referrer_id", "status"),
)

# A user's referral rewards, changed only by increments in SQL (never read-modify-write).
# trial_until: the referral trial's end (a plan of its own, keel.roadmaps.billing.entitlements).
rewards = Table(
    "roadmaps_rewards",
    metadata,
    Column("user_id", String(32), _user(), primary_key=True),
    Column("trial_days", Integer, nullable=False, default=0),
    Column("credits", Integer, nullable=False, default=0),
    Column("referrals_completed", Integer, nullable=False, default=0),
    Column("trial_until", UTCDateTime, nullable=True),
)

# The primary key is what awards a badge exactly once.
badges = Table(
    "roadmaps_badges",
    metadata,
    Column("user_id", String(32), _user(), primary_key=True),
    Column("badge", String(32), primary_key=True),
    Column("awarded_at", UTCDateTime, nullable=False),
)

# Append-only (triggers refuse UPDATE, DELETE and TRUNCATE, migration 0002). No foreign keys:
# the trail outlives a deleted account, and a cascade would be a DELETE.
referral_audit = Table(
    "roadmaps_referral_audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("referral_id", String(32), nullable=True),
    Column("user_id", String(32), nullable=False),
    Column("event", String(24), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_roadmaps_referral_audit_user", "user_id", "id"),
)

# LemonSqueezy subscriptions as last reported (webhook or API re-check). provider_updated_at
# orders reports, so an older one arriving late never overwrites a newer one.
subscriptions = Table(
    "roadmaps_subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),  # LemonSqueezy's subscription id
    Column("user_id", String(32), _user(), nullable=False),
    Column("variant_id", String(32), nullable=False),
    Column("status", String(12), nullable=False),
    Column("renews_at", UTCDateTime, nullable=True),
    Column("ends_at", UTCDateTime, nullable=True),
    Column("trial_ends_at", UTCDateTime, nullable=True),
    Column("status_since", UTCDateTime, nullable=False),  # when the status last changed
    Column("provider_updated_at", UTCDateTime, nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),  # last heard from LemonSqueezy
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(
        "status IN ('on_trial', 'active', 'paused', 'past_due', 'unpaid', 'cancelled', 'expired')",
        name="ck_roadmaps_subscriptions_status",
    ),
    Index("ix_roadmaps_subscriptions_user", "user_id"),
)

# Every webhook delivery applied, by event id (SHA-256 of the raw body, ADR 0033), written in
# the transaction that applies it: a redelivery finds its row and changes nothing.
billing_events = Table(
    "roadmaps_billing_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("event_name", String(64), nullable=False),
    Column("webhook_id", String(64), nullable=True),  # meta.webhook_id when sent, for support
    Column("subscription_id", String(32), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

# subscription_payment_* events. Amounts in the currency's smallest unit (cents).
subscription_payments = Table(
    "roadmaps_subscription_payments",
    metadata,
    Column("event_id", String(64), ForeignKey(billing_events.c.id), primary_key=True),
    Column("event_name", String(64), nullable=False),
    Column("invoice_id", String(32), nullable=False),
    Column("subscription_id", String(32), nullable=False),
    Column("user_id", String(32), nullable=True),
    Column("status", String(16), nullable=False),
    Column("billing_reason", String(16), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("provider_updated_at", UTCDateTime, nullable=False),
    Index("ix_roadmaps_subscription_payments_subscription", "subscription_id"),
)
