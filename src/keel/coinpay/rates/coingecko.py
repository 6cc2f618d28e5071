"""CoinGecko ``/api/v3/simple/price``: an aggregate price with its own update time."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates._http import DEFAULT_TIMEOUT_SECONDS, field, get_json
from keel.coinpay.rates.model import Quote, normalise_pair, parse_rate

#: Our symbol -> CoinGecko coin id.
COINGECKO_IDS: dict[str, str] = {
    "BTC": "bitcoin",
    "LTC": "litecoin",
    "BCH": "bitcoin-cash",
    "DOGE": "dogecoin",
    "ETH": "ethereum",
    "POL": "polygon-ecosystem-token",
    "BNB": "binancecoin",
    "SOL": "solana",
    "XRP": "ripple",
    "ADA": "cardano",
    "USDT": "tether",
    "USDC": "usd-coin",
}


class CoinGeckoProvider:
    """Prices from CoinGecko; ``as_of`` is CoinGecko's ``last_updated_at``.

    ``api_key`` (optional) is sent as ``x-cg-demo-api-key``; the keyless public API is
    tightly rate-limited, so wrap this provider in ``CachedRateProvider``.
    """

    name = "coingecko"
    BASE_URL = "https://api.coingecko.com"

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str = BASE_URL,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        api_key: str | None = None,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._headers = {"x-cg-demo-api-key": api_key} if api_key else {}

    async def get(self, base: str, quote: str) -> Quote:
        """Raises ``RateUnavailable`` when CoinGecko cannot answer for this pair."""
        b, q = normalise_pair(self.name, base, quote)
        coin_id, vs = COINGECKO_IDS[b], q.lower()
        body = await get_json(
            self._client,
            self.name,
            f"{self._base_url}/api/v3/simple/price",
            timeout_seconds=self._timeout,
            params={"ids": coin_id, "vs_currencies": vs, "include_last_updated_at": "true"},
            headers=self._headers,
        )
        entry = field(self.name, body, coin_id)
        rate = parse_rate(self.name, field(self.name, entry, vs))
        updated = field(self.name, entry, "last_updated_at")
        if isinstance(updated, bool) or not isinstance(updated, int) or updated <= 0:
            raise RateUnavailable(
                f"{self.name}: last_updated_at is not a timestamp: {updated!r}",
                provider=self.name,
            )
        try:
            as_of = datetime.fromtimestamp(updated, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise RateUnavailable(
                f"{self.name}: last_updated_at out of range: {updated}", provider=self.name
            ) from exc
        return Quote(base=b, quote=q, rate=rate, source=self.name, as_of=as_of)
