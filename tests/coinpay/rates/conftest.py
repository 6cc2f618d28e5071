"""Price providers' recorded responses, replayed by a real local HTTP server (``tests.replay``).

Recordings live in ``recordings/<provider>/<name>.json``; ``replay.url("kraken",
"ticker_xbtusd")`` is a base URL serving one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.replay import ReplayServer, checked, serve_recordings

__all__ = ["NOW", "RECORDINGS", "ReplayServer", "client", "fixed_clock", "replay"]

RECORDINGS = Path(__file__).parent / "recordings"

#: The fixed "now" of these tests: 2025-01-15T12:00:00Z (epoch 1736942400).
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def _replay_server() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def replay(_replay_server: ReplayServer) -> Iterator[ReplayServer]:
    """The replay server; fails the test if a provider sent a request nobody recorded."""
    with checked(_replay_server) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A real client; ``trust_env=False`` so no proxy settings reroute 127.0.0.1."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def fixed_clock() -> datetime:
    return NOW
