"""API keys: ``cp_live_…`` / ``cp_test_…`` bearer tokens, stored only as a keyed hash.

A key acts only inside its own world: its business and its mode (ADR 0009). Scopes say what it
may do there; ``*`` grants every scope except, in live mode, the management scopes, which a
live key must carry by name: a leaked everyday integration key cannot redirect payouts,
webhooks or mint keys.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coinpay import audit, models, notify, presentation
from keel.core.clock import Clock
from keel.core.crypto import SecretBox
from keel.core.errors import BadRequest, Forbidden, NotFound, Unauthorized
from keel.core.jobs import JobQueue
from keel.core.lookups import Lookups

MANAGEMENT_SCOPES = frozenset({"wallets:manage", "webhooks:manage", "keys:manage"})
SCOPES = frozenset({"payments:create", "payments:read", "*"}) | MANAGEMENT_SCOPES
MODES = ("test", "live")
_KEY = re.compile(r"^cp_(live|test)_[0-9a-f]{32}$")
# ``last_used_at`` is written at most this often per key: a write per request would queue every
# read behind SQLite's single writer.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidApiKey(Unauthorized):
    """Invalid or revoked API key."""

    code = "invalid_api_key"


class MissingScope(Forbidden):
    """The API key lacks the scope this action needs."""

    code = "missing_scope"


class ApiKeyNotFound(NotFound):
    """No such API key in this business and mode."""

    code = "api_key_not_found"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key of one business, in one mode, with some scopes."""

    key_id: str
    business_id: str
    mode: str
    scopes: frozenset[str]
    last_used_at: datetime | None = field(default=None, compare=False)

    def has(self, scope: str) -> bool:
        if scope in self.scopes:
            return True
        return "*" in self.scopes and not (self.mode == "live" and scope in MANAGEMENT_SCOPES)

    def require(self, scope: str) -> None:
        if not self.has(scope):
            hint = (
                " (live keys must carry it by name; * does not include it)"
                if (self.mode == "live" and scope in MANAGEMENT_SCOPES)
                else ""
            )
            raise MissingScope(f"This API key lacks the {scope!r} scope{hint}")

    def actor(self, queue: JobQueue, clock: Clock) -> audit.Actor:
        return audit.Actor.api_key(self.key_id, queue, clock)


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = set(chosen) - SCOPES
    if unknown or not chosen:
        raise BadRequest(f"Scopes must be a non-empty subset of {sorted(SCOPES)}")
    return chosen


async def create_key(
    session: AsyncSession,
    box: SecretBox,
    actor: audit.Actor,
    *,
    business_id: str,
    mode: str,
    scopes: Iterable[str] = ("*",),
) -> tuple[str, str]:
    """Create a key; returns (key id, the key itself — shown once, never stored)."""
    if mode not in MODES:
        raise BadRequest("mode must be 'test' or 'live'")
    chosen = validate_scopes(scopes)
    token = f"cp_{mode}_{secrets.token_hex(16)}"
    key_id = str(uuid.uuid4())
    await session.execute(
        models.api_keys.insert().values(
            id=key_id,
            business_id=business_id,
            key_hash=box.keyed_hash(token),
            prefix=token[:12],
            mode=mode,
            scopes=chosen,
            created_at=actor.clock.now(),
        )
    )
    await notify.record_change(
        session,
        actor,
        audit.Change(
            business_id, mode, "api_key.created", key_id, {"prefix": token[:12], "scopes": chosen}
        ),
    )
    return key_id, token


def grantable(principal: Principal, scopes: Iterable[str]) -> list[str]:
    """The scopes a key may give a new key of its own world: only what it has itself."""
    chosen = validate_scopes(scopes)
    beyond = [s for s in chosen if not (principal.has(s) if s != "*" else "*" in principal.scopes)]
    if beyond:
        raise MissingScope(f"A key cannot grant scopes it lacks: {beyond}")
    return chosen


_BY_HASH = select(models.api_keys).where(models.api_keys.c.key_hash == bindparam("key_hash"))


async def authenticate(lookups: Lookups, box: SecretBox, token: str) -> Principal:
    """The principal behind a bearer token; raises InvalidApiKey."""
    if not _KEY.match(token):
        raise InvalidApiKey("Malformed API key: expected cp_live_… or cp_test_… followed by 32 hex")
    row = await lookups.one_or_none(_BY_HASH, key_hash=box.keyed_hash(token))
    if row is None or row.revoked_at is not None:
        raise InvalidApiKey()
    return Principal(row.id, row.business_id, row.mode, frozenset(row.scopes), row.last_used_at)


async def note_use(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, principal: Principal
) -> None:
    """Record that the key was used, at most once per ``LAST_USED_RESOLUTION``."""
    now = clock.now()
    last = principal.last_used_at
    if last is not None and now - last < LAST_USED_RESOLUTION:
        return
    t = models.api_keys
    async with sessions() as session, session.begin():
        await session.execute(t.update().where(t.c.id == principal.key_id).values(last_used_at=now))


def _key(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "livemode": row.mode == "live",
        "scopes": row.scopes,
        "created_at": presentation.iso(row.created_at),
        "last_used_at": presentation.iso(row.last_used_at) if row.last_used_at else None,
        "revoked_at": presentation.iso(row.revoked_at) if row.revoked_at else None,
    }


async def describe_key(session: AsyncSession, key_id: str) -> dict[str, Any]:
    """One key as :func:`list_keys` shows it; never the key itself."""
    t = models.api_keys
    return _key((await session.execute(select(t).where(t.c.id == key_id))).one())


async def list_keys(
    session: AsyncSession, *, business_id: str, mode: str | None
) -> list[dict[str, Any]]:
    """Keys of a business (one mode, or both for the operator), oldest first; never the key."""
    t = models.api_keys
    query = select(t).where(t.c.business_id == business_id).order_by(t.c.created_at, t.c.id)
    if mode is not None:
        query = query.where(t.c.mode == mode)
    return [_key(r) for r in (await session.execute(query)).all()]


async def revoke_key(
    session: AsyncSession, actor: audit.Actor, *, business_id: str, mode: str | None, key_id: str
) -> dict[str, Any]:
    """Revoke a key of this business (and mode, when given); revoking twice changes nothing.
    Raises ApiKeyNotFound."""
    t = models.api_keys
    query = select(t).where(t.c.id == key_id, t.c.business_id == business_id)
    if mode is not None:
        query = query.where(t.c.mode == mode)
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise ApiKeyNotFound("API key not found")
    if row.revoked_at is None:
        await session.execute(
            t.update()
            .where(t.c.id == key_id)
            .values(revoked_at=actor.clock.now(), revoked_by=actor.id)
        )
        await notify.record_change(
            session,
            actor,
            audit.Change(business_id, row.mode, "api_key.revoked", key_id, {"prefix": row.prefix}),
        )
        return await describe_key(session, key_id)
    return _key(row)
