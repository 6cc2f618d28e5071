"""Rates from a JSON file: the offline default for development, tests and demos."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from pathlib import Path

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates._http import loads_decimal
from keel.coinpay.rates.model import Clock, Quote, parse_rate, utc_now

FIXTURE_FILE = "fixture_rates.json"


def _load(text: str, origin: str) -> dict[tuple[str, str], Decimal]:
    try:
        data = loads_decimal(text)
    except ValueError as exc:
        raise ValueError(f"{origin}: not valid JSON") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{origin}: expected an object of base -> {{quote: rate}}")
    rates: dict[tuple[str, str], Decimal] = {}
    for base, by_quote in data.items():
        if not isinstance(by_quote, dict):
            raise ValueError(f"{origin}: {base} must map quote -> rate")
        for quote, value in by_quote.items():
            if not isinstance(value, str):
                raise ValueError(f"{origin}: {base}/{quote} must be a string, got {value!r}")
            try:
                rate = parse_rate("fixture", value)
            except RateUnavailable as exc:
                raise ValueError(f"{origin}: {base}/{quote} is not a positive rate") from exc
            rates[(base.upper(), quote.upper())] = rate
    return rates


class FixtureRateProvider:
    """Fixed rates from ``path`` (default: the ``fixture_rates.json`` shipped here).

    The file maps ``{"BTC": {"USD": "97250.00", ...}, ...}``; values are strings so
    they are exact. ``as_of`` is always ``clock()``: fixture rates never go stale.
    """

    name = "fixture"

    def __init__(self, path: Path | str | None = None, *, clock: Clock = utc_now) -> None:
        if path is None:
            text = resources.files("keel.coinpay.rates").joinpath(FIXTURE_FILE).read_text("utf-8")
            origin = FIXTURE_FILE
        else:
            text = Path(path).read_text("utf-8")
            origin = str(path)
        self._rates = _load(text, origin)
        self._clock = clock

    def pairs(self) -> frozenset[tuple[str, str]]:
        """Every (base, quote) this provider can answer."""
        return frozenset(self._rates)

    async def get(self, base: str, quote: str) -> Quote:
        """Raises ``RateUnavailable`` for a pair the file does not hold."""
        b, q = base.strip().upper(), quote.strip().upper()
        rate = self._rates.get((b, q))
        if rate is None:
            raise RateUnavailable(f"fixture: no rate for {b}/{q}", provider=self.name)
        return Quote(base=b, quote=q, rate=rate, source=self.name, as_of=self._clock())
