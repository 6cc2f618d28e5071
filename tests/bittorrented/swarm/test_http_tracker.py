from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, quote_from_bytes, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.bittorrented.swarm import http_tracker
from keel.bittorrented.swarm.base import SwarmCounts
from keel.bittorrented.swarm.http_tracker import HttpTracker, scrape_url
from keel.bittorrented.torrent import bencode
from keel.core.resilience import CircuitBreaker, CircuitState
from tests.bittorrented.swarm.conftest import (
    LEECHERS,
    QUIET,
    SEEDERS,
    Swarm,
    free_port,
    synthetic_hash,
)
from tests.bittorrented.swarm.fakes import scrape_count

A, B = synthetic_hash("a"), synthetic_hash("b")
ANNOUNCE = "http://tracker.example/announce"


def mocked(
    reply: Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]],
    seen: list[httpx.Request] | None = None,
) -> httpx.AsyncClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        answer = reply(request)
        return answer if isinstance(answer, httpx.Response) else await answer

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def files_reply(files: dict[bytes, dict[bytes, bencode.Value]]) -> httpx.Response:
    return httpx.Response(200, content=bencode.encode({b"files": dict(files)}))


def asked_hashes(request: httpx.Request) -> list[bytes]:
    # parse_qsl with latin-1 gives back the raw bytes of each percent-encoded hash.
    pairs = parse_qsl(urlsplit(str(request.url)).query, encoding="latin-1")
    return [value.encode("latin-1") for key, value in pairs if key == "info_hash"]


async def test_scrapes_seeders_and_leechers_from_opentracker(swarm: Swarm) -> None:
    client = http_tracker.open_client(allow_private=True)
    async with client:
        tracker = HttpTracker(swarm.tracker.http_announce, client=client)
        found = await tracker.scrape([swarm.info_hash, QUIET])
    assert found[swarm.info_hash] == SwarmCounts(SEEDERS, LEECHERS, 0)
    assert SEEDERS >= 1
    assert QUIET not in found  # opentracker leaves out torrents it has no peers for


async def test_loopback_is_refused_by_the_guarded_client(swarm: Swarm) -> None:
    before = scrape_count("http", "refused")
    async with http_tracker.open_client() as client:
        for host in ("127.0.0.1", "localhost"):
            url = f"http://{host}:{swarm.tracker.port}/announce"
            assert await HttpTracker(url, client=client).scrape([swarm.info_hash]) == {}
    assert scrape_count("http", "refused") == before + 2


async def test_a_dead_port_is_unknown_at_once() -> None:
    before = scrape_count("http", "unreachable")
    started = time.monotonic()
    async with http_tracker.open_client(allow_private=True) as client:
        url = f"http://127.0.0.1:{free_port()}/announce"
        assert await HttpTracker(url, client=client).scrape([A]) == {}
    assert time.monotonic() - started < 1.0
    assert scrape_count("http", "unreachable") == before + 1


@pytest.mark.parametrize(
    ("announce", "scrape"),
    [
        ("http://t.example/announce", "http://t.example/scrape"),
        ("http://t.example:6969/announce", "http://t.example:6969/scrape"),
        (
            "https://t.example/x/announce.php?passkey=ab",
            "https://t.example/x/scrape.php?passkey=ab",
        ),
        ("http://t.example/announce?a=announce", "http://t.example/scrape?a=announce"),
        ("http://t.example/a/announce_v2", "http://t.example/a/scrape_v2"),
        ("http://t.example/announce/x", None),  # announce is not the last segment
        ("http://t.example/x/ann", None),
        ("http://t.example/", None),
        ("http://t.example", None),
        ("udp://t.example:80/announce", None),
        ("wss://t.example/announce", None),
        ("http://[::1/announce", None),
    ],
)
def test_derives_the_scrape_url_only_by_the_announce_convention(
    announce: str, scrape: str | None
) -> None:
    assert scrape_url(announce) == scrape


def test_a_tracker_without_a_scrape_url_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="no scrape URL"):
        HttpTracker("http://t.example/tracker", client=httpx.AsyncClient())


async def test_sends_raw_hashes_keeps_the_query_and_reads_the_files_dict() -> None:
    seen: list[httpx.Request] = []
    hashes = [synthetic_hash(str(n)) for n in range(http_tracker.HASHES_PER_REQUEST + 3)]

    def reply(request: httpx.Request) -> httpx.Response:
        return files_reply(
            {h: {b"complete": 2, b"incomplete": 1, b"downloaded": 7} for h in asked_hashes(request)}
        )

    async with mocked(reply, seen) as client:
        tracker = HttpTracker("http://t.example/announce.php?passkey=s3cr3t", client=client)
        found = await tracker.scrape(hashes)
    assert found == {h: SwarmCounts(2, 1, 7) for h in hashes}
    assert [len(asked_hashes(r)) for r in seen] == [http_tracker.HASHES_PER_REQUEST, 3]
    assert all(r.url.path == "/scrape.php" for r in seen)
    assert all(r.url.params["passkey"] == "s3cr3t" for r in seen)
    assert f"info_hash={quote_from_bytes(hashes[0], safe='')}" in str(seen[0].url)


async def test_accepts_unsorted_keys_and_skips_odd_entries() -> None:
    # Hand-written: bencode.encode would sort the keys.
    entry = b"d10:incompletei3e8:completei4ee"
    body = (
        b"d5:filesd"
        + b"20:"
        + A
        + entry
        + b"20:"
        + B
        + b"d8:complete3:onee"  # not a number
        + b"ee"
    )
    async with mocked(lambda r: httpx.Response(200, content=body)) as client:
        assert await HttpTracker(ANNOUNCE, client=client).scrape([A, B]) == {
            A: SwarmCounts(4, 3, None)
        }


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (httpx.Response(200, content=b"d14:failure reason6:bannede"), "failed"),
        (httpx.Response(200, content=b"d14:failure_reason6:bannede"), "failed"),
        (httpx.Response(404, content=b"not here"), "failed"),
        (httpx.Response(302, headers={"Location": "http://10.0.0.1/"}), "failed"),
        (httpx.Response(200, content=b"<html>hello</html>"), "malformed"),
        (httpx.Response(200, content=b"li1ee"), "malformed"),
        (httpx.Response(200, content=b"d5:filesi3ee"), "malformed"),
        (httpx.Response(200, content=b"d5:files" + b"x" * 2_000_000 + b"e"), "malformed"),
    ],
)
async def test_a_bad_reply_is_unknown_and_counted(response: httpx.Response, outcome: str) -> None:
    before = scrape_count("http", outcome)
    async with mocked(lambda r: response) as client:
        assert await HttpTracker(ANNOUNCE, client=client).scrape([A]) == {}
    assert scrape_count("http", outcome) == before + 1


async def test_a_slow_tracker_is_unknown_after_the_timeout() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return files_reply({})

    started = time.monotonic()
    before = scrape_count("http", "timeout")
    async with mocked(slow) as client:
        tracker = HttpTracker(ANNOUNCE, client=client, timeout_seconds=0.1)
        hashes = [synthetic_hash(str(n)) for n in range(120)]
        assert await tracker.scrape(hashes) == {}
    assert time.monotonic() - started < 0.5  # gave up after the first request, not all three
    assert scrape_count("http", "timeout") == before + 1


async def test_server_errors_open_the_breaker_and_then_no_request_is_sent() -> None:
    seen: list[httpx.Request] = []
    breaker = CircuitBreaker("test-tracker", minimum_calls=2, failure_rate_threshold=0.5)
    async with mocked(lambda r: httpx.Response(503), seen) as client:
        tracker = HttpTracker(ANNOUNCE, client=client, breaker=breaker)
        for _ in range(2):
            assert await tracker.scrape([A]) == {}
        assert breaker.state is CircuitState.OPEN
        before = scrape_count("http", "circuit_open")
        assert await tracker.scrape([A]) == {}
    assert len(seen) == 2
    assert scrape_count("http", "circuit_open") == before + 1


async def test_a_failure_reason_is_an_answer_not_a_breaker_failure() -> None:
    breaker = CircuitBreaker("test-tracker-answers", minimum_calls=2)
    reply = httpx.Response(200, content=b"d14:failure reason3:no!e")
    async with mocked(lambda r: reply) as client:
        tracker = HttpTracker(ANNOUNCE, client=client, breaker=breaker)
        for _ in range(4):
            await tracker.scrape([A])
    assert breaker.state is CircuitState.CLOSED


@settings(max_examples=120, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        # Bencoded structures with random shapes reach the files-dict reader.
        st.recursive(
            st.one_of(st.integers(-(2**40), 2**40), st.binary(max_size=24)),
            lambda inner: st.one_of(
                st.lists(inner, max_size=4),
                st.dictionaries(
                    st.sampled_from([b"files", b"complete", b"incomplete", A, B]), inner, max_size=4
                ),
            ),
            max_leaves=12,
        ).map(bencode.encode),
    ),
    status=st.sampled_from([200, 200, 200, 400, 500]),
)
def test_random_bodies_are_unknown_or_sane_never_an_exception(body: bytes, status: int) -> None:
    async def scenario() -> dict[bytes, SwarmCounts]:
        async with mocked(lambda r: httpx.Response(status, content=body)) as client:
            return await HttpTracker(ANNOUNCE, client=client).scrape([A, B])

    found = asyncio.run(scenario())
    assert set(found) <= {A, B}
    assert all(c.seeders >= 0 and c.leechers >= 0 for c in found.values())
