"""The coins coinpay accepts: which chain carries them, their decimals, their HD family.

A *coin* is what a merchant asks for (``USDT_BNB``); its *chain* is the network the funds move on
(``BNB``); its *asset* is what it is priced as (``USDT``). Token decimals differ per chain: USDT
has 6 on Ethereum and 18 on BNB Chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from keel.coinpay.errors import UnsupportedCoin
from keel.coinpay.wallets import Family


@dataclass(frozen=True)
class Coin:
    symbol: str
    name: str
    chain: str
    asset: str
    family: Family
    decimals: int
    contract: str | None = None  # ERC-20 contract or SPL mint
    evm_chain_id: int | None = None

    @property
    def is_token(self) -> bool:
        return self.contract is not None


_EVM_IDS = {"ETH": 1, "POL": 137, "BNB": 56}

_COINS: tuple[Coin, ...] = (
    Coin("BTC", "Bitcoin", "BTC", "BTC", Family.BTC, 8),
    Coin("BCH", "Bitcoin Cash", "BCH", "BCH", Family.BCH, 8),
    Coin("LTC", "Litecoin", "LTC", "LTC", Family.LTC, 8),
    Coin("DOGE", "Dogecoin", "DOGE", "DOGE", Family.DOGE, 8),
    Coin("ETH", "Ethereum", "ETH", "ETH", Family.EVM, 18, evm_chain_id=1),
    Coin("POL", "Polygon", "POL", "POL", Family.EVM, 18, evm_chain_id=137),
    Coin("BNB", "BNB Chain", "BNB", "BNB", Family.EVM, 18, evm_chain_id=56),
    Coin("SOL", "Solana", "SOL", "SOL", Family.SOL, 9),
    Coin("XRP", "XRP Ledger", "XRP", "XRP", Family.XRP, 6),
    Coin("ADA", "Cardano", "ADA", "ADA", Family.ADA, 6),
    Coin(
        "USDT_ETH", "Tether (Ethereum)", "ETH", "USDT", Family.EVM, 6,
        "0xdAC17F958D2ee523a2206206994597C13D831ec7", 1,
    ),
    Coin(
        "USDC_ETH", "USD Coin (Ethereum)", "ETH", "USDC", Family.EVM, 6,
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 1,
    ),
    Coin(
        "USDT_POL", "Tether (Polygon)", "POL", "USDT", Family.EVM, 6,
        "0xc2132D05D31c914a87C6611C10748AEb04B58e8F", 137,
    ),
    Coin(
        "USDC_POL", "USD Coin (Polygon)", "POL", "USDC", Family.EVM, 6,
        "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", 137,
    ),
    Coin(
        "USDT_BNB", "Tether (BNB Chain)", "BNB", "USDT", Family.EVM, 18,
        "0x55d398326f99059fF775485246999027B3197955", 56,
    ),
    Coin(
        "USDC_BNB", "USD Coin (BNB Chain)", "BNB", "USDC", Family.EVM, 18,
        "0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d", 56,
    ),
    Coin(
        "USDT_SOL", "Tether (Solana)", "SOL", "USDT", Family.SOL, 6,
        "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
    ),
    Coin(
        "USDC_SOL", "USD Coin (Solana)", "SOL", "USDC", Family.SOL, 6,
        "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
    ),
)  # fmt: skip

COINS: dict[str, Coin] = {coin.symbol: coin for coin in _COINS}

# Confirmations before a payment counts as confirmed, per chain (overridable in settings).
# Roughly "a reorg this deep is not worth worrying about for a typical invoice".
DEFAULT_CONFIRMATIONS: dict[str, int] = {
    "BTC": 1,
    "BCH": 2,
    "LTC": 2,
    "DOGE": 6,
    "ETH": 12,
    "POL": 64,
    "BNB": 15,
    "SOL": 32,
    "XRP": 1,
    "ADA": 15,
}


def get_coin(symbol: str) -> Coin:
    """The coin for ``symbol`` (case-insensitive); raises UnsupportedCoin."""
    coin = COINS.get(symbol.strip().upper()) if isinstance(symbol, str) else None
    if coin is None:
        supported = ", ".join(COINS)
        raise UnsupportedCoin(f"Unsupported blockchain {symbol!r}; supported: {supported}")
    return coin


def coins_on(chain: str) -> list[str]:
    """The symbols of every coin carried by ``chain`` (its native coin and its tokens)."""
    return [coin.symbol for coin in COINS.values() if coin.chain == chain]
