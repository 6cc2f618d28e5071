"""The chain source for a configured chain: :class:`~keel.coinpay.chains.evm.EvmSource` or
:class:`~keel.coinpay.chains.utxo.UtxoSource` over an :class:`~keel.coinpay.chains.rpc.RpcClient`
of its provider URLs; :class:`~keel.coinpay.chains.xrp.XrpSource` over one framed for rippled."""

from __future__ import annotations

import httpx

from keel.coinpay.assets import COINS
from keel.coinpay.chains.config import ChainConfig
from keel.coinpay.chains.evm import EvmSource
from keel.coinpay.chains.rpc import DEFAULT_TIMEOUT_SECONDS, RpcClient
from keel.coinpay.chains.utxo import TRANSIENT_CODES, UtxoSource
from keel.coinpay.chains.xrp import XrpSource, framed_client
from keel.coinpay.errors import InvalidChainConfig
from keel.coinpay.wallets import UTXO_FAMILIES, Family

__all__ = ["open_source"]


def open_source(
    config: ChainConfig,
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    client: httpx.AsyncClient | None = None,
) -> EvmSource | UtxoSource | XrpSource:
    """A source reading ``config.chain`` through its providers; close it with ``aclose()``.
    Raises InvalidChainConfig for a chain with no URL or none of these two families (yet)."""
    if not config.configured:
        raise InvalidChainConfig(f"{config.chain} has no RPC URL to watch it through")
    family = COINS[config.chain].family
    if config.api != "jsonrpc":
        raise InvalidChainConfig(f"{config.chain}: no {config.api} chain source yet")
    if family is Family.EVM:
        rpc = RpcClient(
            config.chain, config.rpc_urls, timeout_seconds=timeout_seconds, client=client
        )
        return EvmSource(config.chain, rpc, config.tokens)
    if family in UTXO_FAMILIES:
        rpc = RpcClient(
            config.chain,
            config.rpc_urls,
            timeout_seconds=timeout_seconds,
            transient_codes=TRANSIENT_CODES,
            client=client,
        )
        return UtxoSource(config.chain, rpc, network=config.network)
    if family is Family.XRP:
        xrp_rpc = framed_client(
            config.chain, config.rpc_urls, timeout_seconds=timeout_seconds, client=client
        )
        return XrpSource(xrp_rpc, config.chain)
    raise InvalidChainConfig(f"{config.chain}: no JSON-RPC chain source for {family} yet")
