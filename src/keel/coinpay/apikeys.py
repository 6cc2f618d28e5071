"""API keys: ``cp_live_…`` / ``cp_test_…`` bearer tokens, stored only as a keyed hash."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.coinpay import models
from keel.core.clock import Clock
from keel.core.crypto import SecretBox
from keel.core.errors import BadRequest, Forbidden, Unauthorized

SCOPES = frozenset({"payments:create", "payments:read", "webhooks:manage", "*"})
MODES = ("test", "live")
_KEY = re.compile(r"^cp_(live|test)_[0-9a-f]{32}$")


class InvalidApiKey(Unauthorized):
    """Invalid or revoked API key."""

    code = "invalid_api_key"


class MissingScope(Forbidden):
    """The API key lacks the scope this action needs."""

    code = "missing_scope"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key of one business, in one mode, with some scopes."""

    key_id: str
    business_id: str
    mode: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if "*" not in self.scopes and scope not in self.scopes:
            raise MissingScope(f"This API key lacks the {scope!r} scope")


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = set(chosen) - SCOPES
    if unknown or not chosen:
        raise BadRequest(f"Scopes must be a non-empty subset of {sorted(SCOPES)}")
    return chosen


async def create_key(
    session: AsyncSession,
    box: SecretBox,
    clock: Clock,
    *,
    business_id: str,
    mode: str,
    scopes: Iterable[str] = ("*",),
) -> tuple[str, str]:
    """Create a key; returns (key id, the key itself — shown once, never stored)."""
    if mode not in MODES:
        raise BadRequest("mode must be 'test' or 'live'")
    token = f"cp_{mode}_{secrets.token_hex(16)}"
    key_id = str(uuid.uuid4())
    await session.execute(
        models.api_keys.insert().values(
            id=key_id,
            business_id=business_id,
            key_hash=box.keyed_hash(token),
            prefix=token[:12],
            mode=mode,
            scopes=validate_scopes(scopes),
            created_at=clock.now(),
        )
    )
    return key_id, token


async def authenticate(session: AsyncSession, box: SecretBox, token: str) -> Principal:
    """The principal behind a bearer token; raises InvalidApiKey."""
    if not _KEY.match(token):
        raise InvalidApiKey("Malformed API key: expected cp_live_… or cp_test_… followed by 32 hex")
    row = (
        await session.execute(
            select(models.api_keys).where(models.api_keys.c.key_hash == box.keyed_hash(token))
        )
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        raise InvalidApiKey()
    return Principal(row.id, row.business_id, row.mode, frozenset(row.scopes))
