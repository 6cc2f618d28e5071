"""Payment verification's peers: a real anvil (tests/chains_nodes.py), recorded Etherscan,
Solana RPC and Tronscan answers served by tests/replay.py, and coach's tables on SQLite and
PostgreSQL (``db_url``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keel.coach import models
from keel.core import db
from tests.chains_nodes import anvil
from tests.replay import ReplayServer, checked, serve_recordings

__all__ = [
    "RECORDED",
    "add_invoice",
    "anvil",
    "client",
    "engine",
    "replay",
    "sessions",
    "zero_address",
]

RECORDINGS = Path(__file__).parent.parent / "recordings"
#: Facts of the recordings (hashes, addresses, times), as tests/coach/recordings/README.md says.
RECORDED: dict[str, Any] = json.loads((RECORDINGS / "index.json").read_text())


@pytest.fixture(scope="session")
def _replay_server() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def replay(_replay_server: ReplayServer) -> Iterator[ReplayServer]:
    """The replay server; fails the test if an adapter sent a request nobody recorded."""
    with checked(_replay_server) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:
        yield http


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """coach's tables in an empty database (SQLite, and PostgreSQL when configured)."""
    eng = db.create_engine(db_url)
    async with eng.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return db.session_factory(engine)


def zero_address() -> str:
    """A fresh EVM address nobody else in the session pays (anvil is shared)."""
    return "0x" + secrets.token_hex(20)


async def add_invoice(
    engine: AsyncEngine,
    *,
    chain: str,
    asset: str,
    amount: int,
    recipient: str,
    created_at: datetime,
    user_id: int = 1001,
    route: str = "direct",
    status: str = "open",
) -> str:
    """An invoice row (and its user, when new); returns its id."""
    invoice_id = secrets.token_hex(8)
    async with db.writing(engine) as conn:
        known = await conn.scalar(select(models.users.c.id).where(models.users.c.id == user_id))
        if known is None:
            await conn.execute(
                insert(models.users).values(
                    id=user_id,
                    chat_id=user_id,
                    first_name="Trader",
                    persona="coach",
                    created_at=created_at,
                    last_seen_at=created_at,
                )
            )
        await conn.execute(
            insert(models.invoices).values(
                id=invoice_id,
                user_id=user_id,
                route=route,
                chain=chain,
                asset=asset,
                amount=amount,
                recipient=recipient,
                status=status,
                days=30,
                created_at=created_at,
                expires_at=created_at + timedelta(hours=1),
            )
        )
    return invoice_id
