"""The live senders of the configured chains: who signs and sends their sweeps.

Each configured chain of a family with a sender gets one over an
:class:`~keel.coinpay.chains.rpc.RpcClient` of its provider URLs: today the EVM chains' coins
and tokens (:class:`~keel.coinpay.chains.evm_sender.EvmSender`, signed for the chain id of
``KEEL_COINPAY_<CHAIN>_CHAIN_ID``, else the mainnet id of ``assets``; token sweeps' gas comes
from the custody root's EVM fee wallet), the UTXO chains
(:class:`~keel.coinpay.chains.utxo_sender.UtxoSender`, batched; BTC over Esplora where
``KEEL_COINPAY_BTC_API=esplora``), Cardano through Koios
(:class:`~keel.coinpay.chains.cardano_sender.CardanoSender`, batched) and Solana's SOL and SPL
tokens (:class:`~keel.coinpay.chains.solana_sender.SolanaSender`) and XRP
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
from keel.coinpay.chains.cardano_sender import CardanoSender, open_cardano_sender
from keel.coinpay.chains.config import ChainConfig, ChainsConfig
from keel.coinpay.chains.evm_sender import EvmSender, FeeWallet, KeySource
from keel.coinpay.chains.providers import send_breaker
from keel.coinpay.chains.rpc import DEFAULT_TIMEOUT_SECONDS, RpcClient
from keel.coinpay.chains.solana_sender import SolanaSender, open_solana_sender
from keel.coinpay.chains.utxo_sender import UtxoSender, open_utxo_sender
from keel.coinpay.chains.xrp_sender import XrpSender, open_xrp_sender
from keel.coinpay.errors import InvalidChainConfig
from keel.coinpay.wallets import UTXO_FAMILIES, Family, HDRoot

__all__ = ["evm_fee_wallet", "evm_keys", "open_sender", "open_senders"]

RootSource = Callable[[], Awaitable[HDRoot]]


def evm_keys(root: RootSource) -> Callable[[int], Awaitable[bytes]]:
    """Derivation index -> the EVM private key there, from the custody root (``Custody.root``:
    raises SeedMissing before ``keel coinpay init``)."""

    async def key(index: int) -> bytes:
        return (await root()).private_key(Family.EVM, index)

    return key


def evm_fee_wallet(root: RootSource) -> FeeWallet:
    """The custody root's EVM fee wallet (address, key), derived when asked."""

    async def wallet() -> tuple[str, bytes]:
        return (await root()).fee_wallet(Family.EVM)

    return wallet


def open_sender(
    config: ChainConfig,
    keys: KeySource,
    *,
    fee_wallet: FeeWallet | None = None,
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
        breaker=send_breaker,
        client=client,
    )
    tokens = {token.coin: token.contract for token in config.tokens}
    return EvmSender(config.chain, rpc, keys, config.chain_id, tokens=tokens, fee_wallet=fee_wallet)


def open_senders(
    chains: ChainsConfig,
    root: RootSource,
    *,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    platform_wallets: Mapping[str, str] | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    client: httpx.AsyncClient | None = None,
) -> dict[str, EvmSender | UtxoSender | CardanoSender | SolanaSender | XrpSender]:
    """A sender for every configured chain that can have one (module docstring), by chain.
    A UTXO chain's and Cardano's need the database (they spend the deposits the scanner
    stored) and the chain's platform wallet (checked against its network here, at boot);
    without them it gets none, as its sweeps could not go anywhere. Solana's needs its
    platform wallet too."""
    keys = evm_keys(root)
    wallets = platform_wallets or {}
    senders: dict[str, EvmSender | UtxoSender | CardanoSender | SolanaSender | XrpSender] = {}
    for chain in chains.configured:
        family = COINS[chain].family
        if family is Family.EVM:
            senders[chain] = open_sender(
                chains.chain(chain),
                keys,
                fee_wallet=evm_fee_wallet(root),
                timeout_seconds=timeout_seconds,
                client=client,
            )
        elif family in UTXO_FAMILIES and sessions is not None and chain in wallets:
            senders[chain] = open_utxo_sender(
                chains.chain(chain),
                sessions,
                root,
                platform_address=wallets[chain],
                timeout_seconds=timeout_seconds,
            )
        elif family is Family.ADA and sessions is not None and chain in wallets:
            senders[chain] = open_cardano_sender(
                chains.chain(chain),
                sessions,
                root,
                platform_address=wallets[chain],
                timeout_seconds=timeout_seconds,
            )
        elif family is Family.SOL and chain in wallets:
            senders[chain] = open_solana_sender(
                chains.chain(chain),
                root,
                platform_address=wallets[chain],
                timeout_seconds=timeout_seconds,
                breaker=send_breaker,
            )
        elif family is Family.XRP and chain in wallets:
            senders[chain] = open_xrp_sender(
                chains.chain(chain),
                root,
                platform_address=wallets[chain],
                timeout_seconds=timeout_seconds,
            )
    return senders
