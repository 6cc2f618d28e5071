"""LemonSqueezy's API, for re-checking a subscription whose renewal is overdue.

Webhooks are how we learn of changes; this adapter is how we ask when one seems missing
(``GET /v1/subscriptions/{id}``, JSON:API, ``Authorization: Bearer <API key>``). Every call is
bounded by a timeout and goes through a circuit breaker, so a LemonSqueezy outage costs a
request no more than one timeout, and none once the breaker is open.
"""

from __future__ import annotations

import asyncio
import json
from typing import Protocol
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from keel.core.resilience import CircuitBreaker, CircuitOpen
from keel.roadmaps.billing import resources
from keel.roadmaps.billing.errors import ProviderRefused, ProviderUnavailable
from keel.roadmaps.billing.resources import ResourceError, SubscriptionReport
from keel.roadmaps.settings import RoadmapsSettings

DEFAULT_TIMEOUT_SECONDS = 5.0
_JSON_API = "application/vnd.api+json"
_SNIPPET = 200


class SubscriptionSource(Protocol):
    async def fetch(self, subscription_id: str) -> SubscriptionReport:
        """The subscription as LemonSqueezy has it now. Raises :class:`ProviderUnavailable`
        when it cannot be asked (network, timeout, 401/403/429/5xx, open breaker, a garbled
        answer) and :class:`ProviderRefused` when it answers no (any other 4xx, e.g. 404)."""
        ...


def default_breaker() -> CircuitBreaker:
    """Opens when half of at least 4 calls in a minute fail or take over 3 s."""
    return CircuitBreaker(
        "lemonsqueezy",
        failure_rate_threshold=0.5,
        minimum_calls=4,
        window_seconds=60.0,
        slow_call_seconds=3.0,
        open_seconds=30.0,
        half_open_max_calls=1,
        failure_on=(ProviderUnavailable,),
    )


class LemonSqueezyApi:
    """:class:`SubscriptionSource` over LemonSqueezy's REST API."""

    BASE_URL = "https://api.lemonsqueezy.com"

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: SecretStr,
        *,
        base_url: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._client = client
        self._api_key = api_key
        self._base_url = (base_url or self.BASE_URL).rstrip("/")
        self._timeout = timeout_seconds
        self.breaker = breaker or default_breaker()

    @classmethod
    def from_settings(
        cls, settings: RoadmapsSettings, client: httpx.AsyncClient
    ) -> LemonSqueezyApi | None:
        """The adapter, or None when no API key is configured (local state only)."""
        if settings.lemonsqueezy_api_key is None:
            return None
        return cls(client, settings.lemonsqueezy_api_key, base_url=settings.lemonsqueezy_api_url)

    async def fetch(self, subscription_id: str) -> SubscriptionReport:
        url = f"{self._base_url}/v1/subscriptions/{quote(subscription_id, safe='')}"
        try:
            async with self.breaker.guard():
                response = await self._get(url)
        except CircuitOpen as exc:
            raise ProviderUnavailable(
                "LemonSqueezy: circuit open", provider="lemonsqueezy"
            ) from exc
        try:
            body = json.loads(response.content)
            data = body["data"] if isinstance(body, dict) else None
            report = resources.subscription(data)
        except (ValueError, KeyError, RecursionError, ResourceError) as exc:
            raise ProviderUnavailable(
                f"LemonSqueezy: unreadable subscription: {exc}", provider="lemonsqueezy"
            ) from exc
        if report.id != subscription_id:
            raise ProviderUnavailable(
                f"LemonSqueezy answered for subscription {report.id}, not {subscription_id}",
                provider="lemonsqueezy",
            )
        return report

    async def _get(self, url: str) -> httpx.Response:
        headers = {
            "Accept": _JSON_API,
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
        }
        try:
            # httpx bounds each phase; asyncio.timeout bounds the whole exchange.
            async with asyncio.timeout(self._timeout):
                response = await self._client.get(url, headers=headers, timeout=self._timeout)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise ProviderUnavailable(
                f"LemonSqueezy: {type(exc).__name__}", provider="lemonsqueezy"
            ) from exc
        # A refused key (401/403) makes LemonSqueezy as unusable as an outage: count it.
        if response.status_code in (401, 403, 429) or response.status_code >= 500:
            raise ProviderUnavailable(
                f"LemonSqueezy: HTTP {response.status_code}",
                provider="lemonsqueezy",
                status=response.status_code,
            )
        if response.status_code != 200:
            raise ProviderRefused(
                f"LemonSqueezy: HTTP {response.status_code}: {response.text[:_SNIPPET]}",
                provider="lemonsqueezy",
                status=response.status_code,
            )
        return response
