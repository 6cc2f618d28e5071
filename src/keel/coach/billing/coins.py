"""The coins coach sells subscriptions in through coinpay, and exact unit arithmetic.

A *coin* is coinpay's code for what is paid (``USDC_SOL``); coach's invoices store it as the
*chain* the funds move on (``SOL``) and the *asset* (``USDC``), amounts in the asset's base
units. Decimals are the chain's, so ``0.0038 ETH`` is ``3800000000000000`` wei.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from keel.coach.billing.errors import UnsupportedCoin


@dataclass(frozen=True)
class Coin:
    code: str  # coinpay's coin code
    chain: str
    asset: str
    decimals: int


# XRP is left out: a payment there needs a destination tag, which coach_invoices cannot hold.
_COINS = (
    Coin("BTC", "BTC", "BTC", 8),
    Coin("LTC", "LTC", "LTC", 8),
    Coin("DOGE", "DOGE", "DOGE", 8),
    Coin("BCH", "BCH", "BCH", 8),
    Coin("ETH", "ETH", "ETH", 18),
    Coin("POL", "POL", "POL", 18),
    Coin("BNB", "BNB", "BNB", 18),
    Coin("SOL", "SOL", "SOL", 9),
    Coin("ADA", "ADA", "ADA", 6),
    Coin("USDT_ETH", "ETH", "USDT", 6),
    Coin("USDC_ETH", "ETH", "USDC", 6),
    Coin("USDT_POL", "POL", "USDT", 6),
    Coin("USDC_POL", "POL", "USDC", 6),
    Coin("USDT_BNB", "BNB", "USDT", 18),
    Coin("USDC_BNB", "BNB", "USDC", 18),
    Coin("USDT_SOL", "SOL", "USDT", 6),
    Coin("USDC_SOL", "SOL", "USDC", 6),
)
COINS: dict[str, Coin] = {c.code: c for c in _COINS}
_BY_CHAIN_ASSET = {(c.chain, c.asset): c for c in _COINS}


def get(code: str) -> Coin:
    """The coin for coinpay's code (any case); :class:`UnsupportedCoin` otherwise."""
    coin = COINS.get(code.upper())
    if coin is None:
        raise UnsupportedCoin(f"Unsupported coin {code[:20]!r}; supported: {', '.join(COINS)}")
    return coin


def of(chain: str, asset: str) -> Coin:
    """The coin an invoice row names by chain and asset."""
    coin = _BY_CHAIN_ASSET.get((chain, asset))
    if coin is None:
        raise UnsupportedCoin(f"Unsupported coin {asset} on {chain}")
    return coin


def to_units(amount: Decimal, decimals: int) -> int:
    """``Decimal("0.0038"), 18`` -> ``3800000000000000``, exactly; ``ValueError`` for an amount
    that is negative, not finite or finer than one base unit."""
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"not a payable amount: {amount}")
    numerator, denominator = amount.as_integer_ratio()
    units, rest = divmod(numerator * 10**decimals, denominator)
    if rest:
        raise ValueError(f"{amount} has more than {decimals} decimals")
    return int(units)


def format_units(units: int, decimals: int) -> str:
    """``3800000000000000, 18`` -> ``"0.0038"``: plain digits, no exponent, no trailing zeros."""
    if units < 0:
        raise ValueError("units must be non-negative")
    whole, fraction = divmod(units, 10**decimals)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{str(fraction).zfill(decimals).rstrip('0')}"
