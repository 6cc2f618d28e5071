"""The live senders of the configured chains: who signs and sends their sweeps.

Each configured chain of a family with a sender gets one over an
:class:`~keel.coinpay.chains.rpc.RpcClient` of its provider URLs: today the EVM chains' native
coins (:class:`~keel.coinpay.chains.evm_sender.EvmSender`, signed for the chain id of
``KEEL_COINPAY_<CHAIN>_CHAIN_ID``, else the mainnet id of ``assets``) and the P2WPKH chains
(:class:`~keel.coinpay.chains.utxo_sender.UtxoSender`, batched) and XRP
(:class:`~keel.coinpay.chains.xrp_sender.XrpSender`, which also activates receiving
accounts; like a UTXO chain it needs its platform wallet). Chains of other families get
none yet, so their live payments wait at ``forwarding``; the forward job's retries count them
in ``coinpay_settlement_failures_total``.

Keys are derived from the custody root at signing time, never before: the root is asked for
on each sweep (``Custody.root`` decrypts the seed once, on first use), so senders can be opened
at boot before ``keel coinpay init`` has stored a seed.

The sender's client is its own, not the chain source's: a sweep's calls never wait behind a
block scan's. Its providers' circuit breakers are named ``coinpay_rpc:<CHAIN>:<provider>:send``
so the scanner's breaker state (``keel_circuit_state``) is not blurred by another client's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coinpay.assets import COINS
from keel.coinpay.chains.config import ChainConfig, ChainsConfig
from keel.coinpay.chains.evm_sender import EvmSender, KeySource
from keel.coinpay.chains.rpc import DEFAULT_TIMEOUT_SECONDS, RpcClient, default_breaker
from keel.coinpay.chains.utxo_sender import P2WPKH_FAMILIES, UtxoSender, open_utxo_sender
from keel.coinpay.chains.xrp_sender import XrpSender, open_xrp_sender
from keel.coinpay.errors import InvalidChainConfig
from keel.coinpay.wallets import Family, HDRoot
from keel.core.resilience import CircuitBreaker

__all__ = ["evm_keys", "open_sender", "open_senders"]

RootSource = Callable[[], Awaitable[HDRoot]]


def evm_keys(root: RootSource) -> Callable[[int], Awaitable[bytes]]:
    """Derivation index -> the EVM private key there, from the custody root (``Custody.root``:
    raises SeedMissing before ``keel coinpay init``)."""

    async def key(index: int) -> bytes:
        return (await root()).private_key(Family.EVM, index)

    return key


def open_sender(
    config: ChainConfig,
    keys: KeySource,
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    client: httpx.AsyncClient | None = None,
) -> EvmSender:
    """A sender of ``config.chain``'s native coin through its providers; close it with
    ``aclose()``. Raises InvalidChainConfig for a chain with no URL or with no sender yet."""
    if not config.configured:
        raise InvalidChainConfig(f"{config.chain} has no RPC URL to send through")
    if COINS[config.chain].family is not Family.EVM or config.chain_id is None:
        raise InvalidChainConfig(f"{config.chain}: no sender for its family yet")
    rpc = RpcClient(
        config.chain,
        config.rpc_urls,
        timeout_seconds=timeout_seconds,
        breaker=_send_breaker,
        client=client,
    )
    return EvmSender(config.chain, rpc, keys, config.chain_id)


def open_senders(
    chains: ChainsConfig,
    root: RootSource,
    *,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    platform_wallets: Mapping[str, str] | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    client: httpx.AsyncClient | None = None,
) -> dict[str, EvmSender | UtxoSender | XrpSender]:
    """A sender for every configured chain that can have one (module docstring), by chain.
    A P2WPKH chain's needs the database (it spends the deposits the scanner stored) and its
    platform wallet (checked against the chain's network here, at boot); without them it gets
    none, as its sweeps could not go anywhere."""
    keys = evm_keys(root)
    wallets = platform_wallets or {}
    senders: dict[str, EvmSender | UtxoSender | XrpSender] = {}
    for chain in chains.configured:
        family = COINS[chain].family
        if family is Family.EVM:
            senders[chain] = open_sender(
                chains.chain(chain), keys, timeout_seconds=timeout_seconds, client=client
            )
        elif family in P2WPKH_FAMILIES and sessions is not None and chain in wallets:
            senders[chain] = open_utxo_sender(
                chains.chain(chain),
                sessions,
                root,
                platform_address=wallets[chain],
                timeout_seconds=timeout_seconds,
            )
        elif family is Family.XRP and chain in wallets:
            senders[chain] = open_xrp_sender(
                chains.chain(chain),
                root,
                platform_address=wallets[chain],
                timeout_seconds=timeout_seconds,
            )
    return senders


def _send_breaker(name: str) -> CircuitBreaker:
    return default_breaker(f"{name}:send")
