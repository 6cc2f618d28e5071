"""GoPlusClient against recorded envelopes and failures, over real HTTP."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from keel.coach.risk import (
    BadAddress,
    GoPlusClient,
    MalformedReply,
    RateLimited,
    ScanPending,
    ScanUnavailable,
    TokenNotFound,
    UnsupportedChain,
)
from keel.coach.risk.goplus import default_breaker
from keel.core.resilience import CircuitOpen, CircuitState
from tests.replay import ReplayServer

from .conftest import NOW, GoPlusFactory

ADDRESS = "0x1111aaaa2222bbbb3333cccc4444dddd5555eeee"
KEY, SECRET = SecretStr("keel-test-key"), SecretStr("keel-test-secret")


def scans(chain: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "coach_goplus_scans_total", {"chain": chain, "result": result}
    )
    return value or 0.0


async def test_pending_is_asked_once_more_then_answers(
    goplus: GoPlusFactory, replay: ReplayServer
) -> None:
    report = await goplus("pending_then_ready").scan("1", ADDRESS)

    assert (report.name, report.sell_tax, report.is_honeypot) == (
        "Slow Starter",
        Decimal("0.03"),
        False,
    )
    assert replay.hits[("goplus", "pending_then_ready")] == 2


async def test_still_pending_after_the_retry_is_scan_pending(
    goplus: GoPlusFactory, replay: ReplayServer
) -> None:
    with pytest.raises(ScanPending) as raised:
        await goplus("pending").scan("1", ADDRESS)

    assert raised.value.retry_after > 0
    assert replay.hits[("goplus", "pending")] == 2


async def test_code_2004_is_bad_address(goplus: GoPlusFactory) -> None:
    with pytest.raises(BadAddress):
        await goplus("bad_address_2004").scan("1", ADDRESS)


@pytest.mark.parametrize(
    ("recording", "retry_after"), [("rate_limited_4029", 60), ("http_429", 17)]
)
async def test_rate_limits_are_typed_with_a_retry_hint(
    goplus: GoPlusFactory, recording: str, retry_after: float
) -> None:
    before = scans("1", "rate_limited")
    client = goplus(recording)
    for _ in range(6):  # a rate limit is GoPlus answering: it never opens the breaker
        with pytest.raises(RateLimited) as raised:
            await client.scan("1", ADDRESS)
        assert raised.value.retry_after == retry_after
        assert raised.value.status == 429
    assert scans("1", "rate_limited") == before + 6


@pytest.mark.parametrize("recording", ["server_error_5000", "http_503", "not_json"])
async def test_outages_are_scan_unavailable(goplus: GoPlusFactory, recording: str) -> None:
    with pytest.raises(ScanUnavailable) as raised:
        await goplus(recording).scan("1", ADDRESS)

    assert raised.value.status == 503
    assert isinstance(raised.value, MalformedReply) == (recording == "not_json")


async def test_slow_reply_is_cut_at_the_timeout(goplus: GoPlusFactory) -> None:
    # The recording answers after 1.5 s; the client gives up after 0.2 s.
    with pytest.raises(ScanUnavailable, match="did not answer"):
        await goplus("slow", timeout_seconds=0.2).scan("1", ADDRESS)


async def test_empty_result_is_token_not_found(goplus: GoPlusFactory) -> None:
    before = scans("1", "not_found")
    with pytest.raises(TokenNotFound):
        await goplus("not_found").scan("eth", ADDRESS)
    assert scans("1", "not_found") == before + 1


async def test_repeated_outages_open_the_breaker_and_stop_asking(
    goplus: GoPlusFactory, replay: ReplayServer
) -> None:
    breaker = default_breaker("test_goplus:outage", timeout_seconds=2.0)
    client = goplus("http_503", breaker=breaker)
    for _ in range(4):
        with pytest.raises(ScanUnavailable):
            await client.scan("1", ADDRESS)
    assert breaker.state is CircuitState.OPEN

    with pytest.raises(ScanUnavailable) as raised:
        await client.scan("1", ADDRESS)

    assert isinstance(raised.value.__cause__, CircuitOpen)
    assert raised.value.retry_after >= 1
    assert replay.hits[("goplus", "http_503")] == 4  # the fifth never left


async def test_bad_input_never_reaches_goplus(goplus: GoPlusFactory, replay: ReplayServer) -> None:
    client = goplus("evm_clean")
    with pytest.raises(BadAddress):
        await client.scan("1", "0x1234")
    with pytest.raises(UnsupportedChain):
        await client.scan("dogechain", ADDRESS)
    with pytest.raises(BadAddress):  # a Solana mint on an EVM chain
        await client.scan("bsc", "DYougPS3ao5Ticdy5bFcKKcXgSjHVJ2yuwaMgxHpPoQr")
    assert replay.hits[("goplus", "evm_clean")] == 0


async def test_app_key_gets_a_token_sent_as_authorization_until_it_expires(
    replay: ReplayServer,
) -> None:
    now = [NOW]
    sent: list[str | None] = []

    async def record(request: httpx.Request) -> None:
        if request.method == "GET":
            sent.append(request.headers.get("Authorization"))

    async with httpx.AsyncClient(trust_env=False, event_hooks={"request": [record]}) as http:
        client = GoPlusClient(
            http,
            base_url=replay.url("goplus", "auth"),
            app_key=KEY,
            app_secret=SECRET,
            breaker=default_breaker("test_goplus:auth", timeout_seconds=2.0),
            clock=lambda: now[0],
        )
        await client.scan("1", ADDRESS)
        now[0] += 3600  # within the token's 7200 s
        await client.scan("1", ADDRESS)
        now[0] = NOW + 7200  # expired (renewed a minute early): a new token, newly signed
        report = await client.scan("1", ADDRESS)

    assert report.name == "Authed"
    assert sent == ["gp-access-token-one", "gp-access-token-one", "gp-access-token-two"]
    assert replay.hits[("goplus", "auth")] == 5  # two token requests, three scans
    assert "keel-test-secret" not in repr(client)


async def test_refused_app_key_is_unavailable(goplus: GoPlusFactory) -> None:
    client = goplus("auth_refused", app_key=KEY, app_secret=SECRET)
    with pytest.raises(ScanUnavailable, match="app key"):
        await client.scan("1", ADDRESS)


def test_key_without_secret_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="both"):
        GoPlusClient(httpx.AsyncClient(), base_url="https://api.gopluslabs.io", app_key=KEY)
