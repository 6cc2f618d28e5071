"""Derivation families, their BIP32 paths and the index range they share.

A family is one seed-and-path scheme whose index counter is shared by every
coin that uses it: ETH, POL, BNB, BASE and their tokens all draw from EVM.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

from keel.coinpay.errors import IndexExhausted
from keel.coinpay.wallets.networks import Network, check_network, coin_type

MAX_INDEX: Final = 2**31 - 1
"""Highest usable index: the last non-hardened BIP32 child number."""


class Family(StrEnum):
    """A derivation family: one seed + path scheme with its own index counter."""

    BTC = "BTC"
    LTC = "LTC"
    BCH = "BCH"
    DOGE = "DOGE"
    EVM = "EVM"
    SOL = "SOL"
    XRP = "XRP"
    ADA = "ADA"


UTXO_FAMILIES: Final = frozenset({Family.BTC, Family.LTC, Family.BCH, Family.DOGE})
"""Families whose addresses can be derived from an account xpub (watch-only)."""

# Each path is split where derivation becomes per-payment: the prefix is derived
# once per HDRoot and cached, the leaf is derived per index. Keeping the split in
# one table means the displayed path and the derived key cannot drift apart.
# These are the mainnet paths; a UTXO family's test networks swap in coin type 1
# (``cached_prefix``, ``wallets.networks``).
CACHED_PREFIX: Final = MappingProxyType(
    {
        Family.BTC: "m/84'/0'/0'/0",
        Family.LTC: "m/84'/2'/0'/0",
        Family.BCH: "m/44'/145'/0'/0",
        Family.DOGE: "m/44'/3'/0'/0",
        Family.EVM: "m/44'/60'/0'/0",
        # Solana wallets (Phantom, Solflare) put the index in the hardened account.
        Family.SOL: "m/44'/501'",
        Family.XRP: "m/44'/144'/0'/0",
        # CIP-1852 payment chain; the staking key is m/1852'/1815'/0'/2/0.
        Family.ADA: "m/1852'/1815'/0'/0",
    }
)
LEAF: Final = MappingProxyType(
    {family: ("{index}'/0'" if family is Family.SOL else "{index}") for family in Family}
)
# The platform's fee wallet of an account family: it pays the network fee of a token sweep
# (EVM gas sent ahead to a deposit address; Solana's fee payer), so a payment address never
# needs coins of its own. Off every payment path: EVM payments stay in account 0's receive
# chain, Solana payments end in ``/0'``.
FEE_WALLET_PATHS: Final = MappingProxyType(
    {
        Family.EVM: "m/44'/60'/1'/0/0",
        Family.SOL: "m/44'/501'/0'/1'",
        # XRP: activates business receiving accounts with the reserve (ADR 0023); account 1.
        Family.XRP: "m/44'/144'/1'/0/0",
    }
)
PATH_TEMPLATES: Final = MappingProxyType(
    {family: f"{CACHED_PREFIX[family]}/{LEAF[family]}" for family in Family}
)
"""Full mainnet BIP32 path per family with an ``{index}`` placeholder, for display."""


def check_index(index: int) -> int:
    """Return ``index`` if it is in [0, MAX_INDEX].

    Raises ``IndexExhausted`` above MAX_INDEX (the family has run out), ``ValueError``
    if negative and ``TypeError`` if not an int.
    """
    # bool is an int subclass; True as an index is always a bug upstream.
    if not isinstance(index, int) or isinstance(index, bool):
        raise TypeError(f"index must be an int, not {type(index).__name__}")
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    if index > MAX_INDEX:
        raise IndexExhausted(f"index {index} is beyond the last usable index {MAX_INDEX}")
    return index


def cached_prefix(family: Family, network: Network = Network.MAINNET) -> str:
    """The hardened prefix of ``family``'s receive chain on ``network``: ``CACHED_PREFIX`` on
    mainnet; on a UTXO family's test network the same path with coin type 1
    (``m/84'/1'/0'/0``). ValueError for a test network of a family without one."""
    prefix = CACHED_PREFIX[family]
    if check_network(family, network) is Network.MAINNET:
        return prefix
    root, purpose, _coin, *rest = prefix.split("/")
    return "/".join([root, purpose, f"{coin_type(family, network)}'", *rest])


def path_for(family: Family, index: int, network: Network = Network.MAINNET) -> str:
    """Return the BIP32 path of ``family`` at ``index`` on ``network``, e.g.
    ``m/84'/0'/0'/0/7`` (mainnet) or ``m/84'/1'/0'/0/7`` (a test network).

    Raises like ``check_index`` for an out-of-range index, and ValueError for a test network
    of a family that has none.
    """
    leaf = LEAF[family].format(index=check_index(index))
    return f"{cached_prefix(family, network)}/{leaf}"
