"""SolanaSender against a real LiteSVM peer: SOL and SPL sweeps to the lamport and base unit,
the token sweep's fee and rent on the fee wallet with the deposit account closed, refusals
before anything is sent, "already processed" as sent, and expiry (only once the blockhash is
past and the transaction is nowhere)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keel.coinpay.chains import config, senders, spl
from keel.coinpay.chains.base import ExpiringSender, SweepInput
from keel.coinpay.chains.solana_sender import (
    FINALIZED_DEPTH,
    LAMPORTS_PER_SIGNATURE,
    SolanaSender,
    open_solana_sender,
)
from keel.coinpay.errors import InvalidChainConfig, RpcCallRejected, SweepRefused
from keel.coinpay.wallets import Family, HDRoot
from tests.coinpay.conftest import ABANDON
from tests.solana_node import SolanaPeer, solana_peer

__all__ = ["solana_peer"]

ROOT = HDRoot.from_mnemonic(ABANDON)
SOL = 10**9
RENT_TOKEN_ACCOUNT = 2_039_280  # rent-exempt minimum of 165 bytes


async def root() -> HDRoot:
    return ROOT


@pytest.fixture
def wallet(solana_peer: SolanaPeer) -> Keypair:
    keypair = Keypair()
    solana_peer.airdrop(keypair.pubkey(), 100 * SOL)
    return keypair


@pytest.fixture
def mint(solana_peer: SolanaPeer, wallet: Keypair) -> Pubkey:
    authority = Keypair()
    mint = solana_peer.create_mint(wallet, authority.pubkey())
    solana_peer.mint_to(wallet, mint, authority, wallet.pubkey(), 1_000_000_000)
    return mint


def env(peer: SolanaPeer, mint: Pubkey | None = None) -> dict[str, str]:
    values = {"KEEL_COINPAY_SOL_RPC_URLS": peer.url}
    if mint is not None:
        values["KEEL_COINPAY_USDC_SOL_CONTRACT"] = str(mint)
    return values


@pytest.fixture
async def sender(solana_peer: SolanaPeer, mint: Pubkey) -> AsyncIterator[SolanaSender]:
    opened = open_solana_sender(
        config.load(env(solana_peer, mint)).chain("SOL"),
        root,
        platform_address=str(Keypair().pubkey()),
    )
    try:
        yield opened
    finally:
        await opened.aclose()


def sweep(coin: str, index: int, received: int, commission: int, merchant: Pubkey) -> SweepInput:
    return SweepInput(
        payment_id=f"pay_{index}",
        coin=coin,
        address=ROOT.address(Family.SOL, index),
        derivation_index=index,
        received=received,
        commission=commission,
        merchant_address=str(merchant),
    )


async def test_a_sol_sweep_pays_both_exactly_and_leaves_the_address_at_zero(
    solana_peer: SolanaPeer, wallet: Keypair, sender: SolanaSender
) -> None:
    assert isinstance(sender, ExpiringSender)
    merchant, platform = Keypair().pubkey(), Keypair().pubkey()
    job = sweep("SOL", 3, 2 * SOL + 17, 20_000_000, merchant)
    solana_peer.send_sol(wallet, job.address, job.received)
    signed = await sender.sign((job,), str(platform))
    assert signed.fees == {job.payment_id: LAMPORTS_PER_SIGNATURE}
    await sender.broadcast(signed.raw)
    await sender.broadcast(signed.raw)  # "already processed": sent, once
    assert await sender.confirmations(signed.tx_hash) == 1
    solana_peer.mine(2)
    assert await sender.confirmations(signed.tx_hash) == 3
    assert solana_peer.balance(job.address) == 0
    assert solana_peer.balance(platform) == job.commission
    assert solana_peer.balance(merchant) == job.received - job.commission - LAMPORTS_PER_SIGNATURE
    assert not await sender.expired(signed.tx_hash, signed.raw)  # it landed


async def test_a_token_sweep_is_paid_by_the_fee_wallet_and_closes_the_deposit_account(
    solana_peer: SolanaPeer, wallet: Keypair, mint: Pubkey, sender: SolanaSender
) -> None:
    fee_wallet = Pubkey.from_string(ROOT.fee_wallet(Family.SOL)[0])
    solana_peer.airdrop(fee_wallet, SOL)
    merchant, platform = Keypair().pubkey(), Keypair().pubkey()
    job = sweep("USDC_SOL", 4, 25_000_001, 250_000, merchant)
    solana_peer.send_token(wallet, mint, job.address, job.received)
    deposit_account = spl.associated_token_address(Pubkey.from_string(job.address), mint)
    assert solana_peer.balance(job.address) == 0  # the payment address holds no SOL at all
    before = solana_peer.balance(fee_wallet)
    signed = await sender.sign((job,), str(platform))
    assert signed.fees == {job.payment_id: 0}
    await sender.broadcast(signed.raw)
    assert solana_peer.token_balance(merchant, mint) == job.received - job.commission
    assert solana_peer.token_balance(platform, mint) == job.commission
    assert not solana_peer.account_exists(deposit_account)  # closed
    # Two signatures; two new token accounts' rent paid, the closed one's given back.
    fee = 2 * LAMPORTS_PER_SIGNATURE
    assert solana_peer.balance(fee_wallet) == before - fee - 2 * RENT_TOKEN_ACCOUNT + (
        RENT_TOKEN_ACCOUNT
    )


async def test_refused_before_anything_is_sent(
    solana_peer: SolanaPeer, wallet: Keypair, mint: Pubkey, sender: SolanaSender
) -> None:
    merchant, platform = Keypair().pubkey(), str(Keypair().pubkey())
    tiny = sweep("SOL", 5, 4_000, 0, merchant)
    solana_peer.send_sol(wallet, tiny.address, SOL)  # holds more; the fee alone exceeds 4,000
    with pytest.raises(SweepRefused, match="dust"):
        await sender.sign((tiny,), platform)
    new_payee = sweep("SOL", 6, 895_000, 0, merchant)
    solana_peer.send_sol(wallet, new_payee.address, new_payee.received)
    with pytest.raises(SweepRefused, match="rent-exempt"):
        await sender.sign((new_payee,), platform)  # a new account cannot take 890,000
    unfunded = sweep("USDC_SOL", 7, 1_000_000, 10_000, merchant)
    solana_peer.send_token(wallet, mint, unfunded.address, unfunded.received)
    with pytest.raises(SweepRefused, match=r"fee wallet .* fund it"):
        await sender.sign((unfunded,), platform)
    wrong_key = sweep("SOL", 8, SOL, 0, merchant)
    wrong_key = dataclasses.replace(wrong_key, derivation_index=9)
    solana_peer.send_sol(wallet, wrong_key.address, SOL)
    with pytest.raises(SweepRefused, match="does not control") as refused:
        await sender.sign((wrong_key,), platform)
    secret = ROOT.private_key(Family.SOL, 9)
    shown = f"{refused.value} {refused.value!r} {sender!r}"
    assert secret.hex() not in shown
    assert str(Keypair.from_seed(secret)) not in shown  # the keypair's base58 form
    assert solana_peer.balance(merchant) == 0


async def test_an_unsent_sweep_expires_only_once_its_blockhash_is_past(wallet: Keypair) -> None:
    peer = SolanaPeer(blockhash_window=5, root_lag=2)
    peer.serve()
    peer.airdrop(wallet.pubkey(), 10 * SOL)
    opened = open_solana_sender(
        config.load(env(peer)).chain("SOL"), root, platform_address=str(Keypair().pubkey())
    )
    try:
        job = sweep("SOL", 10, SOL, 10_000_000, Keypair().pubkey())
        peer.send_sol(wallet, job.address, job.received)
        stale = await opened.sign((job,), str(Keypair().pubkey()))
        assert await opened.confirmations(stale.tx_hash) is None  # never sent
        peer.mine(6)  # past the window at the tip, not yet at the finalized height
        assert not await opened.expired(stale.tx_hash, stale.raw)
        peer.mine(2)
        assert await opened.expired(stale.tx_hash, stale.raw)
        with pytest.raises(RpcCallRejected, match="Blockhash not found"):
            await opened.broadcast(stale.raw)
        fresh = await opened.sign((job,), str(Keypair().pubkey()))
        assert fresh.tx_hash != stale.tx_hash
        await opened.broadcast(fresh.raw)
        assert peer.balance(job.address) == 0
        peer.mine(3)
        assert await opened.confirmations(fresh.tx_hash) == FINALIZED_DEPTH
    finally:
        await opened.aclose()
        peer.stop()


async def test_open_senders_gives_solana_one_with_its_platform_wallet(
    solana_peer: SolanaPeer,
) -> None:
    chains = config.load(env(solana_peer))
    assert "SOL" not in senders.open_senders(chains, root)  # no platform wallet: no sweeps
    opened = senders.open_senders(chains, root, platform_wallets={"SOL": str(Keypair().pubkey())})
    try:
        assert isinstance(opened["SOL"], SolanaSender)
        assert opened["SOL"].batch_limit == 1
    finally:
        for one in opened.values():
            await one.aclose()
    with pytest.raises(InvalidChainConfig, match="not a Solana address"):
        senders.open_senders(chains, root, platform_wallets={"SOL": "0xnot-solana"})
