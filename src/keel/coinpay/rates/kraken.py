"""Kraken ``/0/public/Ticker``: the last trade price of a spot market."""

from __future__ import annotations

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates._http import HttpRateSource, field, get_json
from keel.coinpay.rates.model import Quote, normalise_pair, parse_rate

#: Our symbol -> Kraken asset code, where they differ.
KRAKEN_ASSETS: dict[str, str] = {"BTC": "XBT", "DOGE": "XDG"}


def kraken_pair(base: str, quote: str) -> str:
    """The pair name we ask for, e.g. ``XBTUSD``."""
    return f"{KRAKEN_ASSETS.get(base, base)}{KRAKEN_ASSETS.get(quote, quote)}"


def kraken_result_keys(base: str, quote: str) -> tuple[str, ...]:
    """Keys Kraken may answer under: legacy ``XXBTZUSD`` style, or the plain pair name."""
    b, q = KRAKEN_ASSETS.get(base, base), KRAKEN_ASSETS.get(quote, quote)
    return (f"X{b}Z{q}", f"{b}{q}", f"X{b}{q}", f"{b}Z{q}")


class KrakenProvider(HttpRateSource):
    """Last trade price (``c[0]``) from Kraken; ``as_of`` is the time we asked."""

    name = "kraken"
    BASE_URL = "https://api.kraken.com"

    async def get(self, base: str, quote: str) -> Quote:
        """Raises ``RateUnavailable`` when Kraken cannot answer for this pair."""
        b, q = normalise_pair(self.name, base, quote)
        body = await get_json(
            self._client,
            self.name,
            f"{self._base_url}/0/public/Ticker",
            timeout_seconds=self._timeout,
            params={"pair": kraken_pair(b, q)},
        )
        errors = field(self.name, body, "error")
        if not isinstance(errors, list):
            raise RateUnavailable(f"{self.name}: 'error' is not a list", provider=self.name)
        if errors:
            raise RateUnavailable(
                f"{self.name}: {', '.join(map(str, errors))}", provider=self.name, errors=errors
            )
        result = field(self.name, body, "result")
        if not isinstance(result, dict):
            raise RateUnavailable(f"{self.name}: 'result' is not an object", provider=self.name)
        key = next((k for k in kraken_result_keys(b, q) if k in result), None)
        if key is None:
            if len(result) != 1:
                raise RateUnavailable(
                    f"{self.name}: no ticker for {kraken_pair(b, q)} in result",
                    provider=self.name,
                )
            key = next(iter(result))
        last_trade = field(self.name, result[key], "c")
        if not isinstance(last_trade, list) or not last_trade:
            raise RateUnavailable(f"{self.name}: 'c' is not [price, volume]", provider=self.name)
        rate = parse_rate(self.name, last_trade[0])
        return Quote(base=b, quote=q, rate=rate, source=self.name, as_of=self._clock())
