"""Solana JSON-RPC getTransaction through recorded answers served on loopback."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from keel.coach.payments.adapters.solana_rpc import SolanaRpc
from keel.coach.payments.errors import SourceRateLimited, TransactionNotFound
from keel.coach.payments.observed import NATIVE, Chain, Token, Transfer, TxStatus
from tests.coach.payments.conftest import RECORDED
from tests.replay import ReplayServer

FACTS = RECORDED["solana"]
SIGNATURES = FACTS["signatures"]
PAYER, RECIPIENT = FACTS["payer"], FACTS["recipient"]


def solana(replay: ReplayServer, client: httpx.AsyncClient, name: str) -> SolanaRpc:
    return SolanaRpc(client, replay.url("solana", name) + "/")


async def test_a_finalized_sol_transfer_is_read_from_balances(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await solana(replay, client, "sol_transfer").observe(SIGNATURES["sol"])
    assert seen.chain is Chain.SOL
    assert seen.status is TxStatus.SUCCEEDED
    assert seen.sender == PAYER
    # The payer's balance fell (amount and fee): only the recipient's rise is a transfer.
    assert seen.transfers == (Transfer(NATIVE, PAYER, RECIPIENT, 100_000_000),)
    assert seen.block_time == datetime.fromtimestamp(FACTS["block_time"], UTC)
    assert seen.finalized
    assert seen.confirmations is None


async def test_usdc_to_a_token_account_created_in_the_transaction_counts_for_its_owner(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await solana(replay, client, "usdc_transfer").observe(SIGNATURES["usdc"])
    tokens = [t for t in seen.transfers if t.asset != NATIVE]
    assert tokens == [Transfer(Token(FACTS["usdc"]), PAYER, RECIPIENT, 10_000_000)]
    # The new token account's rent is SOL moved to it, not to the recipient.
    assert all(t.recipient != RECIPIENT for t in seen.transfers if t.asset == NATIVE)


async def test_another_mint_is_reported_under_its_own_address(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await solana(replay, client, "fake_mint").observe(SIGNATURES["fake_mint"])
    assert Token(FACTS["fake_mint"]) in {t.asset for t in seen.transfers}
    assert Token(FACTS["usdc"]) not in {t.asset for t in seen.transfers}


async def test_a_failed_transaction_moved_nothing(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await solana(replay, client, "failed").observe(SIGNATURES["failed"])
    assert seen.status is TxStatus.FAILED
    assert seen.transfers == ()


async def test_confirmed_but_not_finalized_is_not_final(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await solana(replay, client, "confirmed_only").observe(SIGNATURES["confirmed_only"])
    assert seen.status is TxStatus.SUCCEEDED
    assert not seen.finalized
    assert replay.hits[("solana", "confirmed_only")] == 2  # finalized first, then confirmed


async def test_unknown_at_both_commitments_is_not_found(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(TransactionNotFound):
        await solana(replay, client, "not_found").observe(SIGNATURES["not_found"])


async def test_http_429_is_rate_limited(replay: ReplayServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(SourceRateLimited):
        await solana(replay, client, "rate_limited").observe(SIGNATURES["rate_limited"])
