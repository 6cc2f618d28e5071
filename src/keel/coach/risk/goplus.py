"""GoPlus token security over HTTP: the risk radar's one external system.

``GET {base}/api/v1/token_security/{chain_id}?contract_addresses=ADDR`` for EVM chains and
``GET {base}/api/v1/solana/token_security?contract_addresses=ADDR`` for Solana (the original
sent Solana mints to the EVM endpoint). The envelope is ``{code, message, result}``:

==========================  ===============================================================
code 1                      ok: ``result[address]`` is the token (none: :class:`TokenNotFound`)
code 2                      data pending: asked once more after ``pending_retry_seconds``,
                            then :class:`ScanPending`
code 2004                   :class:`BadAddress`
code 4029 / HTTP 429        :class:`RateLimited` (``Retry-After`` when sent, else a minute)
code 5000 / HTTP 5xx /      :class:`ScanUnavailable`; these count as failures in the breaker,
timeout / network error     the rest do not (GoPlus answered)
anything else               :class:`MalformedReply` (a kind of ScanUnavailable)
==========================  ===============================================================

Every HTTP exchange runs through one :class:`~keel.core.resilience.CircuitBreaker` whose call
timeout bounds it whole (connect, send, a slow body). With an app key and secret, an access
token from ``POST {base}/api/v1/token`` (``sign = sha1(app_key + time + app_secret)``) goes in
the ``Authorization`` header until shortly before it expires. Neither the secret nor the token
is ever logged.

Metrics: ``coach_goplus_scans_total{chain,result}`` and ``coach_goplus_request_seconds{chain}``;
the breaker is ``keel_circuit_state{name="coach_goplus"}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Final, Protocol

import httpx
import structlog
from prometheus_client import Counter, Histogram
from pydantic import SecretStr

from keel.coach.risk import addresses, parsing
from keel.coach.risk.errors import (
    BadAddress,
    MalformedReply,
    RateLimited,
    RiskError,
    ScanPending,
    ScanUnavailable,
    TokenNotFound,
)
from keel.coach.risk.report import RiskReport
from keel.core.resilience import CircuitBreaker, CircuitOpen

__all__ = ["BREAKER_NAME", "GoPlusClient", "TokenScanner", "default_breaker"]

log = structlog.get_logger("keel.coach.risk.goplus")

BREAKER_NAME: Final = "coach_goplus"
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
RATE_LIMIT_RETRY_SECONDS: Final = 60.0
PENDING_RETRY_AFTER_SECONDS: Final = 10.0
# A token is renewed this long before GoPlus says it expires.
_TOKEN_MARGIN_SECONDS: Final = 60.0
_MAX_BODY_BYTES: Final = 2_000_000

SCANS = Counter(
    "coach_goplus_scans_total",
    "GoPlus token scans by chain and result (ok, pending, bad_address, not_found, "
    "rate_limited, unavailable, malformed, circuit_open)",
    ["chain", "result"],
)
REQUEST_SECONDS = Histogram(
    "coach_goplus_request_seconds",
    "Time of one GoPlus HTTP exchange, answered or not",
    ["chain"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0),
)


class TokenScanner(Protocol):
    async def scan(self, chain: str | None, address: str) -> RiskReport:
        """GoPlus's security report of the token ``address`` on ``chain`` (an id or name;
        None: guessed from the address, Ethereum for 0x). Raises a
        :class:`~keel.coach.risk.errors.RiskError`: BadAddress, UnsupportedChain,
        TokenNotFound, ScanPending, RateLimited or ScanUnavailable."""
        ...


def default_breaker(name: str = BREAKER_NAME, *, timeout_seconds: float) -> CircuitBreaker:
    """Opens when half of at least 4 exchanges within a minute failed (5xx, 5000, timeout,
    network, a reply that is not an envelope); probes with one call after 30 s. Each exchange
    is cut at ``timeout_seconds``."""
    return CircuitBreaker(
        name,
        minimum_calls=4,
        failure_rate_threshold=0.5,
        window_seconds=60.0,
        open_seconds=30.0,
        half_open_max_calls=1,
        call_timeout_seconds=timeout_seconds,
        failure_on=(ScanUnavailable,),
    )


class GoPlusClient:
    """:class:`TokenScanner` on GoPlus's REST API, over the caller's ``httpx.AsyncClient``.

    ``base_url`` is the API root (``https://api.gopluslabs.io``). ``timeout_seconds`` bounds
    each exchange. ``app_key``/``app_secret``: optional; both set means authenticated calls.
    A code-2 (pending) reply is asked again once after ``pending_retry_seconds``. ``sleep``
    and ``clock`` (Unix seconds, for the access token's expiry) are injectable for tests.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        app_key: SecretStr | None = None,
        app_secret: SecretStr | None = None,
        pending_retry_seconds: float = 2.0,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("the GoPlus base URL must be an http or https URL")
        if (app_key is None) != (app_secret is None):
            raise ValueError("set both the GoPlus app key and secret, or neither")
        if timeout_seconds <= 0 or pending_retry_seconds < 0:
            raise ValueError("timeout_seconds must be positive, pending_retry_seconds not negative")
        self._http = http
        self._base = base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._app_key = app_key
        self._app_secret = app_secret
        self._pending_retry = pending_retry_seconds
        self._breaker = breaker or default_breaker(timeout_seconds=timeout_seconds)
        self._clock = clock
        self._sleep = sleep
        self._access_token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"GoPlusClient({self._base!r}, auth={self._app_key is not None})"

    async def scan(self, chain: str | None, address: str) -> RiskReport:
        token = addresses.parse_token(address, chain)  # bad input never reaches GoPlus
        try:
            report = await self._scan(token)
        except RiskError as exc:
            SCANS.labels(token.chain, _result_label(exc)).inc()
            raise
        SCANS.labels(token.chain, "ok").inc()
        return report

    async def _scan(self, token: addresses.Token) -> RiskReport:
        if token.is_solana:
            path = "/api/v1/solana/token_security"
        else:
            path = f"/api/v1/token_security/{token.chain}"
        params = {"contract_addresses": token.address}
        envelope = await self._get(token.chain, path, params)
        if envelope.get("code") == 2:
            # GoPlus is analysing a token it had not seen: usually ready within seconds.
            await self._sleep(self._pending_retry)
            envelope = await self._get(token.chain, path, params)
        code = envelope.get("code")
        if code == 2:
            raise ScanPending(retry_after=PENDING_RETRY_AFTER_SECONDS)
        if code != 1:
            self._access_token = None  # if our token went stale, the next scan renews it
            raise MalformedReply(f"GoPlus answered with code {str(code)[:16]}")
        entry = _entry(envelope.get("result"), token)
        return parsing.parse_result(token.chain, token.address, entry)

    async def _get(self, chain: str, path: str, params: dict[str, str]) -> Mapping[str, Any]:
        """The envelope of a GET; raises for the codes that are not about the token."""
        headers = await self._auth_headers(chain)
        envelope = await self._exchange(chain, "GET", path, params=params, headers=headers)
        if envelope.get("code") == 2004:
            raise BadAddress("GoPlus says this is not a valid token address on that chain.")
        return envelope

    async def _exchange(
        self,
        chain: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        """One request through the breaker, its JSON envelope back. Outages (and replies that
        are not an envelope) raise :class:`ScanUnavailable` and count as breaker failures;
        rate limits raise :class:`RateLimited` and do not."""

        async def attempt() -> tuple[httpx.Response, Mapping[str, Any] | None]:
            try:
                response = await self._http.request(
                    method,
                    self._base + path,
                    params=params,
                    headers=headers,
                    json=body,
                    timeout=self._timeout,
                )
            except httpx.HTTPError as exc:
                raise ScanUnavailable(f"GoPlus did not answer ({type(exc).__name__}).") from exc
            if response.status_code >= 500:
                raise ScanUnavailable(f"GoPlus answered HTTP {response.status_code}.")
            if response.status_code == 429:
                return response, None
            return response, _envelope(response)

        started = time.perf_counter()
        try:
            response, envelope = await self._breaker.call(attempt)
        except CircuitOpen as exc:
            retry_in = exc.extra.get("retry_in")
            retry = float(retry_in) if isinstance(retry_in, int | float) else 30.0
            raise ScanUnavailable(
                "GoPlus has been failing; scans pause for a moment.", retry_after=max(retry, 1.0)
            ) from exc
        except TimeoutError as exc:
            raise ScanUnavailable("GoPlus did not answer in time.") from exc
        finally:
            REQUEST_SECONDS.labels(chain).observe(time.perf_counter() - started)
        if envelope is None or envelope.get("code") == 4029:
            raise RateLimited(retry_after=_retry_after(response))
        return envelope

    async def _auth_headers(self, chain: str) -> dict[str, str]:
        if self._app_key is None or self._app_secret is None:
            return {}
        async with self._token_lock:  # concurrent scans share one token request
            if self._access_token is None or self._clock() >= self._token_expires_at:
                await self._refresh_token(chain, self._app_key, self._app_secret)
            assert self._access_token is not None
            return {"Authorization": self._access_token}

    async def _refresh_token(self, chain: str, app_key: SecretStr, app_secret: SecretStr) -> None:
        now = int(self._clock())
        key = app_key.get_secret_value()
        sign = hashlib.sha1(  # noqa: S324 - GoPlus's signature scheme, not our choice
            f"{key}{now}{app_secret.get_secret_value()}".encode()
        ).hexdigest()
        envelope = await self._exchange(
            chain, "POST", "/api/v1/token", body={"app_key": key, "time": now, "sign": sign}
        )
        result = envelope.get("result")
        token = result.get("access_token") if isinstance(result, Mapping) else None
        if envelope.get("code") != 1 or not isinstance(token, str) or not token:
            log.warning("goplus_auth_refused", code=str(envelope.get("code"))[:16])
            raise ScanUnavailable("GoPlus refused our app key; scans are unavailable.")
        expires_in = result.get("expires_in") if isinstance(result, Mapping) else None
        lifetime = float(expires_in) if isinstance(expires_in, int | float | Decimal) else 3600.0
        self._access_token = token
        self._token_expires_at = now + max(lifetime - _TOKEN_MARGIN_SECONDS, 1.0)
        log.info("goplus_token_renewed", expires_in=lifetime)


def _envelope(response: httpx.Response) -> Mapping[str, Any]:
    """The JSON envelope of a reply; code 5000 (GoPlus's own failure) raises."""
    if len(response.content) > _MAX_BODY_BYTES:
        raise MalformedReply("GoPlus sent an oversized reply")
    try:
        # Decimal keeps GoPlus's numbers exact (they are mostly strings anyway).
        envelope: object = json.loads(response.content, parse_float=Decimal)
    except ValueError as exc:
        raise MalformedReply(f"GoPlus answered HTTP {response.status_code} without JSON") from exc
    if not isinstance(envelope, Mapping):
        raise MalformedReply("GoPlus answered without an envelope")
    code = envelope.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise MalformedReply("GoPlus answered without a result code")
    if code == 5000:
        raise ScanUnavailable("GoPlus reported an internal error.")
    return envelope


def _entry(result: object, token: addresses.Token) -> object:
    """The token's entry in ``result`` (keyed by the address, lower-case on EVM)."""
    if result is None or (isinstance(result, Mapping | list) and not result):
        raise TokenNotFound()
    if not isinstance(result, Mapping):
        raise MalformedReply("GoPlus sent a result that is not an object")
    entry = result.get(token.address)
    if entry is None and not token.is_solana:
        entry = next(
            (value for key, value in result.items() if str(key).lower() == token.address), None
        )
    if entry is None or (isinstance(entry, Mapping) and not entry):
        raise TokenNotFound()
    return entry


def _retry_after(response: httpx.Response) -> float:
    header = response.headers.get("Retry-After", "")
    try:
        seconds = float(header)
    except ValueError:
        return RATE_LIMIT_RETRY_SECONDS
    return min(max(seconds, 1.0), 3600.0) if seconds == seconds else RATE_LIMIT_RETRY_SECONDS


def _result_label(exc: RiskError) -> str:
    if isinstance(exc, MalformedReply):
        return "malformed"
    if isinstance(exc, ScanUnavailable) and isinstance(exc.__cause__, CircuitOpen):
        return "circuit_open"
    labels: tuple[tuple[type[RiskError], str], ...] = (
        (ScanPending, "pending"),
        (BadAddress, "bad_address"),
        (TokenNotFound, "not_found"),
        (RateLimited, "rate_limited"),
        (ScanUnavailable, "unavailable"),
    )
    return next((label for kind, label in labels if isinstance(exc, kind)), "error")
