"""Which network a UTXO chain runs on, and how that network writes addresses and paths.

A UTXO chain (BTC, LTC, DOGE, BCH) runs on its mainnet, its public testnet, or a private
regtest; an operator chooses per chain (``KEEL_COINPAY_<CHAIN>_NETWORK``). The choice decides
two things, kept together in one :class:`UtxoNetwork` row so they cannot drift apart:

* **the address encoding**: the bech32 HRP (``ltc``/``tltc``/``rltc``, ``bc``/``tb``/``bcrt``),
  the base58check versions of P2PKH and P2SH, the CashAddr prefix of Bitcoin Cash
  (``bitcoincash``/``bchtest``/``bchreg``), as each chain's own node writes them
  (Bitcoin Core, Litecoin Core, Dogecoin Core and BCHN ``chainparams.cpp``);
* **the BIP44 coin type** of the derivation path: the chain's SLIP-44 number on mainnet
  (0 BTC, 2 LTC, 3 DOGE, 145 BCH), **1 on every test network** (SLIP-44 "Testnet (all
  coins)", what Bitcoin Core and Litecoin Core descriptor wallets derive there). A key used on
  mainnet is never derived for a test network, nor the other way round, so a mistake in
  configuration cannot put a test network's address on a real key or the reverse.

Other families (EVM, SOL, XRP, ADA) write one address form on every network of theirs: they
have mainnet only here, and asking for another network of theirs is a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = ["NODE_CHAINS", "Network", "UtxoNetwork", "check_network", "coin_type", "utxo_network"]


class Network(StrEnum):
    """A UTXO chain's network: its mainnet, its public testnet, or a private regtest."""

    MAINNET = "mainnet"
    TESTNET = "testnet"
    REGTEST = "regtest"


NODE_CHAINS: Final = MappingProxyType(
    {
        # What a Bitcoin-Core-compatible node answers in getblockchaininfo's "chain". Bitcoin's
        # testnet4 and signet write addresses exactly as testnet3 does (tb1…, m/n…, 2…).
        "main": Network.MAINNET,
        "test": Network.TESTNET,
        "testnet4": Network.TESTNET,
        "signet": Network.TESTNET,
        "regtest": Network.REGTEST,
    }
)
"""A node's own name for its chain, mapped to the network it writes addresses for."""


@dataclass(frozen=True, slots=True)
class UtxoNetwork:
    """How one UTXO family writes addresses on one network, and its BIP44 coin type there.

    ``p2pkh`` and ``p2sh`` are base58check version bytes; ``p2sh_legacy`` is a second P2SH
    version still accepted on input and rewritten to ``p2sh`` (Litecoin's Bitcoin-style ``3…``
    on mainnet, ``2…`` on its test networks; Bitcoin Cash's legacy forms become CashAddr).
    ``segwit_hrp`` is None where the chain has no segwit (DOGE, BCH); ``cashaddr_hrp`` only for
    BCH, where ``p2pkh``/``p2sh`` are then the legacy base58 versions.
    """

    coin_type: int
    p2pkh: bytes
    p2sh: bytes
    segwit_hrp: str | None = None
    p2sh_legacy: bytes | None = None
    cashaddr_hrp: str | None = None


# Keyed by family name (``Family`` is a StrEnum, so ``Family.LTC`` finds ``"LTC"``): families.py
# builds its paths from this table, so this module cannot import it.
_NETWORKS: Final[Mapping[tuple[str, Network], UtxoNetwork]] = MappingProxyType(
    {
        ("BTC", Network.MAINNET): UtxoNetwork(0, b"\x00", b"\x05", segwit_hrp="bc"),
        ("BTC", Network.TESTNET): UtxoNetwork(1, b"\x6f", b"\xc4", segwit_hrp="tb"),
        ("BTC", Network.REGTEST): UtxoNetwork(1, b"\x6f", b"\xc4", segwit_hrp="bcrt"),
        # Litecoin moved P2SH off Bitcoin's version (M… / Q…); the old one is still decoded.
        ("LTC", Network.MAINNET): UtxoNetwork(
            2, b"\x30", b"\x32", segwit_hrp="ltc", p2sh_legacy=b"\x05"
        ),
        ("LTC", Network.TESTNET): UtxoNetwork(
            1, b"\x6f", b"\x3a", segwit_hrp="tltc", p2sh_legacy=b"\xc4"
        ),
        ("LTC", Network.REGTEST): UtxoNetwork(
            1, b"\x6f", b"\x3a", segwit_hrp="rltc", p2sh_legacy=b"\xc4"
        ),
        ("DOGE", Network.MAINNET): UtxoNetwork(3, b"\x1e", b"\x16"),
        ("DOGE", Network.TESTNET): UtxoNetwork(1, b"\x71", b"\xc4"),
        ("DOGE", Network.REGTEST): UtxoNetwork(1, b"\x6f", b"\xc4"),
        ("BCH", Network.MAINNET): UtxoNetwork(145, b"\x00", b"\x05", cashaddr_hrp="bitcoincash"),
        ("BCH", Network.TESTNET): UtxoNetwork(1, b"\x6f", b"\xc4", cashaddr_hrp="bchtest"),
        ("BCH", Network.REGTEST): UtxoNetwork(1, b"\x6f", b"\xc4", cashaddr_hrp="bchreg"),
    }
)


def check_network(family: str, network: Network) -> Network:
    """Return ``network`` if ``family`` has it; ValueError for a test network of a family
    that has mainnet only here (EVM, SOL, XRP, ADA)."""
    network = Network(network)
    if network is not Network.MAINNET and (family, network) not in _NETWORKS:
        raise ValueError(f"{family} has no {network} here: only UTXO chains choose a network")
    return network


def utxo_network(family: str, network: Network) -> UtxoNetwork:
    """The parameters of a UTXO ``family`` on ``network``; ValueError for any other family."""
    try:
        return _NETWORKS[(family, Network(network))]
    except KeyError:
        raise ValueError(f"{family} is not a UTXO family") from None


def coin_type(family: str, network: Network) -> int:
    """The BIP44 coin type of a UTXO ``family``'s paths on ``network`` (1 on every test
    network); ValueError for any other family."""
    return utxo_network(family, network).coin_type
