"""coinpay's merchant API, reached exactly as any outside client reaches it.

coach never imports coinpay (products are separate failure domains): it calls coinpay's public
HTTP API with a business API key, relative to coinpay's API root (``…/coinpay/api`` under
``keel serve``; CoinPayPortal's SDK calls the same root its base URL)::

    POST /payments/create   the body CoinPayPortal's SDK and CLI send (``payment create``)
    GET  /payments/{id}     the payment as coinpay holds it now

Both send ``Authorization: Bearer <API key>``. Every call is bounded by a timeout and goes
through a circuit breaker, so a coinpay outage costs ``/subscribe`` a timeout or two, and
nothing once the breaker is open. A call that got no usable answer is retried once when that
is safe: always for the GET, and for a create only with an ``Idempotency-Key`` (coinpay then
answers a repeat with the payment it already made, so a lost reply never makes two).

Money is read and written exactly: the fiat amount goes out as a JSON number written from the
Decimal's digits, and numbers in replies are read as Decimal, never through a float.

Errors (both :class:`CoinpayError`, a :class:`keel.core.errors.KeelError`):

* :class:`CoinpayUnavailable`: no usable answer (network, timeout, 408/429/5xx, an open
  breaker, a reply we cannot read). Counted by the breaker; try again later.
* :class:`CoinpayRefused`: coinpay answered no (another 4xx: a bad key, no wallet for the
  coin, an unknown payment). Carries coinpay's problem detail and code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import simplejson
from prometheus_client import Histogram
from pydantic import SecretStr

from keel.core import errors
from keel.core.logging import get_logger
from keel.core.resilience import CircuitBreaker, CircuitOpen, retry

log = get_logger("keel.coach.coinpay")

DEFAULT_TIMEOUT_SECONDS = 10.0
_SNIPPET = 200  # characters of an unreadable reply kept in an error

CALL_SECONDS = Histogram(
    "coach_coinpay_call_seconds",
    "Time of one call to coinpay's API, by operation and outcome "
    "(ok, refused, unavailable, circuit_open)",
    ["operation", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


class CoinpayError(errors.KeelError):
    """coinpay's API could not do what coach asked."""

    code = "coinpay_error"
    status = 502
    title = "Payment gateway error"


class CoinpayUnavailable(CoinpayError, errors.Unavailable):
    """coinpay's API gave no usable answer (network, timeout, 408/429/5xx, open breaker,
    unreadable reply); try again later."""

    code = "coinpay_unavailable"
    status = 503
    title = "Payment gateway unavailable"


class CoinpayRefused(CoinpayError):
    """coinpay's API answered no (a 4xx other than 408/429); ``coinpay_status``,
    ``coinpay_code`` and ``detail`` are coinpay's own."""

    code = "coinpay_refused"

    def __init__(self, detail: str, *, coinpay_status: int, coinpay_code: str) -> None:
        super().__init__(detail, coinpay_status=coinpay_status, coinpay_code=coinpay_code)
        self.coinpay_status = coinpay_status
        self.coinpay_code = coinpay_code


@dataclass(frozen=True)
class CoinpayPayment:
    """A payment as coinpay reports it. ``crypto_amount`` is in whole coins, exact."""

    id: str
    status: str  # pending, confirming, confirmed, forwarding, forwarded, expired, failed
    blockchain: str  # coinpay's coin code: BTC, ETH, USDC_SOL, ...
    payment_address: str
    crypto_amount: Decimal
    amount_usd: Decimal
    expires_at: datetime
    destination_tag: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


class CoinpayApi(Protocol):
    """What coach asks of coinpay."""

    async def create_payment(
        self,
        amount_usd: Decimal,
        blockchain: str,
        description: str,
        metadata: Mapping[str, str],
        *,
        idempotency_key: str | None = None,
    ) -> CoinpayPayment:
        """Ask for ``amount_usd`` (USD, exact) paid in ``blockchain`` (coinpay's coin code). A
        repeated ``idempotency_key`` returns the first payment instead of a second one. Raises
        :class:`CoinpayUnavailable` or :class:`CoinpayRefused`."""
        ...

    async def get_payment(self, payment_id: str) -> CoinpayPayment:
        """The payment now; :class:`CoinpayRefused` (404) for one coinpay does not know."""
        ...


def default_breaker() -> CircuitBreaker:
    """Opens when half of at least 4 calls in a minute fail or take over 5 s."""
    return CircuitBreaker(
        "coach-coinpay",
        failure_rate_threshold=0.5,
        minimum_calls=4,
        window_seconds=60.0,
        slow_call_seconds=5.0,
        open_seconds=30.0,
        half_open_max_calls=1,
        failure_on=(CoinpayUnavailable,),
    )


class CoinpayClient:
    """:class:`CoinpayApi` over coinpay's HTTP API, on a caller-owned ``httpx.AsyncClient``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: SecretStr,
        business_id: str,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retries: int = 1,
        retry_base_delay: float = 0.2,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("coinpay base_url must be an absolute http(s) URL")
        if not api_key.get_secret_value() or not business_id:
            raise ValueError("coinpay needs an API key and a business id")
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._business_id = business_id
        self._timeout = timeout_seconds
        self._retries = retries
        self._retry_base_delay = retry_base_delay
        self.breaker = breaker or default_breaker()

    def __repr__(self) -> str:  # never the key
        return f"CoinpayClient(base_url={self._base_url!r}, business_id={self._business_id!r})"

    async def create_payment(
        self,
        amount_usd: Decimal,
        blockchain: str,
        description: str,
        metadata: Mapping[str, str],
        *,
        idempotency_key: str | None = None,
    ) -> CoinpayPayment:
        if not amount_usd.is_finite() or amount_usd <= 0:
            raise ValueError("amount_usd must be a positive amount")
        # CoinPayPortal's `payment create` body: amount as a JSON number, coin upper-cased.
        body = {
            "business_id": self._business_id,
            "amount": amount_usd,
            "currency": "USD",
            "blockchain": blockchain.upper(),
            "description": description,
            "metadata": dict(metadata),
        }
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        reply = await self._request(
            "create_payment", "POST", "/payments/create", body, headers, safe=bool(headers)
        )
        return _payment(reply)

    async def get_payment(self, payment_id: str) -> CoinpayPayment:
        path = f"/payments/{quote(payment_id, safe='')}"
        return _payment(await self._request("get_payment", "GET", path, None, {}, safe=True))

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        *,
        safe: bool,
    ) -> Any:
        """One call, retried when ``safe`` and no usable answer came (never when the breaker
        is open: that is the breaker's answer)."""
        try:
            return await retry(
                lambda: self._call(operation, method, path, body, headers),
                attempts=1 + (self._retries if safe else 0),
                base_delay=self._retry_base_delay,
                retry_on=(CoinpayUnavailable,),
            )
        except CircuitOpen as exc:
            raise CoinpayUnavailable("coinpay: circuit open") from exc

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str],
    ) -> Any:
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with self.breaker.guard():
                return await self._exchange(method, path, body, headers)
        except CircuitOpen:
            outcome = "circuit_open"
            raise
        except CoinpayRefused:
            outcome = "refused"
            raise
        except CoinpayUnavailable as exc:
            outcome = "unavailable"
            log.warning("coinpay_unavailable", operation=operation, reason=exc.detail)
            raise
        finally:
            CALL_SECONDS.labels(operation, outcome).observe(time.perf_counter() - started)

    async def _exchange(
        self, method: str, path: str, body: Mapping[str, Any] | None, headers: Mapping[str, str]
    ) -> Any:
        request_headers = {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            **headers,
        }
        content = None if body is None else simplejson.dumps(body, use_decimal=True).encode()
        try:
            # httpx bounds each phase; asyncio.timeout bounds the whole exchange.
            async with asyncio.timeout(self._timeout):
                response = await self._client.request(
                    method,
                    self._base_url + path,
                    content=content,
                    headers=request_headers,
                    timeout=self._timeout,
                )
        except (httpx.HTTPError, TimeoutError) as exc:
            raise CoinpayUnavailable(f"coinpay: {type(exc).__name__}") from exc
        reply = _json(response)
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise CoinpayUnavailable(f"coinpay: HTTP {status}", coinpay_status=status)
        if status >= 400:
            detail, code = _problem(reply)
            raise CoinpayRefused(
                f"coinpay: {detail}", coinpay_status=status, coinpay_code=code or "http_error"
            )
        if not 200 <= status < 300 or not isinstance(reply, dict):
            raise CoinpayUnavailable(f"coinpay: unexpected HTTP {status} reply")
        return reply


def _json(response: httpx.Response) -> Any:
    try:
        # Decimal for every JSON number with a fraction: amounts never pass through a float.
        return simplejson.loads(response.content, use_decimal=True)
    except (ValueError, RecursionError):
        return None


def _problem(reply: Any) -> tuple[str, str | None]:
    """coinpay's error detail and code (problem+json beside CoinPayPortal's ``error``)."""
    if not isinstance(reply, dict):
        return "refused the request", None
    detail = reply.get("detail") or reply.get("error") or "refused the request"
    code = reply.get("code")
    return str(detail)[:_SNIPPET], str(code)[:64] if isinstance(code, str) else None


def _payment(reply: Mapping[str, Any]) -> CoinpayPayment:
    """The payment in a reply: ``{"payment": {...}}`` as coinpay and CoinPayPortal wrap it, or
    bare. A reply missing what we need is :class:`CoinpayUnavailable`: retrying may help,
    and it must never become an invoice with a wrong amount."""
    raw = reply.get("payment", reply)
    try:
        if not isinstance(raw, Mapping):
            raise ValueError("no payment object")
        tag = raw.get("destination_tag")
        metadata = raw.get("metadata") or {}
        payment = CoinpayPayment(
            id=_text(raw, "id"),
            status=_text(raw, "status"),
            blockchain=_text(raw, "blockchain").upper(),
            payment_address=_text(raw, "payment_address"),
            crypto_amount=_decimal(raw.get("crypto_amount")),
            amount_usd=_decimal(raw.get("amount")),
            expires_at=_instant(raw.get("expires_at")),
            destination_tag=int(tag) if tag is not None else None,
            metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
        )
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise CoinpayUnavailable(f"coinpay: unreadable payment: {exc}") from exc
    if payment.crypto_amount <= 0:
        raise CoinpayUnavailable("coinpay: unreadable payment: crypto_amount is not positive")
    return payment


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value or len(value) > 256:
        raise ValueError(f"{key}: expected a non-empty string")
    return value


def _decimal(value: object) -> Decimal:
    """A JSON number (read as Decimal or int) or a decimal string, exactly."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValueError(f"expected a decimal amount, got {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError("amount is not finite")
    return amount


def _instant(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expires_at: expected an ISO 8601 time")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("expires_at: expected a time with its UTC offset")
    return moment.astimezone(UTC)


__all__ = [
    "CoinpayApi",
    "CoinpayClient",
    "CoinpayError",
    "CoinpayPayment",
    "CoinpayRefused",
    "CoinpayUnavailable",
    "default_breaker",
]
