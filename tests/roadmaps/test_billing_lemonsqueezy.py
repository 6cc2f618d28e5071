"""The LemonSqueezy API adapter against responses replayed by a local HTTP server: what it
reads, and how each failure is classed (unavailable: counts against the breaker; refused)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from keel.core.resilience import CircuitState
from keel.roadmaps.billing.errors import ProviderRefused, ProviderUnavailable
from keel.roadmaps.billing.lemonsqueezy import LemonSqueezyApi, default_breaker
from keel.roadmaps.billing.resources import SubscriptionStatus
from keel.roadmaps.settings import RoadmapsSettings
from tests.replay import ReplayServer, checked, serve_recordings
from tests.roadmaps.referrals_billing_support import RECORDINGS, refusing_url

KEY = SecretStr("test-api-key")


@pytest.fixture(scope="module")
def _server() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def replay(_server: ReplayServer) -> Iterator[ReplayServer]:
    with checked(_server) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def api(client: httpx.AsyncClient, base_url: str, **kwargs: object) -> LemonSqueezyApi:
    return LemonSqueezyApi(client, KEY, base_url=base_url, **kwargs)  # type: ignore[arg-type]


async def test_asks_with_the_key_and_reads_the_subscription(replay: ReplayServer) -> None:
    sent: list[httpx.Request] = []

    async def keep(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(trust_env=False, event_hooks={"request": [keep]}) as client:
        report = await api(client, replay.url("lemonsqueezy", "subscription_renewed")).fetch("1")
    assert sent[0].headers["authorization"] == "Bearer test-api-key"
    assert sent[0].headers["accept"] == "application/vnd.api+json"
    assert report.id == "1"
    assert report.status is SubscriptionStatus.ACTIVE
    assert report.variant_id == "222"
    assert report.renews_at == datetime(2026, 4, 10, 12, tzinfo=UTC)
    assert report.ends_at is None
    assert report.updated_at == datetime(2026, 3, 10, 12, 5, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    "recording",
    ["unavailable", "rate_limited", "unauthenticated", "maintenance_page", "subscription_other_id"],
)
async def test_no_usable_answer_is_unavailable(
    replay: ReplayServer, client: httpx.AsyncClient, recording: str
) -> None:
    with pytest.raises(ProviderUnavailable):
        await api(client, replay.url("lemonsqueezy", recording)).fetch("1")


async def test_an_unknown_subscription_is_refused(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderRefused, match="404"):
        await api(client, replay.url("lemonsqueezy", "not_found")).fetch("1")


async def test_an_unknown_status_is_unavailable_not_guessed(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderUnavailable, match="status"):
        await api(client, replay.url("lemonsqueezy", "subscription_unknown_status")).fetch("1")


async def test_a_slow_answer_times_out(replay: ReplayServer, client: httpx.AsyncClient) -> None:
    slow = api(client, replay.url("lemonsqueezy", "slow"), timeout_seconds=0.2)
    with pytest.raises(ProviderUnavailable, match="Timeout"):
        await slow.fetch("1")


async def test_a_refused_connection_is_unavailable(client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderUnavailable, match="ConnectError"):
        await api(client, refusing_url()).fetch("1")


async def test_the_breaker_opens_on_outages_and_then_spares_the_provider(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    down = api(client, replay.url("lemonsqueezy", "unavailable"))
    for _ in range(4):
        with pytest.raises(ProviderUnavailable):
            await down.fetch("1")
    assert down.breaker.state is CircuitState.OPEN
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await down.fetch("1")
    assert replay.hits[("lemonsqueezy", "unavailable")] == 4


async def test_refusals_do_not_open_the_breaker(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    missing = api(client, replay.url("lemonsqueezy", "not_found"))
    for _ in range(6):
        with pytest.raises(ProviderRefused):
            await missing.fetch("1")
    assert missing.breaker.state is CircuitState.CLOSED


def test_no_api_key_means_no_adapter(client: httpx.AsyncClient) -> None:
    assert LemonSqueezyApi.from_settings(RoadmapsSettings(), client) is None
    wired = LemonSqueezyApi.from_settings(
        RoadmapsSettings(lemonsqueezy_api_key=SecretStr("k")), client
    )
    assert wired is not None
    assert default_breaker().name == "lemonsqueezy"
