"""The rate model every provider shares: ``Quote``, ``RateProvider`` and the symbol sets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from keel.coinpay.errors import RateUnavailable, UnsupportedCoin, UnsupportedCurrency

#: Crypto assets the gateway prices (``Quote.base``).
SUPPORTED_BASES: frozenset[str] = frozenset(
    {"BTC", "LTC", "BCH", "DOGE", "ETH", "POL", "BNB", "SOL", "XRP", "ADA", "USDT", "USDC"}
)
#: Fiat currencies the gateway prices in (``Quote.quote``).
SUPPORTED_QUOTES: frozenset[str] = frozenset({"USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF"})

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: the current time, UTC-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Quote:
    """``rate`` units of fiat ``quote`` buy one whole unit of crypto ``base``, as of ``as_of``."""

    base: str
    quote: str
    rate: Decimal
    source: str
    as_of: datetime

    def __post_init__(self) -> None:
        if type(self.rate) is not Decimal:
            raise TypeError(f"rate must be a Decimal, not {type(self.rate).__name__}")
        if not self.rate.is_finite() or self.rate <= 0:
            raise ValueError(f"rate must be a finite positive Decimal, got {self.rate}")
        if self.base != self.base.upper() or self.quote != self.quote.upper():
            raise ValueError("base and quote must be upper-case symbols")
        if self.as_of.tzinfo is None or self.as_of.utcoffset() is None:
            raise ValueError("as_of must be timezone-aware")
        object.__setattr__(self, "as_of", self.as_of.astimezone(UTC))


class RateProvider(Protocol):
    """Something that can price one unit of a crypto asset in a fiat currency."""

    name: str

    async def get(self, base: str, quote: str) -> Quote:
        """Return the current rate for ``base`` in ``quote`` (case-insensitive symbols).

        Raises ``RateUnavailable`` when it cannot answer: the source is down, slow,
        rate-limited or answered nonsense. A pair the provider does not know raises
        ``RateUnavailable`` too, so an aggregate can simply ask another provider.
        """
        ...


def check_pair(base: str, quote: str) -> tuple[str, str]:
    """Normalise a pair to upper case; reject symbols the gateway does not support.

    For validating user input before asking for a rate (a 400, not a 503).
    Raises ``UnsupportedCoin`` or ``UnsupportedCurrency``.
    """
    b, q = base.strip().upper(), quote.strip().upper()
    if b not in SUPPORTED_BASES:
        raise UnsupportedCoin(f"Unsupported coin: {base!r}", coin=base)
    if q not in SUPPORTED_QUOTES:
        raise UnsupportedCurrency(f"Unsupported currency: {quote!r}", currency=quote)
    return b, q


def normalise_pair(provider: str, base: str, quote: str) -> tuple[str, str]:
    """Upper-case a pair for a provider; anything outside the supported sets is unavailable."""
    b, q = base.strip().upper(), quote.strip().upper()
    if b not in SUPPORTED_BASES or q not in SUPPORTED_QUOTES:
        raise RateUnavailable(f"{provider}: no rate for {base}/{quote}", provider=provider)
    return b, q


def parse_rate(provider: str, value: object) -> Decimal:
    """Turn a provider's price (Decimal, int or numeric string; never float) into a rate."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise RateUnavailable(f"{provider}: price is not a number: {value!r}", provider=provider)
    try:
        rate = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation as exc:
        raise RateUnavailable(
            f"{provider}: price is not a number: {value!r}", provider=provider
        ) from exc
    if not rate.is_finite() or rate <= 0:
        raise RateUnavailable(f"{provider}: price is not positive: {value!r}", provider=provider)
    return rate
