"""Scrape an HTTP tracker (BEP 48): GET its scrape URL with repeated ``info_hash`` parameters,
read a bencoded ``files`` dict keyed by the raw 20-byte hashes.

Requests go through ``keel.core.netguard``'s guarded client, so a magnet's tracker URL cannot
reach an internal address (checked after DNS resolution), and through a circuit breaker per
tracker, so a dead one costs one timeout per breaker window instead of one per round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from urllib.parse import quote_from_bytes, urlsplit, urlunsplit

import httpx

from keel.bittorrented.errors import MalformedTorrent
from keel.bittorrented.swarm import metrics
from keel.bittorrented.swarm.base import Outcome, SwarmCounts, plausible
from keel.bittorrented.torrent import bencode
from keel.bittorrented.torrent.values import INFO_HASH_BYTES
from keel.core import netguard
from keel.core.resilience import CircuitBreaker, CircuitOpen

__all__ = ["HASHES_PER_REQUEST", "HttpTracker", "open_client", "scrape_url", "tracker_breaker"]

# opentracker answers at most 64 hashes per scrape; 50 also keeps the URL near 3 KB.
HASHES_PER_REQUEST = 50
MAX_REPLY_BYTES = 1024 * 1024
USER_AGENT = "keel-bittorrented/0.1"
# After these the tracker is down or off limits: the rest of the call would only repeat them.
_GIVE_UP = frozenset({Outcome.TIMEOUT, Outcome.UNREACHABLE, Outcome.REFUSED, Outcome.CIRCUIT_OPEN})


def scrape_url(announce_url: str) -> str | None:
    """The scrape URL of an http(s) announce URL, or None when it has none.

    The convention BEP 48 builds on: only when the last path segment starts with
    ``announce`` is that word replaced by ``scrape`` (``/a/announce.php?k=1`` →
    ``/a/scrape.php?k=1``); any other tracker does not support scraping.
    """
    try:
        parts = urlsplit(announce_url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    head, slash, last = parts.path.rpartition("/")
    if not slash or not last.startswith("announce"):
        return None
    path = f"{head}/scrape{last[len('announce') :]}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def open_client(*, allow_private: bool = False, timeout_seconds: float = 5.0) -> httpx.AsyncClient:
    """The SSRF-guarded client trackers share (``allow_private`` only for tests and labs)."""
    return netguard.guarded_client(
        allow_private=allow_private,
        timeout=timeout_seconds,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
    )


class _ServerError(Exception):
    """The tracker answered 5xx: it is up but failing, which should open its breaker."""


def tracker_breaker(name: str) -> CircuitBreaker:
    """A breaker for one tracker: opens after half of 4+ calls in 10 minutes failed.

    Timeouts, connection errors and 5xx are failures; a refused destination or a tracker's
    "failure reason" are answers, not failures.
    """
    return CircuitBreaker(
        f"bittorrented_tracker:{name}",
        minimum_calls=4,
        window_seconds=600.0,
        open_seconds=1800.0,
        half_open_max_calls=1,
        failure_on=(httpx.TransportError, TimeoutError, _ServerError),
    )


class HttpTracker:
    """A :class:`~keel.bittorrented.swarm.base.Scraper` for one http(s) tracker.

    ``timeout_seconds`` bounds each request from connect to last byte. After a timeout, a
    connection failure, a refusal or an open breaker the rest of the call is skipped.
    Raises ValueError at construction when the announce URL has no scrape URL.
    """

    transport = "http"

    def __init__(
        self,
        announce_url: str,
        *,
        client: httpx.AsyncClient,
        breaker: CircuitBreaker | None = None,
        timeout_seconds: float = 5.0,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        url = scrape_url(announce_url)
        if url is None:
            raise ValueError("this tracker URL has no scrape URL")
        self.url = url
        self._client = client
        self._breaker = breaker
        self.timeout_seconds = timeout_seconds
        self.max_reply_bytes = max_reply_bytes

    async def scrape(self, info_hashes: Sequence[bytes]) -> dict[bytes, SwarmCounts]:
        """Counts for the hashes the tracker listed; see the Protocol."""
        hashes = list(dict.fromkeys(h for h in info_hashes if len(h) == INFO_HASH_BYTES))
        found: dict[bytes, SwarmCounts] = {}
        for at in range(0, len(hashes), HASHES_PER_REQUEST):
            chunk = hashes[at : at + HASHES_PER_REQUEST]
            started = time.monotonic()
            outcome, counts = await self._scrape_request(chunk)
            metrics.record(self.transport, outcome, time.monotonic() - started)
            found.update(counts)
            if outcome in _GIVE_UP:
                break
        return found

    async def _scrape_request(self, chunk: list[bytes]) -> tuple[Outcome, dict[bytes, SwarmCounts]]:
        query = "&".join(f"info_hash={quote_from_bytes(h, safe='')}" for h in chunk)
        url = f"{self.url}{'&' if '?' in self.url else '?'}{query}"
        try:
            if self._breaker is None:
                status, body = await self._get(url)
            else:
                async with self._breaker.guard():
                    status, body = await self._get(url)
        except CircuitOpen:
            return Outcome.CIRCUIT_OPEN, {}
        except netguard.UnresolvableHost:
            return Outcome.UNREACHABLE, {}
        except netguard.BlockedDestination:
            return Outcome.REFUSED, {}
        except (TimeoutError, httpx.TimeoutException):
            return Outcome.TIMEOUT, {}
        except _ServerError:
            return Outcome.FAILED, {}
        except (httpx.HTTPError, httpx.InvalidURL):
            return Outcome.UNREACHABLE, {}
        if body is None:
            return Outcome.MALFORMED, {}  # over max_reply_bytes: no scrape reply is that big
        if status != 200:
            return Outcome.FAILED, {}
        return parse_reply(body, chunk)

    async def _get(self, url: str) -> tuple[int, bytes | None]:
        """Status and body (None when over ``max_reply_bytes``); 5xx raises _ServerError."""
        async with asyncio.timeout(self.timeout_seconds):
            async with self._client.stream("GET", url) as response:
                if response.status_code >= 500:
                    raise _ServerError(str(response.status_code))
                chunks: list[bytes] = []
                size = 0
                async for piece in response.aiter_bytes():
                    size += len(piece)
                    if size > self.max_reply_bytes:
                        return response.status_code, None
                    chunks.append(piece)
                return response.status_code, b"".join(chunks)


def parse_reply(body: bytes, asked: Sequence[bytes]) -> tuple[Outcome, dict[bytes, SwarmCounts]]:
    """Read a scrape reply: counts for the ``asked`` hashes it lists with sane numbers.

    Unsorted keys are accepted (many trackers do not sort); anything that is not a bencoded
    dict with a ``files`` dict is MALFORMED, a ``failure reason`` is FAILED.
    """
    try:
        value = bencode.decode(body, strict=False, max_bytes=MAX_REPLY_BYTES)
    except MalformedTorrent:
        return Outcome.MALFORMED, {}
    if not isinstance(value, dict):
        return Outcome.MALFORMED, {}
    # BEP 3 spells it with a space, BEP 48 with an underscore; trackers use either.
    if b"failure reason" in value or b"failure_reason" in value:
        return Outcome.FAILED, {}
    files = value.get(b"files")
    if not isinstance(files, dict):
        return Outcome.MALFORMED, {}
    found: dict[bytes, SwarmCounts] = {}
    for info_hash in asked:
        entry = files.get(info_hash)
        if not isinstance(entry, dict):
            continue
        complete, incomplete = entry.get(b"complete"), entry.get(b"incomplete")
        downloaded = entry.get(b"downloaded")
        if not isinstance(complete, int) or not isinstance(incomplete, int):
            continue
        counts = plausible(
            complete, incomplete, downloaded if isinstance(downloaded, int) else None
        )
        if counts is not None:
            found[info_hash] = counts
    return Outcome.OK, found
