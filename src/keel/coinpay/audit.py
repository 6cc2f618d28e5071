"""The append-only audit log of configuration changes (payout wallets, watch-only keys,
webhook endpoints and secrets, API keys).

Each change is written in the transaction that makes it, beside a ``business.updated`` event
in the same mode (see ``notify.record_change``), so the log, the event and the change commit
together or not at all. The table refuses UPDATE and DELETE (triggers in migration 0002).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.coinpay import models, presentation
from keel.core.clock import Clock
from keel.core.jobs import JobQueue

CLI = "cli"


@dataclass(frozen=True)
class Actor:
    """Who makes a change (``key:<api key id>`` or ``cli``), and where its event is queued."""

    id: str
    queue: JobQueue
    clock: Clock

    @classmethod
    def api_key(cls, key_id: str, queue: JobQueue, clock: Clock) -> Actor:
        return cls(f"key:{key_id}", queue, clock)

    @classmethod
    def cli(cls, queue: JobQueue, clock: Clock) -> Actor:
        return cls(CLI, queue, clock)


@dataclass(frozen=True)
class Change:
    """One configuration change in one business and mode. ``detail`` never holds a secret."""

    business_id: str
    mode: str
    action: str  # e.g. "wallet.set", "webhook.secret_rotated", "api_key.revoked"
    target: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)


async def append(session: AsyncSession, actor: Actor, change: Change) -> None:
    """Write one entry, inside the caller's transaction."""
    await session.execute(
        models.audit_log.insert().values(
            business_id=change.business_id,
            mode=change.mode,
            actor=actor.id,
            action=change.action,
            target=change.target,
            detail=dict(change.detail),
            created_at=actor.clock.now(),
        )
    )


async def entries(
    session: AsyncSession, *, business_id: str, mode: str, limit: int
) -> list[dict[str, Any]]:
    """The newest entries of one business in one mode, newest first."""
    t = models.audit_log
    rows = await session.execute(
        select(t)
        .where(t.c.business_id == business_id, t.c.mode == mode)
        .order_by(t.c.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": r.id,
            "actor": r.actor,
            "action": r.action,
            "target": r.target,
            "detail": r.detail,
            "created_at": presentation.iso(r.created_at),
        }
        for r in rows.all()
    ]
