"""The chain source for a configured chain: :class:`~keel.coinpay.chains.evm.EvmSource`,
:class:`~keel.coinpay.chains.utxo.UtxoSource` or :class:`~keel.coinpay.chains.solana.SolanaSource`
over an :class:`~keel.coinpay.chains.rpc.RpcClient` of its provider URLs,
:class:`~keel.coinpay.chains.cardano.KoiosSource` over a
:class:`~keel.coinpay.chains.koios.KoiosClient` of them (``KEEL_COINPAY_ADA_API=koios``),
:class:`~keel.coinpay.chains.esplora.EsploraSource` over a
:class:`~keel.coinpay.chains.rest.RestClient` where they speak Esplora (``_API=esplora``), or
:class:`~keel.coinpay.chains.xrp.XrpSource` over an RPC client framed for rippled."""

from __future__ import annotations

import httpx

from keel.coinpay.assets import COINS
from keel.coinpay.chains.cardano import KoiosSource
from keel.coinpay.chains.config import ChainConfig
from keel.coinpay.chains.esplora import EsploraSource
from keel.coinpay.chains.evm import EvmSource
from keel.coinpay.chains.koios import KoiosClient
from keel.coinpay.chains.rest import RestClient
from keel.coinpay.chains.rpc import DEFAULT_TIMEOUT_SECONDS, RpcClient
from keel.coinpay.chains.solana import SolanaSource
from keel.coinpay.chains.utxo import TRANSIENT_CODES, UtxoSource
from keel.coinpay.chains.xrp import XrpSource, framed_client
from keel.coinpay.errors import InvalidChainConfig
from keel.coinpay.wallets import UTXO_FAMILIES, Family, Network

__all__ = ["open_source"]


def open_source(
    config: ChainConfig,
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    client: httpx.AsyncClient | None = None,
) -> EvmSource | UtxoSource | KoiosSource | SolanaSource | EsploraSource | XrpSource:
    """A source reading ``config.chain`` through its providers; close it with ``aclose()``.
    Raises InvalidChainConfig for a chain with no URL or none of these families (yet)."""
    if not config.configured:
        raise InvalidChainConfig(f"{config.chain} has no RPC URL to watch it through")
    family = COINS[config.chain].family
    if config.api == "koios":
        koios = KoiosClient(
            config.chain, config.rpc_urls, timeout_seconds=timeout_seconds, client=client
        )
        return KoiosSource(koios, chain=config.chain)
    if config.api == "esplora":
        return _esplora(config, timeout_seconds, client)
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
    if family is Family.SOL:
        rpc = RpcClient(
            config.chain, config.rpc_urls, timeout_seconds=timeout_seconds, client=client
        )
        return SolanaSource(config.chain, rpc, config.tokens)
    if family is Family.XRP:
        xrp_rpc = framed_client(
            config.chain, config.rpc_urls, timeout_seconds=timeout_seconds, client=client
        )
        return XrpSource(xrp_rpc, config.chain)
    raise InvalidChainConfig(f"{config.chain}: no JSON-RPC chain source for {family} yet")


def _esplora(
    config: ChainConfig, timeout_seconds: float, client: httpx.AsyncClient | None
) -> EsploraSource:
    if config.chain == "LTC" and config.network is not Network.REGTEST:
        # MWEB blocks carry extension data the raw-block reader does not read (ADR 0024).
        raise InvalidChainConfig(
            f"LTC on {config.network} cannot be read over Esplora yet (MWEB blocks): set "
            "KEEL_COINPAY_LTC_API=jsonrpc and point the URLs at a Litecoin Core node"
        )
    rest = RestClient(config.chain, config.rpc_urls, timeout_seconds=timeout_seconds, client=client)
    return EsploraSource(config.chain, rest, network=config.network)
