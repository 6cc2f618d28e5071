"""Coinbase ``/v2/prices/{BASE}-{QUOTE}/spot``: Coinbase's spot price."""

from __future__ import annotations

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates._http import HttpRateSource, field, get_json
from keel.coinpay.rates.model import Quote, normalise_pair, parse_rate


class CoinbaseProvider(HttpRateSource):
    """Spot price from Coinbase; ``as_of`` is the time we asked.

    Symbols are checked against the supported sets before they go into the URL path.
    """

    name = "coinbase"
    BASE_URL = "https://api.coinbase.com"

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
