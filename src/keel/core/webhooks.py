"""Webhook signing, verification and delivery.

Wire format (compatible with CoinPayPortal's SDK)::

    t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=...]

During secret rotation one ``v1`` entry is emitted per active secret, oldest
first, so the newest secret's signature is last (the SDK reads the last one).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import hmac
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from keel.core.errors import Unauthorized
from keel.core.netguard import BlockedDestination

__all__ = [
    "MAX_ATTEMPTS",
    "RETRY_SCHEDULE",
    "DeliveryResult",
    "InMemoryReplayStore",
    "MalformedSignature",
    "ReplayStore",
    "ReplayedSignature",
    "SignatureError",
    "SignatureMismatch",
    "TimestampOutsideTolerance",
    "deliver",
    "next_retry_delay",
    "sign",
    "verify",
]

# Bounds parsing work on hostile headers; rotation needs two or three entries.
MAX_SIGNATURES = 16
_TIMESTAMP_RE = re.compile(r"[0-9]{1,15}")  # ASCII digits only; bounded to keep int() cheap
MAX_TIMESTAMP = 10**15 - 1
_V1_RE = re.compile(r"[0-9a-fA-F]{64}")


class SignatureError(Unauthorized):
    """The webhook signature is not valid."""

    code = "signature_invalid"
    title = "Invalid webhook signature"


class MalformedSignature(SignatureError):
    """The signature header cannot be parsed."""

    code = "signature_malformed"


class TimestampOutsideTolerance(SignatureError):
    """The signature timestamp is too far from the current time."""

    code = "signature_timestamp_out_of_tolerance"


class SignatureMismatch(SignatureError):
    """No signature matches the body with any known secret."""

    code = "signature_mismatch"


class ReplayedSignature(SignatureError):
    """This signed message was already accepted once."""

    code = "signature_replayed"


def _require_secrets(secrets: Sequence[str]) -> None:
    if isinstance(secrets, str):
        # A bare string is a Sequence[str] of characters: almost surely a caller bug.
        raise TypeError("secrets must be a sequence of strings, not a string")
    if not secrets:
        raise ValueError("at least one webhook secret is required")
    if any(not s for s in secrets):
        raise ValueError("webhook secrets must not be empty")


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """Signature header for ``body`` at ``timestamp`` (unix seconds).

    ``secrets`` are ordered oldest → newest; one ``v1`` per secret, newest last.
    Raises ``ValueError`` if no (or an empty) secret is given or the timestamp
    is negative or absurdly large.
    """
    _require_secrets(secrets)
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("timestamp out of range")
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={_digest(secret, timestamp, body)}" for secret in secrets)
    return ",".join(parts)


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    candidates: list[str] = []
    for raw_item in header.split(","):
        item = raw_item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise MalformedSignature("signature header item is not key=value")
        if key == "t":
            if timestamp is not None:
                raise MalformedSignature("signature header has more than one timestamp")
            if not _TIMESTAMP_RE.fullmatch(value):
                raise MalformedSignature("signature timestamp is not a unix time")
            timestamp = int(value)
        elif key == "v1":
            if not _V1_RE.fullmatch(value):
                raise MalformedSignature("v1 signature is not 64 hex digits")
            candidates.append(value.lower())
            if len(candidates) > MAX_SIGNATURES:
                raise MalformedSignature("too many signatures")
        # Other schemes (v0=, future v2=) are ignored so senders can add them.
    if timestamp is None:
        raise MalformedSignature("signature header has no timestamp")
    if not candidates:
        raise MalformedSignature("signature header has no v1 signature")
    return timestamp, candidates


def verify(
    header: str,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: int,
    tolerance: int = 300,
    replay: ReplayStore | None = None,
) -> int:
    """Check a signature header against the raw ``body``; return its timestamp.

    Accepts if any ``v1`` matches any of ``secrets``. ``now`` and ``tolerance``
    are unix seconds; the timestamp may be off by ``tolerance`` either way.
    Raises :class:`MalformedSignature`, :class:`SignatureMismatch`,
    :class:`TimestampOutsideTolerance` or :class:`ReplayedSignature` (all
    :class:`SignatureError`), in that order of checking.
    """
    _require_secrets(secrets)
    timestamp, candidates = _parse(header)

    expected = [_digest(secret, timestamp, body) for secret in secrets]
    matched = False
    for want in expected:
        for got in candidates:
            # No early exit: timing should not reveal which entry matched.
            matched |= hmac.compare_digest(want, got)
    if not matched:
        raise SignatureMismatch()

    # Checked after the HMAC so that this error implies an authentic but stale
    # message, which is useful when diagnosing clock skew.
    if abs(now - timestamp) > tolerance:
        raise TimestampOutsideTolerance(
            f"signature timestamp is {now - timestamp} s from now (tolerance {tolerance} s)"
        )

    if replay is not None:
        # Canonical key: our own newest-secret signature, not the header text,
        # which an attacker could vary (case, spacing, dropping entries) at will.
        key = f"{timestamp}.{expected[-1]}"
        if replay.seen(key, timestamp + tolerance):
            raise ReplayedSignature()
    return timestamp


class ReplayStore(Protocol):
    """Remembers accepted signatures until they would be rejected as stale anyway."""

    def seen(self, key: str, expires_at: int) -> bool:
        """True if ``key`` was already recorded; otherwise record it until ``expires_at``
        (unix seconds) and return False. Must be atomic."""
        ...


class InMemoryReplayStore:
    """Process-local :class:`ReplayStore`; use a shared store with several workers.

    Expired keys are pruned on every call. Beyond ``max_entries`` the keys
    closest to expiry are dropped first, bounding memory under a flood.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, max_entries: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._expiry: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, key: str, expires_at: int) -> bool:
        with self._lock:
            self._prune(self._clock())
            if key in self._expiry:
                return True
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            while len(self._expiry) > self._max_entries:
                _, oldest = heapq.heappop(self._heap)
                self._expiry.pop(oldest, None)
            return False

    def _prune(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            _, key = heapq.heappop(self._heap)
            self._expiry.pop(key, None)


# Delays (seconds) before retries 1..7: 1m, 5m, 15m, 1h, 3h, 6h, 12h.
RETRY_SCHEDULE: tuple[int, ...] = (60, 300, 900, 3600, 10800, 21600, 43200)
MAX_ATTEMPTS = 1 + len(RETRY_SCHEDULE)


def next_retry_delay(attempts_made: int) -> int | None:
    """Seconds to wait after ``attempts_made`` failed attempts; None once dead.

    1 → 60, …, 7 → 43200, 8+ → None. Raises ``ValueError`` below 1.
    """
    if attempts_made < 1:
        raise ValueError("attempts_made must be at least 1")
    if attempts_made > len(RETRY_SCHEDULE):
        return None
    return RETRY_SCHEDULE[attempts_made - 1]


EXCERPT_BYTES = 1024


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one delivery attempt; ``latency_seconds`` is wall time of the attempt.

    ``refused`` is True when the guard refused the destination (blocked address, or a name
    that does not exist): nothing was sent, and retrying the same URL cannot succeed.
    """

    ok: bool
    status_code: int | None
    latency_seconds: float
    error: str | None
    response_excerpt: str
    refused: bool = False


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - also passed to httpx per phase
) -> DeliveryResult:
    """POST ``body`` to ``url``; ok only on a 2xx response.

    ``timeout`` (seconds) bounds the whole attempt, including a slowly dripped
    response. Network errors, timeouts and :class:`BlockedDestination` are
    reported in ``error``, never raised; a refused destination also sets
    ``refused``. Only the first KiB of the response is read.
    """
    request_headers = httpx.Headers(headers)
    request_headers.setdefault("Content-Type", "application/json")
    request_headers.setdefault("User-Agent", "Keel-Webhook/1.0")

    started = time.perf_counter()
    status: int | None = None
    excerpt = bytearray()
    error: str | None = None
    refused = False
    try:
        # httpx timeouts are per phase; the outer one stops a trickling server.
        async with (
            asyncio.timeout(timeout),
            client.stream(
                "POST", url, content=body, headers=request_headers, timeout=timeout
            ) as response,
        ):
            status = response.status_code
            async for chunk in response.aiter_bytes():
                excerpt += chunk[: EXCERPT_BYTES - len(excerpt)]
                if len(excerpt) >= EXCERPT_BYTES:
                    break
    except (TimeoutError, httpx.TimeoutException):
        error = f"timeout after {timeout:g} s"
    except BlockedDestination as exc:
        error = f"blocked: {exc.detail}"
        refused = True
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    latency = time.perf_counter() - started

    ok = error is None and status is not None and 200 <= status < 300
    if error is None and not ok:
        error = f"HTTP {status}"
    return DeliveryResult(
        ok=ok,
        status_code=status,
        latency_seconds=latency,
        error=error,
        response_excerpt=excerpt.decode("utf-8", errors="replace"),
        refused=refused,
    )
