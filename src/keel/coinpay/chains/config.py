"""Which chains this installation watches, and through which nodes: read from the environment.

Per chain (``ETH``, ``LTC``, … as in ``keel.coinpay.assets``):

* ``KEEL_COINPAY_<CHAIN>_RPC_URLS``: comma-separated http(s) URLs tried in order with failover,
  credentials as ``http://user:pass@host:port`` (``%``-escaped). Unset or empty: the chain has
  no node, and live payments on it are refused.
* ``KEEL_COINPAY_<CHAIN>_CONFIRMATIONS``: the default confirmation policy (0 to 10,000; unset:
  ``assets.DEFAULT_CONFIRMATIONS``).
* ``KEEL_COINPAY_<CHAIN>_CHAIN_ID`` (EVM chains only): the EIP-155 chain id sweeps are signed
  for and the nodes must report (unset: the mainnet id of ``assets``, e.g. 1 for ETH; a test
  network or anvil, 31337, sets its own). A signature for one chain id is void on every other.
* ``KEEL_COINPAY_<CHAIN>_API``: what the URLs speak, where a chain has a choice: ``jsonrpc``
  (Bitcoin-Core-compatible or the chain's own JSON-RPC; the default everywhere but ADA) or
  ``esplora`` (the Esplora REST API, BTC and LTC); ADA speaks ``koios``.
* ``KEEL_COINPAY_<CHAIN>_NETWORK`` (UTXO chains: BTC, LTC, DOGE, BCH): ``mainnet`` (the
  default), ``testnet`` or ``regtest``. It decides how the chain's live payment and payout
  addresses are written and derived (``keel.coinpay.wallets.networks``), and the node must be
  on that network (``UtxoSource`` checks). Test mode's simulated chains always use mainnet.

Per token coin (``USDC_ETH``, ``USDT_SOL``…): ``KEEL_COINPAY_<COIN>_CONTRACT`` replaces the
mainnet ERC-20 contract or SPL mint of ``assets`` (a test network, or a chain's own deployment).

:func:`load` reads any mapping (``os.environ`` in production, a dict in tests) into frozen
values and refuses a bad value, or a key naming no chain or token, with one
:class:`~keel.coinpay.errors.InvalidChainConfig` listing every problem. Messages never repeat
a URL's user, password, path or query.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import httpx

from keel.coinpay.assets import COINS, DEFAULT_CONFIRMATIONS
from keel.coinpay.errors import InvalidAddress, InvalidChainConfig
from keel.coinpay.wallets import UTXO_FAMILIES, Network, validate_address

__all__ = [
    "APIS",
    "MAX_CHAIN_ID",
    "MAX_CONFIRMATIONS",
    "MAX_RPC_URLS",
    "ChainConfig",
    "ChainsConfig",
    "Token",
    "load",
]

MAX_CONFIRMATIONS: Final = 10_000
MAX_RPC_URLS: Final = 16
# EIP-2294: the largest chain id whose EIP-155 ``v`` (id * 2 + 36) still fits 64 bits.
MAX_CHAIN_ID: Final = (2**64 - 1) // 2 - 36

_PREFIX: Final = "KEEL_COINPAY_"
_KEY: Final = re.compile(
    r"KEEL_COINPAY_(?P<name>[A-Z0-9_]+?)_(?P<what>RPC_URLS|CONFIRMATIONS|CONTRACT|CHAIN_ID)"
)
_NETWORK_KEY: Final = re.compile(r"KEEL_COINPAY_(?P<name>[A-Z0-9_]+?)_(?P<what>NETWORK|API)")
#: The APIs a chain's providers may speak, the default first.
_OTHER_APIS: Final = {"BTC": ("esplora",), "LTC": ("esplora",)}
APIS: Final = MappingProxyType(
    {
        chain: ("koios",) if chain == "ADA" else ("jsonrpc", *_OTHER_APIS.get(chain, ()))
        for chain in DEFAULT_CONFIRMATIONS
    }
)
_DIGITS: Final = re.compile(r"[0-9]{1,6}", re.ASCII)
_CHAIN_ID_DIGITS: Final = re.compile(r"[1-9][0-9]{0,18}", re.ASCII)
# DNS labels as httpx leaves them (lower case, IDNs as xn--); "_" for container service names.
_LABEL: Final = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME: Final = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?", re.ASCII)


@dataclass(frozen=True, slots=True)
class Token:
    """A token coin on its chain: ``coin`` (``USDC_ETH``), its contract or mint in canonical
    form (EIP-55 for EVM), and its decimals."""

    coin: str
    contract: str
    decimals: int


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """One chain: its provider URLs (may hold credentials, so not in ``repr``), its default
    confirmations, its token coins with their contracts and, for an EVM chain, its EIP-155
    chain id (None for other families)."""

    chain: str
    rpc_urls: tuple[str, ...] = field(repr=False)
    confirmations: int
    tokens: tuple[Token, ...]
    chain_id: int | None = None
    network: Network = Network.MAINNET  # UTXO chains only; the others are always MAINNET
    api: str = "jsonrpc"  # what the URLs speak: one of APIS[chain]

    @property
    def configured(self) -> bool:
        """True when the chain has at least one node to watch it through."""
        return bool(self.rpc_urls)


@dataclass(frozen=True, slots=True)
class ChainsConfig:
    """Every chain coinpay knows, configured or not."""

    chains: Mapping[str, ChainConfig]

    def chain(self, chain: str) -> ChainConfig:
        """The configuration of ``chain`` (upper case); KeyError for a chain coinpay lacks."""
        return self.chains[chain]

    @property
    def configured(self) -> tuple[str, ...]:
        """The chains with a node, in ``assets`` order."""
        return tuple(name for name, config in self.chains.items() if config.configured)


def load(environ: Mapping[str, str]) -> ChainsConfig:
    """The chain configuration in ``environ``; raises InvalidChainConfig naming every bad key."""
    problems: list[str] = []
    urls: dict[str, tuple[str, ...]] = {}
    confirmations = dict(DEFAULT_CONFIRMATIONS)
    contracts: dict[str, str] = {}
    chain_ids = {
        coin.chain: coin.evm_chain_id
        for coin in COINS.values()
        if coin.contract is None and coin.evm_chain_id is not None
    }
    networks: dict[str, Network] = {}
    apis: dict[str, str] = {}
    for key, value in environ.items():
        if not key.upper().startswith(_PREFIX):
            continue
        network_key = _NETWORK_KEY.fullmatch(key.upper())
        if network_key is not None:
            name = network_key["name"]
            try:
                if network_key["what"] == "API":
                    apis[name] = _api(name, value)
                else:
                    networks[name] = _network(name, value)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
            continue
        match = _KEY.fullmatch(key.upper())
        if match is None:
            continue  # another coinpay setting (pydantic-settings reads those)
        name, what = match["name"], match["what"]
        try:
            if what == "CONTRACT":
                contracts[name] = _contract(name, value)
            elif name not in DEFAULT_CONFIRMATIONS:
                raise ValueError(f"no chain {name!r}; chains: {', '.join(DEFAULT_CONFIRMATIONS)}")
            elif what == "RPC_URLS":
                urls[name] = _rpc_urls(value)
            elif what == "CHAIN_ID":
                if name not in chain_ids:
                    raise ValueError(f"{name} is not an EVM chain: it has no chain id")
                chain_ids[name] = _chain_id(value)
            else:
                confirmations[name] = _confirmations(value)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise InvalidChainConfig("invalid chain configuration: " + "; ".join(sorted(problems)))
    chains = {
        chain: ChainConfig(
            chain=chain,
            rpc_urls=urls.get(chain, ()),
            confirmations=confirmations[chain],
            tokens=tuple(
                Token(coin.symbol, contracts.get(coin.symbol, contract), coin.decimals)
                for coin in COINS.values()
                if coin.chain == chain and (contract := coin.contract) is not None
            ),
            chain_id=chain_ids.get(chain),
            network=networks.get(chain, Network.MAINNET),
            api=apis.get(chain, APIS[chain][0]),
        )
        for chain in DEFAULT_CONFIRMATIONS
    }
    return ChainsConfig(MappingProxyType(chains))


def _rpc_urls(value: str) -> tuple[str, ...]:
    if not value.strip():
        return ()
    entries = [entry.strip() for entry in value.split(",")]
    if len(entries) > MAX_RPC_URLS:
        raise ValueError(f"at most {MAX_RPC_URLS} URLs")
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        where = f"URL {number}"
        if not entry:
            raise ValueError(f"{where} is empty (a stray comma?)")
        try:
            url = httpx.URL(entry)
        except httpx.InvalidURL:
            raise ValueError(f"{where} is not a URL") from None
        if url.scheme not in ("http", "https"):
            raise ValueError(f"{where} must start with http:// or https://")
        if not _valid_host(url.host):
            raise ValueError(f"{where} has no valid host")
        if url.port is not None and not 0 < url.port < 65536:
            raise ValueError(f"{where} has a port outside 1-65535")
        if url.fragment:
            raise ValueError(f"{where} has a #fragment")
        if str(url) in seen:
            raise ValueError(f"{where} repeats an earlier one")
        seen.add(str(url))
    return tuple(entries)


def _valid_host(host: str) -> bool:
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _HOSTNAME.fullmatch(host) is not None and len(host) <= 253
    return True


def _confirmations(value: str) -> int:
    text = value.strip()
    if _DIGITS.fullmatch(text) is None or int(text) > MAX_CONFIRMATIONS:
        raise ValueError(f"must be a whole number from 0 to {MAX_CONFIRMATIONS}")
    return int(text)


def _chain_id(value: str) -> int:
    text = value.strip()
    if _CHAIN_ID_DIGITS.fullmatch(text) is None or int(text) > MAX_CHAIN_ID:
        raise ValueError(f"must be a whole number from 1 to {MAX_CHAIN_ID} (EIP-2294)")
    return int(text)


def _contract(symbol: str, value: str) -> str:
    coin = COINS.get(symbol)
    if coin is None:
        tokens = ", ".join(s for s, c in COINS.items() if c.contract is not None)
        raise ValueError(f"no token {symbol!r}; tokens: {tokens}")
    if coin.contract is None:
        raise ValueError(f"{symbol} is its chain's own coin: it has no contract")
    try:
        return validate_address(coin.family, value)
    except InvalidAddress as exc:
        raise ValueError(f"not a contract address for {coin.chain}: {exc.detail}") from None


def _network(chain: str, value: str) -> Network:
    if chain not in DEFAULT_CONFIRMATIONS:
        raise ValueError(f"no chain {chain!r}; chains: {', '.join(DEFAULT_CONFIRMATIONS)}")
    if COINS[chain].family not in UTXO_FAMILIES:
        utxo = ", ".join(c for c in DEFAULT_CONFIRMATIONS if COINS[c].family in UTXO_FAMILIES)
        raise ValueError(f"{chain} has no network setting: only UTXO chains ({utxo}) have one")
    try:
        return Network(value.strip().lower())
    except ValueError:
        raise ValueError(f"must be one of {', '.join(Network)}") from None


def _api(chain: str, value: str) -> str:
    if chain not in APIS:
        raise ValueError(f"no chain {chain!r}; chains: {', '.join(DEFAULT_CONFIRMATIONS)}")
    api = value.strip().lower()
    if api not in APIS[chain]:
        raise ValueError(f"{chain} providers speak {' or '.join(APIS[chain])}, not {value!r}")
    return api
