"""SolanaSource against a real LiteSVM peer (tests/solana_node.py): SOL and SPL deposits with
exact amounts, token deposits credited to the owner of an associated token account and set aside
for any other token account, failed transactions left out, skipped slots carrying the hash
forward (both ways a node answers them), nothing above the tip; and the balance-delta reading as
a property."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keel.coinpay.chains import config, sources, spl
from keel.coinpay.chains.base import Block, Mempool, Transfer
from keel.coinpay.chains.config import Token
from keel.coinpay.chains.scanner import SetAside
from keel.coinpay.chains.solana import (
    NOT_ASSOCIATED,
    TOKEN_POSITION,
    SolanaSource,
    block_transfers,
)
from keel.coinpay.errors import BlockNotFound
from tests.solana_node import SolanaPeer, solana_peer

__all__ = ["solana_peer"]

SOL = 10**9


@pytest.fixture
def wallet(solana_peer: SolanaPeer) -> Keypair:
    """A customer's wallet with 100 SOL."""
    keypair = Keypair()
    solana_peer.airdrop(keypair.pubkey(), 100 * SOL)
    return keypair


@pytest.fixture
def mint(solana_peer: SolanaPeer, wallet: Keypair) -> Pubkey:
    """A 6-decimal test mint; the wallet holds 1,000 of its tokens."""
    authority = Keypair()
    mint = solana_peer.create_mint(wallet, authority.pubkey())
    solana_peer.mint_to(wallet, mint, authority, wallet.pubkey(), 1_000_000_000)
    return mint


def open_solana(urls: list[str], mint: Pubkey | None = None) -> SolanaSource:
    env = {"KEEL_COINPAY_SOL_RPC_URLS": ",".join(urls)}
    if mint is not None:
        env["KEEL_COINPAY_USDC_SOL_CONTRACT"] = str(mint)
    source = sources.open_source(config.load(env).chain("SOL"), timeout_seconds=5)
    assert isinstance(source, SolanaSource)
    return source


@pytest.fixture
async def source(solana_peer: SolanaPeer, mint: Pubkey) -> AsyncIterator[SolanaSource]:
    solana = open_solana([solana_peer.url], mint)
    try:
        yield solana
    finally:
        await solana.aclose()


async def test_a_sol_payment_is_read_from_the_balance_change_with_exact_lamports(
    solana_peer: SolanaPeer, wallet: Keypair, source: SolanaSource
) -> None:
    payee = Keypair().pubkey()
    signature = solana_peer.send_sol(wallet, payee, 1_234_567_891)
    tip = await source.tip()
    assert tip.height == solana_peer.slot
    block = await source.block(tip.height)
    assert block.ref == tip
    # The payer's balance went down (amount and fee): only the payee received anything.
    assert block.transfers == (Transfer("SOL", signature, 1, str(payee), 1_234_567_891),)
    assert await source.pending() == Mempool(complete=False)


async def test_a_token_deposit_is_credited_to_the_owner_of_the_token_account(
    solana_peer: SolanaPeer, wallet: Keypair, mint: Pubkey, source: SolanaSource
) -> None:
    payee = Keypair().pubkey()
    signature = solana_peer.send_token(wallet, mint, payee, 25_000_001)
    block = await source.block((await source.tip()).height)
    tokens = [t for t in block.transfers if t.coin == "USDC_SOL"]
    assert len(tokens) == 1
    [deposit] = tokens
    assert (deposit.tx_hash, deposit.address, deposit.amount) == (signature, str(payee), 25_000_001)
    assert deposit.position >= TOKEN_POSITION
    # The lamports the wallet put into the new token account are no payment of the owner.
    assert all(t.address != str(payee) for t in block.transfers if t.coin == "SOL")


async def test_a_token_deposit_into_another_token_account_of_the_owner_is_set_aside(
    solana_peer: SolanaPeer, wallet: Keypair, mint: Pubkey, source: SolanaSource
) -> None:
    payee = Keypair().pubkey()
    account = solana_peer.create_token_account(wallet, mint, payee)
    assert account != spl.associated_token_address(payee, mint)
    signature = solana_peer.send_token_to_account(wallet, mint, account, 25_000_001)
    block = await source.block((await source.tip()).height)
    # The sweep reads only the associated account: nobody is credited with these tokens.
    assert [t for t in block.transfers if t.coin == "USDC_SOL"] == []
    [aside] = source.set_aside(block.ref)
    assert aside.reason == NOT_ASSOCIATED
    assert aside.held_at == str(account)
    transfer = aside.transfer
    assert (transfer.coin, transfer.tx_hash, transfer.address, transfer.amount) == (
        "USDC_SOL",
        signature,
        str(payee),
        25_000_001,
    )
    assert source.set_aside(block.ref) == ()  # answered once


async def test_a_token_of_another_mint_is_not_reported(
    solana_peer: SolanaPeer, wallet: Keypair, source: SolanaSource
) -> None:
    authority = Keypair()
    other = solana_peer.create_mint(wallet, authority.pubkey())
    solana_peer.mint_to(wallet, other, authority, wallet.pubkey(), 10**9)
    solana_peer.send_token(wallet, other, Keypair().pubkey(), 5_000_000)
    block = await source.block((await source.tip()).height)
    assert [t for t in block.transfers if t.coin != "SOL"] == []


async def test_a_failed_transaction_moves_nothing(
    solana_peer: SolanaPeer, source: SolanaSource
) -> None:
    poor = Keypair()
    solana_peer.airdrop(poor.pubkey(), SOL // 100)
    payee = Keypair().pubkey()
    # More than it holds: preflight would refuse it, so it is sent as a wallet skipping it.
    tx = solana_peer.signed(poor, [_transfer(poor.pubkey(), payee, SOL)])
    solana_peer.submit(tx, skip_preflight=True)
    landed = solana_peer.blocks[solana_peer.slot].transactions
    assert len(landed) == 1
    assert landed[0]["meta"]["err"] is not None  # in the block, and failed
    block = await source.block((await source.tip()).height)
    assert block.transfers == ()
    assert solana_peer.balance(payee) == 0


@pytest.mark.parametrize("root_lag", [0, 20], ids=["skipped-below-root", "skipped-above-root"])
async def test_skipped_slots_carry_the_hash_forward_so_the_chain_links_across_them(
    root_lag: int, wallet: Keypair
) -> None:
    peer = SolanaPeer(root_lag=root_lag)
    url = peer.serve()
    peer.airdrop(wallet.pubkey(), 10 * SOL)
    payee = Keypair().pubkey()
    solana = open_solana([url])
    try:
        start = (await solana.tip()).height
        peer.skip(3)
        paid = peer.send_sol(wallet, payee, 7 * SOL)
        peer.skip(1)
        peer.mine(1)
        tip = await solana.tip()
        assert tip.height == start + 6
        previous = await solana.block(start)
        blocks: list[Block] = []
        for slot in range(start + 1, tip.height + 1):
            block = await solana.block(slot)
            assert block.ref.height == slot
            assert block.ref.parent_hash == previous.ref.hash  # the scanner's check holds
            blocks.append(block)
            previous = block
        skipped = [
            b for b in blocks if b.ref.height in (start + 1, start + 2, start + 3, start + 5)
        ]
        assert all(b.transfers == () and b.ref.hash == b.ref.parent_hash for b in skipped)
        [with_payment] = [b for b in blocks if b.transfers]
        assert with_payment.ref.height == start + 4
        assert with_payment.transfers == (Transfer("SOL", paid, 1, str(payee), 7 * SOL),)
        assert previous.ref == tip
    finally:
        await solana.aclose()
        peer.stop()


async def test_a_slot_above_the_tip_is_not_found(
    solana_peer: SolanaPeer, source: SolanaSource
) -> None:
    tip = await source.tip()
    with pytest.raises(BlockNotFound):
        await source.block(tip.height + 1)
    solana_peer.skip(2)  # the next slots are skipped, but nobody can know that yet
    with pytest.raises(BlockNotFound):
        await source.block(tip.height + 1)


# Balance changes as a property ---------------------------------------------------------------

KEYS = [str(Keypair().pubkey()) for _ in range(6)]
MINT = str(Keypair().pubkey())
MINTS = {MINT: Token("USDC_SOL", MINT, 6)}
ATA_OF_OWNER = str(
    spl.associated_token_address(Pubkey.from_string(KEYS[0]), Pubkey.from_string(MINT))
)
balances = st.lists(st.integers(0, 2**64 - 1), min_size=len(KEYS), max_size=len(KEYS))


def _tx(pre: list[int], post: list[int], err: Any = None, **meta: Any) -> dict[str, Any]:
    return {
        "meta": {"err": err, "preBalances": pre, "postBalances": post, **meta},
        "transaction": {
            "signatures": [str(Keypair().pubkey()) * 2],
            "message": {"accountKeys": [{"pubkey": k, "signer": False} for k in KEYS]},
        },
    }


@given(balances, balances)
def test_sol_transfers_are_exactly_the_positive_balance_changes(
    pre: list[int], post: list[int]
) -> None:
    found, aside = block_transfers("SOL", _tx(pre, post), {})
    assert {t.position: t.amount for t in found} == {
        i: post[i] - pre[i] for i in range(len(KEYS)) if post[i] > pre[i]
    }
    assert all(t.address == KEYS[t.position] and t.coin == "SOL" for t in found)
    assert aside == []
    failed = _tx(pre, post, err={"InstructionError": [0, "x"]})
    assert block_transfers("SOL", failed, {}) == ([], [])


token_amounts = st.dictionaries(st.integers(0, len(KEYS) - 1), st.integers(0, 2**64 - 1))


def _token_entries(amounts: dict[int, int], owner: str) -> list[dict[str, Any]]:
    return [
        {"accountIndex": i, "mint": MINT, "owner": owner, "uiTokenAmount": {"amount": str(a)}}
        for i, a in amounts.items()
    ]


@given(token_amounts, token_amounts)
def test_token_deposits_are_the_positive_changes_credited_to_the_owner(
    before: dict[int, int], after: dict[int, int]
) -> None:
    owner = KEYS[0]
    same = [0] * len(KEYS)
    tx = _tx(
        same,
        same,
        preTokenBalances=_token_entries(before, KEYS[1]),  # owner since changed
        postTokenBalances=_token_entries(after, owner),
    )
    # Index 2 is the owner's associated token account; the others are token accounts the owner
    # holds at other addresses, which the sweep does not read.
    tx["transaction"]["message"]["accountKeys"][2]["pubkey"] = ATA_OF_OWNER
    found, aside = block_transfers("SOL", tx, MINTS)
    expected = {
        TOKEN_POSITION + i: amount - before.get(i, 0)
        for i, amount in after.items()
        if amount > before.get(i, 0)
    }
    credited = {p: a for p, a in expected.items() if p == TOKEN_POSITION + 2}
    assert {t.position: t.amount for t in found} == credited
    assert all(t.coin == "USDC_SOL" and t.address == owner for t in found)
    assert {a.transfer.position: a.transfer.amount for a in aside} == {
        p: a for p, a in expected.items() if p not in credited
    }
    assert all(
        a == SetAside(a.transfer, NOT_ASSOCIATED, KEYS[a.transfer.position - TOKEN_POSITION])
        and a.transfer.address == owner
        for a in aside
    )


def _transfer(source: Pubkey, to: Pubkey, lamports: int) -> Any:
    from solders.system_program import TransferParams, transfer

    return transfer(TransferParams(from_pubkey=source, to_pubkey=to, lamports=lamports))
