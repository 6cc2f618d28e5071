"""GoPlus's recorded replies (``tests/coach/recordings/goplus/``), replayed by a real local
HTTP server (``tests.replay``), and the real :class:`GoPlusClient` pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from keel.coach.risk import GoPlusClient
from keel.coach.risk.goplus import default_breaker
from keel.core.resilience import CircuitBreaker
from tests.replay import ReplayServer, checked, serve_recordings

RECORDINGS = Path(__file__).parent.parent / "recordings"

#: The fixed wall clock of these tests: 2025-01-15T12:00:00Z.
NOW = 1736942400.0


@pytest.fixture(scope="session")
def _replay_server() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def replay(_replay_server: ReplayServer) -> Iterator[ReplayServer]:
    """The replay server; fails the test if a request matched no recording (a Solana token
    sent to the EVM endpoint, a wrong chain id, a lower-case Solana address...)."""
    with checked(_replay_server) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: no proxy settings reroute 127.0.0.1.
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


async def no_sleep(seconds: float) -> None:
    return None


GoPlusFactory = Callable[..., GoPlusClient]


@pytest.fixture
def goplus(replay: ReplayServer, http: httpx.AsyncClient) -> GoPlusFactory:
    """``goplus("evm_clean")``: a real client whose base URL serves that recording, with a
    breaker of its own (tests never share breaker state) and no real waiting."""

    def make(
        recording: str,
        *,
        timeout_seconds: float = 2.0,
        breaker: CircuitBreaker | None = None,
        app_key: SecretStr | None = None,
        app_secret: SecretStr | None = None,
        clock: Callable[[], float] = lambda: NOW,
    ) -> GoPlusClient:
        return GoPlusClient(
            http,
            base_url=replay.url("goplus", recording),
            timeout_seconds=timeout_seconds,
            app_key=app_key,
            app_secret=app_secret,
            breaker=breaker
            or default_breaker(f"test_goplus:{recording}", timeout_seconds=timeout_seconds),
            clock=clock,
            sleep=no_sleep,
        )

    return make
