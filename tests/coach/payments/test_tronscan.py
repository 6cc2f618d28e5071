"""Tronscan's transaction-info through recorded answers served on loopback."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from keel.coach.payments.adapters.tronscan import USDT_CONTRACT, Tronscan
from keel.coach.payments.errors import (
    SourceMisconfigured,
    SourceRateLimited,
    TransactionNotFound,
)
from keel.coach.payments.observed import NATIVE, Chain, Token, Transfer, TxStatus
from tests.coach.payments.conftest import RECORDED
from tests.replay import ReplayServer

FACTS = RECORDED["tronscan"]
HASHES = FACTS["hashes"]
PAYER, RECIPIENT = FACTS["payer"], FACTS["recipient"]


def tronscan(replay: ReplayServer, client: httpx.AsyncClient, name: str) -> Tronscan:
    return Tronscan(client, None, url=replay.url("tronscan", name))


async def test_usdt_is_read_once_from_the_transfer_events(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await tronscan(replay, client, "usdt").observe(HASHES["usdt"])
    assert seen.chain is Chain.TRON
    assert seen.status is TxStatus.SUCCEEDED
    assert seen.sender == PAYER
    # trc20TransferInfo and tokenTransferInfo describe the same event: counted once.
    assert seen.transfers == (Transfer(Token(USDT_CONTRACT), PAYER, RECIPIENT, 10_000_000),)
    assert seen.block_time == datetime.fromtimestamp(FACTS["timestamp_ms"] // 1000, UTC)
    assert seen.finalized
    assert seen.confirmations is None


async def test_a_token_named_usdt_is_known_by_its_contract(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await tronscan(replay, client, "fake_usdt").observe(HASHES["fake_usdt"])
    assert [t.asset for t in seen.transfers] == [Token(FACTS["fake"])]


async def test_an_unconfirmed_transaction_is_not_final(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await tronscan(replay, client, "unconfirmed").observe(HASHES["unconfirmed"])
    assert seen.status is TxStatus.SUCCEEDED
    assert not seen.finalized


async def test_out_of_energy_is_failed(replay: ReplayServer, client: httpx.AsyncClient) -> None:
    seen = await tronscan(replay, client, "failed").observe(HASHES["failed"])
    assert seen.status is TxStatus.FAILED
    assert seen.transfers == ()


async def test_a_trx_transfer_is_native(replay: ReplayServer, client: httpx.AsyncClient) -> None:
    seen = await tronscan(replay, client, "trx").observe(HASHES["trx"])
    assert seen.transfers == (Transfer(NATIVE, PAYER, RECIPIENT, 25_000_000),)


async def test_an_empty_answer_is_not_found(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(TransactionNotFound):
        await tronscan(replay, client, "not_found").observe(HASHES["not_found"])


async def test_403_request_too_quickly_is_rate_limited(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(SourceRateLimited):
        await tronscan(replay, client, "rate_limited").observe(HASHES["rate_limited"])


async def test_a_refused_key_is_misconfigured(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(SourceMisconfigured):
        await tronscan(replay, client, "invalid_key").observe(HASHES["invalid_key"])


async def test_the_api_key_goes_in_its_header(replay: ReplayServer) -> None:
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(trust_env=False, event_hooks={"request": [record]}) as client:
        source = Tronscan(client, SecretStr("tron-key"), url=replay.url("tronscan", "usdt"))
        await source.observe(HASHES["usdt"])
    assert sent[0].headers["TRON-PRO-API-KEY"] == "tron-key"
    assert "tron-key" not in str(sent[0].url)
