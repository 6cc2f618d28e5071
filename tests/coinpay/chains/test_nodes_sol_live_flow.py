"""Live Solana payments on a real LiteSVM peer (tests/solana_node.py), end to end through the
public API with a ``cp_live_`` key, configured from the environment as an operator would
(``KEEL_COINPAY_SOL_RPC_URLS``, ``_SOL_CONFIRMATIONS``, ``_USDC_SOL_CONTRACT``): a real SOL
transfer and a real SPL ``transfer_checked`` to the payment address, across skipped slots, seen
by the worker's scan task, confirming then confirmed at the policy's depth, with signed
webhooks, then swept by the worker: the merchant gets exactly amount - commission - fee (SOL)
or amount - commission (SPL), the platform the commission, the deposit token account is closed
and its rent is back on the fee wallet. A sweep whose transaction expired unsent is signed
again, once. Tokens sent into a token account of the payment address other than its associated
one (which the sweep could not move) credit nothing and are counted for an operator. Detection
goes on through the second provider when the first stops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import select

from keel.coinpay import models, payments
from keel.coinpay.chains import config, senders, sources, spl
from keel.coinpay.chains.base import ChainSender, ChainSource, SignedSweep, SweepInput
from keel.coinpay.chains.config import ChainsConfig
from keel.coinpay.chains.solana import NOT_ASSOCIATED
from keel.coinpay.chains.solana_sender import LAMPORTS_PER_SIGNATURE, SolanaSender
from keel.coinpay.wallets import Family, HDRoot
from tests.coinpay.chains.conftest import OPEN, breaker_state, provider_errors
from tests.coinpay.chains.test_nodes_live_flow import signed_by
from tests.coinpay.conftest import ABANDON, Harness, WebhookSink, make_harness, payout_address
from tests.solana_node import SolanaPeer, solana_peer

__all__ = ["solana_peer"]

DEPTH = 2
SOL = 10**9
RENT_TOKEN_ACCOUNT = 2_039_280
FEE_WALLET = Pubkey.from_string(HDRoot.from_mnemonic(ABANDON).fee_wallet(Family.SOL)[0])


@pytest.fixture
def wallet(solana_peer: SolanaPeer) -> Keypair:
    keypair = Keypair()
    solana_peer.airdrop(keypair.pubkey(), 1_000 * SOL)
    return keypair


@pytest.fixture
def mint(solana_peer: SolanaPeer, wallet: Keypair) -> Pubkey:
    """A 6-decimal test token standing in for USDC; the customer's wallet holds 10,000."""
    authority = Keypair()
    mint = solana_peer.create_mint(wallet, authority.pubkey())
    solana_peer.mint_to(wallet, mint, authority, wallet.pubkey(), 10_000_000_000)
    return mint


def chains_of(peer_urls: str, mint: Pubkey | None = None) -> ChainsConfig:
    environ = {"KEEL_COINPAY_SOL_RPC_URLS": peer_urls, "KEEL_COINPAY_SOL_CONFIRMATIONS": str(DEPTH)}
    if mint is not None:
        environ["KEEL_COINPAY_USDC_SOL_CONTRACT"] = str(mint)
    return config.load(environ)


async def live_solana(
    db_url: str, chains: ChainsConfig, platform: Pubkey, wrap: Any = None
) -> AsyncIterator[Harness]:
    """A coinpay watching and sweeping Solana through ``chains``, as keel serve opens it."""
    sol = chains.chain("SOL")
    source: ChainSource = sources.open_source(sol, timeout_seconds=5)
    wallets = {"SOL": str(platform)}
    try:
        async for h in make_harness(
            db_url,
            None,
            sources=[source],
            confirmations={"SOL": sol.confirmations},
            platform_wallets=wallets,
        ):
            opened = senders.open_senders(chains, h.gw.custody.root, platform_wallets=wallets)
            live: dict[str, Any] = {c: wrap(s) if wrap else s for c, s in opened.items()}
            h.gw.senders = {**h.gw.senders, "live": live}
            try:
                yield h
            finally:
                for sender in opened.values():
                    await sender.aclose()
    finally:
        await source.aclose()


async def stored(h: Harness, payment_id: str) -> payments.Payment:
    async with h.gw.sessions() as session:
        return await payments.store.load(session, payment_id)


async def pay_and_confirm(
    h: Harness, peer: SolanaPeer, wallet: Keypair, mint: Pubkey, coin: str
) -> dict[str, Any]:
    """A live payment created through the API, paid in full on the peer past two skipped
    slots, confirming at 1 and confirmed at the policy's depth by the worker's scan task."""
    scan = h.periodic("scan:SOL")
    await scan.run()  # the scanner starts at the peer's tip
    payment = await h.create_live_payment(coin)
    amount = int(payment["crypto_amount_base_units"])
    peer.skip(2)  # two leaders offline: empty slots before the payment's
    if coin == "SOL":
        tx = peer.send_sol(wallet, payment["payment_address"], amount)
    else:
        tx = peer.send_token(wallet, mint, payment["payment_address"], amount)
    await scan.run()
    seen = await h.live_payment(payment["id"])
    assert (seen["status"], seen["confirmations"], seen["tx_hash"]) == ("confirming", 1, tx)
    peer.skip(1)
    peer.mine(DEPTH - 1)
    await scan.run()
    done = await h.live_payment(payment["id"])
    assert (done["status"], done["amount_received"]) == ("confirmed", payment["crypto_amount"])
    assert done["confirmations"] >= DEPTH
    return payment


@pytest.mark.parametrize("coin", ["SOL", "USDC_SOL"])
async def test_a_real_payment_confirms_is_announced_and_is_swept_exactly(
    solana_peer: SolanaPeer,
    wallet: Keypair,
    mint: Pubkey,
    db_url: str,
    webhook_sink: WebhookSink,
    coin: str,
) -> None:
    peer, platform = solana_peer, Keypair().pubkey()
    merchant = payout_address(coin)
    peer.airdrop(FEE_WALLET, SOL)  # the operator keeps the fee wallet funded
    fee_wallet_before = peer.balance(FEE_WALLET)
    async for h in live_solana(db_url, chains_of(peer.url, mint), platform):
        secret = await h.add_live_endpoint(webhook_sink.url)
        payment = await pay_and_confirm(h, peer, wallet, mint, coin)
        amount = int(payment["crypto_amount_base_units"])
        await h.run_jobs()  # forward: the split written, the sweep signed, stored and sent
        sweeping = await stored(h, payment["id"])
        assert (sweeping.status, sweeping.sweep_id is not None) == ("forwarding", True)
        await h.periodic("sweep:SOL").run()  # 1 deep of 2: not yet
        assert (await stored(h, payment["id"])).status == "forwarding"
        peer.mine(DEPTH - 1)
        await h.periodic("sweep:SOL").run()
        done = await stored(h, payment["id"])
        assert done.status == "forwarded"
        commission = done.commission_amount
        assert commission == amount // 100  # 1 %, the free plan
        if coin == "SOL":
            assert done.network_fee == LAMPORTS_PER_SIGNATURE
            assert peer.balance(merchant) == amount - commission - LAMPORTS_PER_SIGNATURE
            assert peer.balance(platform) == commission
            assert peer.balance(done.payment_address) == 0
            assert peer.balance(FEE_WALLET) == fee_wallet_before  # not touched
        else:
            assert done.network_fee == 0
            assert peer.token_balance(merchant, mint) == amount - commission
            assert peer.token_balance(platform, mint) == commission
            deposit = Pubkey.from_string(done.payment_address)
            assert not peer.account_exists(spl.associated_token_address(deposit, mint))
            # Fee and two new accounts' rent paid; the closed deposit account's rent back.
            assert peer.balance(FEE_WALLET) == (
                fee_wallet_before - 2 * LAMPORTS_PER_SIGNATURE - RENT_TOKEN_ACCOUNT
            )
        shown = await h.live_payment(payment["id"])
        assert (shown["status"], shown["forward_tx_hash"]) == ("forwarded", done.forward_tx_hash)
        await h.run_jobs()
    kinds = sorted(e["type"] for e in webhook_sink.events())
    assert kinds == [
        "payment.completed",
        "payment.confirmed",
        "payment.confirming",
        "payment.created",
        "payment.forwarded",
    ]
    [forwarded] = webhook_sink.events("payment.forwarded")
    assert forwarded["data"]["merchant_tx_hash"] == done.forward_tx_hash
    assert all(signed_by(secret, r) for r in webhook_sink.received)


def unswept(chain: str, reason: str) -> float:
    labels = {"chain": chain, "reason": reason}
    return REGISTRY.get_sample_value("coinpay_chain_unswept_transfers_total", labels) or 0.0


async def test_tokens_in_a_token_account_the_sweep_cannot_move_credit_nothing(
    solana_peer: SolanaPeer, wallet: Keypair, mint: Pubkey, db_url: str
) -> None:
    peer = solana_peer
    async for h in live_solana(db_url, chains_of(peer.url, mint), Keypair().pubkey()):
        scan = h.periodic("scan:SOL")
        await scan.run()
        payment = await h.create_live_payment("USDC_SOL")
        owner = Pubkey.from_string(payment["payment_address"])
        amount = int(payment["crypto_amount_base_units"])
        before = unswept("SOL", NOT_ASSOCIATED)
        # A token account the payment address owns, but not its associated one.
        other = peer.create_token_account(wallet, mint, owner)
        assert other != spl.associated_token_address(owner, mint)
        peer.send_token_to_account(wallet, mint, other, amount)
        peer.mine(DEPTH)
        await scan.run()
        waiting = await h.live_payment(payment["id"])
        assert (waiting["status"], waiting["tx_hash"]) == ("pending", None)
        assert unswept("SOL", NOT_ASSOCIATED) == before + 1

        # The same amount into its associated token account: credited, confirmed, swept.
        paid = peer.send_token(wallet, mint, owner, amount)
        await scan.run()
        seen = await h.live_payment(payment["id"])
        assert (seen["status"], seen["tx_hash"]) == ("confirming", paid)
        peer.mine(DEPTH)
        await scan.run()
        assert (await h.live_payment(payment["id"]))["amount_received"] == payment["crypto_amount"]
        assert unswept("SOL", NOT_ASSOCIATED) == before + 1


class LosingBroadcasts:
    """The live sender, except that its broadcasts reach no validator while ``losing`` (a
    provider that answers and then loses them): the stored transaction does not land."""

    def __init__(self, inner: ChainSender) -> None:
        assert isinstance(inner, SolanaSender)
        self.inner = inner
        self.chain, self.batch_limit = inner.chain, inner.batch_limit
        self.losing = True

    async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
        return await self.inner.sign(inputs, platform_address)

    async def broadcast(self, raw: str) -> None:
        if not self.losing:
            await self.inner.broadcast(raw)

    async def confirmations(self, tx_hash: str) -> int | None:
        return await self.inner.confirmations(tx_hash)

    async def expired(self, tx_hash: str, raw: str) -> bool:
        return await self.inner.expired(tx_hash, raw)


async def test_a_sweep_that_expired_unsent_is_signed_again_once_and_lands_once(
    db_url: str, wallet: Keypair
) -> None:
    peer = SolanaPeer(root_lag=3, blockhash_window=6)
    peer.serve()
    peer.airdrop(wallet.pubkey(), 100 * SOL)
    platform, merchant = Keypair().pubkey(), payout_address("SOL")
    try:
        async for h in live_solana(db_url, chains_of(peer.url), platform, LosingBroadcasts):
            payment = await pay_and_confirm(h, peer, wallet, Keypair().pubkey(), "SOL")
            await h.run_jobs()  # signed, stored, "sent": lost on the way
            [lost] = await sweep_rows(h)
            assert lost.status == "broadcast"
            sender = h.gw.senders["live"]["SOL"]
            assert await sender.expired(lost.tx_hash, lost.raw_tx) is False
            peer.mine(6 + 3 + 1)  # past its blockhash's window, at the finalized height too
            sender.losing = False
            sweep = h.periodic("sweep:SOL")
            await sweep.run()  # unknown to the node, expired: signed again, stored, sent
            [again] = await sweep_rows(h)
            assert (again.id, again.status) == (lost.id, "broadcast")
            assert again.tx_hash != lost.tx_hash
            assert lost.tx_hash not in peer.statuses  # the lost one never landed
            assert peer.statuses[again.tx_hash][1] is None  # the new one did, and succeeded
            await sweep.run()  # 1 deep of 2: the same sweep waits, nothing signed again
            assert [r.tx_hash for r in await sweep_rows(h)] == [again.tx_hash]
            peer.mine(DEPTH - 1)
            await sweep.run()
            done = await stored(h, payment["id"])
            assert (done.status, done.forward_tx_hash) == ("forwarded", again.tx_hash)
            amount = int(payment["crypto_amount_base_units"])
            assert peer.balance(merchant) == (
                amount - done.commission_amount - LAMPORTS_PER_SIGNATURE
            )
            assert peer.balance(platform) == done.commission_amount
            assert peer.balance(done.payment_address) == 0
    finally:
        peer.stop()


async def sweep_rows(h: Harness) -> list[Any]:
    async with h.gw.sessions() as session:
        return list((await session.execute(select(models.sweeps))).all())


async def test_detection_goes_on_through_the_second_provider_when_the_first_stops(
    solana_peer: SolanaPeer, wallet: Keypair, db_url: str
) -> None:
    peer = solana_peer
    first = peer.serve()  # a second front on the same chain, stopped below
    platform = Keypair().pubkey()
    async for h in live_solana(db_url, chains_of(f"{first},{peer.url}"), platform):
        scan = h.periodic("scan:SOL")
        await scan.run()
        payment = await h.create_live_payment("SOL")
        peer.send_sol(wallet, payment["payment_address"], int(payment["crypto_amount_base_units"]))
        await scan.run()
        assert (await h.live_payment(payment["id"]))["status"] == "confirming"
        assert provider_errors("SOL", first, "connect") == 0  # all through the first

        peer.stop(first)
        peer.mine(1)
        await scan.run()  # the first refuses connections: the second answers
        assert (await h.live_payment(payment["id"]))["status"] == "confirmed"
        for _ in range(5):
            peer.mine(1)
            await scan.run()
        assert provider_errors("SOL", first, "connect") > 0
        assert breaker_state("SOL", first) == OPEN
