"""Coinbase ``/v2/prices/{BASE}-{QUOTE}/spot``: Coinbase's spot price."""

from __future__ import annotations

import httpx

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates._http import DEFAULT_TIMEOUT_SECONDS, field, get_json
from keel.coinpay.rates.model import Clock, Quote, normalise_pair, parse_rate, utc_now


class CoinbaseProvider:
    """Spot price from Coinbase; ``as_of`` is the time we asked.

    Symbols are checked against the supported sets before they go into the URL path.
    """

    name = "coinbase"
    BASE_URL = "https://api.coinbase.com"

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str = BASE_URL,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._clock = clock

    async def get(self, base: str, quote: str) -> Quote:
        """Raises ``RateUnavailable`` when Coinbase cannot answer for this pair."""
        b, q = normalise_pair(self.name, base, quote)
        body = await get_json(
            self._client,
            self.name,
            f"{self._base_url}/v2/prices/{b}-{q}/spot",
            timeout_seconds=self._timeout,
        )
        data = field(self.name, body, "data")
        answered = (field(self.name, data, "base"), field(self.name, data, "currency"))
        if answered != (b, q):
            raise RateUnavailable(
                f"{self.name}: asked for {b}-{q}, answered {answered[0]}-{answered[1]}",
                provider=self.name,
            )
        rate = parse_rate(self.name, field(self.name, data, "amount"))
        return Quote(base=b, quote=q, rate=rate, source=self.name, as_of=self._clock())
