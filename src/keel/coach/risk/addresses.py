"""Which token a user pasted: the chain and the canonical address GoPlus keys its result by.

EVM: ``0x`` and 40 hex digits, on Ethereum unless the user names another chain
(``/scan 0x… bsc`` or ``/scan 0x… 56``); lower-cased, as GoPlus keys it. Solana: a base58
string of 32-44 characters that decodes to exactly 32 bytes; kept as written (base58 is
case-sensitive). Anything else raises :class:`BadAddress` or :class:`UnsupportedChain`, whose
``detail`` is one line a user can read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from keel.coach.risk.errors import BadAddress, UnsupportedChain

__all__ = [
    "CHAINS",
    "SOLANA",
    "Chain",
    "Token",
    "chain_name",
    "parse_chain",
    "parse_query",
    "parse_token",
]

SOLANA: Final = "solana"
DEFAULT_EVM_CHAIN: Final = "1"


@dataclass(frozen=True)
class Chain:
    """A chain GoPlus token security covers: its id as GoPlus spells it (a decimal EVM chain
    id, or ``solana``), a display name, and the names a user may type for it."""

    id: str
    name: str
    aliases: tuple[str, ...]


_CHAINS = (
    Chain("1", "Ethereum", ("eth", "ethereum", "mainnet", "erc20")),
    Chain("56", "BNB Smart Chain", ("bsc", "bnb", "bep20", "binance")),
    Chain("8453", "Base", ("base",)),
    Chain("137", "Polygon", ("polygon", "matic", "pol")),
    Chain("42161", "Arbitrum One", ("arbitrum", "arb")),
    Chain("10", "Optimism", ("optimism", "op")),
    Chain("43114", "Avalanche C-Chain", ("avalanche", "avax")),
    Chain("250", "Fantom", ("fantom", "ftm")),
    Chain("324", "zkSync Era", ("zksync", "zksync-era")),
    Chain("59144", "Linea", ("linea",)),
    Chain("534352", "Scroll", ("scroll",)),
    Chain("81457", "Blast", ("blast",)),
    Chain("5000", "Mantle", ("mantle",)),
    Chain("204", "opBNB", ("opbnb",)),
    Chain("25", "Cronos", ("cronos", "cro")),
    Chain("100", "Gnosis", ("gnosis", "xdai")),
    Chain(SOLANA, "Solana", ("sol", "solana", "spl")),
)
CHAINS: Final = MappingProxyType({chain.id: chain for chain in _CHAINS})
_BY_NAME: Final = MappingProxyType(
    {alias: chain.id for chain in _CHAINS for alias in (chain.id, *chain.aliases)}
)

_EVM = re.compile(r"0x[0-9a-fA-F]{40}")
_BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_DIGIT: Final = MappingProxyType({c: i for i, c in enumerate(_BASE58_ALPHABET)})


@dataclass(frozen=True)
class Token:
    """A token to scan: ``chain`` is a key of :data:`CHAINS`, ``address`` canonical."""

    chain: str
    address: str

    @property
    def is_solana(self) -> bool:
        return self.chain == SOLANA


def chain_name(chain: str) -> str:
    """The display name of a chain id (the id itself when unknown)."""
    known = CHAINS.get(chain)
    return known.name if known else chain


def parse_chain(text: str) -> str:
    """The chain id a user meant by ``text`` (``bsc``, ``56``, ``Base``...)."""
    chain = _BY_NAME.get(text.strip().lower())
    if chain is None:
        names = ", ".join(chain.aliases[0] for chain in _CHAINS)
        raise UnsupportedChain(f"Unknown chain {text.strip()[:20]!r}. Try one of: {names}.")
    return chain


def parse_token(address: str, chain: str | None = None) -> Token:
    """The token at ``address`` on ``chain`` (a name or id; None: guessed from the address,
    Ethereum for an EVM address)."""
    text = address.strip()
    wanted = parse_chain(chain) if chain is not None and chain.strip() else None
    if _EVM.fullmatch(text):
        if wanted == SOLANA:
            raise BadAddress("That is an EVM address (0x…), not a Solana one.")
        return Token(wanted or DEFAULT_EVM_CHAIN, text.lower())
    if _is_solana_key(text):
        if wanted not in (None, SOLANA):
            raise BadAddress(f"That is a Solana address, not a {chain_name(wanted)} one.")
        return Token(SOLANA, text)
    raise BadAddress()


def parse_query(text: str) -> Token:
    """The token in a command's argument text: an address, optionally with a chain before or
    after it (``0x… bsc``, ``base 0x…``)."""
    words = text.split()
    if not words or len(words) > 2:
        raise BadAddress("Send a token address, optionally with a chain: /scan 0x… bsc")
    if len(words) == 1:
        return parse_token(words[0])
    first, second = words
    # The address is the long word; the other one names the chain.
    address, chain = (first, second) if len(first) >= len(second) else (second, first)
    return parse_token(address, chain)


def _is_solana_key(text: str) -> bool:
    # 32 bytes in base58 take 32 (31 leading zero bytes) to 44 characters.
    if not 32 <= len(text) <= 44:
        return False
    return _base58_length(text) == 32


def _base58_length(text: str) -> int | None:
    """How many bytes ``text`` decodes to, or None when it is not base58. Leading ``1`` s are
    leading zero bytes; the rest is a big-endian number."""
    value = 0
    for char in text:
        digit = _BASE58_DIGIT.get(char)
        if digit is None:
            return None
        value = value * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return zeros + (value.bit_length() + 7) // 8
