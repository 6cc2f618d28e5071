"""Etherscan V2 (proxy module) through recorded answers served on loopback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from keel.coach.payments.adapters.etherscan import Etherscan
from keel.coach.payments.errors import (
    SourceMisconfigured,
    SourceRateLimited,
    SourceUnavailable,
    TransactionNotFound,
)
from keel.coach.payments.observed import NATIVE, Chain, Token, Transfer, TxStatus
from tests.coach.payments.conftest import RECORDED
from tests.replay import ReplayServer

FACTS = RECORDED["etherscan"]
KEY = SecretStr(FACTS["key"])
RECIPIENT = FACTS["recipient"].lower()
PAYER = FACTS["payer"].lower()


def etherscan(replay: ReplayServer, client: httpx.AsyncClient, name: str) -> Etherscan:
    return Etherscan(client, KEY, url=replay.url("etherscan", name) + "/v2/api")


async def test_a_native_transfer_reads_with_its_block_time_and_confirmations(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    tx_hash = FACTS["hashes"]["native"]
    seen = await etherscan(replay, client, "native").observe(tx_hash)
    assert seen.chain is Chain.ETH
    assert seen.tx_hash == tx_hash
    assert seen.status is TxStatus.SUCCEEDED
    assert seen.sender == PAYER
    assert seen.transfers == (Transfer(NATIVE, PAYER, RECIPIENT, 10**16),)
    assert seen.block_time == datetime.fromtimestamp(FACTS["block_time"], UTC)
    assert seen.confirmations == FACTS["tip"] - FACTS["block"] + 1
    assert not seen.finalized


async def test_an_erc20_transfer_is_read_from_the_receipt_log_by_contract(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await etherscan(replay, client, "usdt").observe(FACTS["hashes"]["usdt"])
    # value 0: no native transfer; the token is the log's contract, not the tx's "to"
    assert seen.transfers == (Transfer(Token(FACTS["usdt"]), PAYER, RECIPIENT, 25_000_000),)


async def test_a_lookalike_token_is_reported_under_its_own_contract(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await etherscan(replay, client, "fake_usdt").observe(FACTS["hashes"]["fake_usdt"])
    assert [t.asset for t in seen.transfers] == [Token(FACTS["fake"])]


async def test_a_reverted_transaction_moved_nothing(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await etherscan(replay, client, "failed").observe(FACTS["hashes"]["failed"])
    assert seen.status is TxStatus.FAILED
    assert seen.transfers == ()


async def test_a_transaction_in_the_pool_is_pending(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    seen = await etherscan(replay, client, "pending").observe(FACTS["hashes"]["pending"])
    assert seen.status is TxStatus.PENDING
    assert seen.block_time is None


async def test_an_unknown_hash_is_not_found(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(TransactionNotFound):
        await etherscan(replay, client, "not_found").observe(FACTS["hashes"]["not_found"])


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("rate_limited", SourceRateLimited),
        ("invalid_key", SourceMisconfigured),
        ("bad_gateway", SourceUnavailable),
    ],
)
async def test_error_envelopes_are_typed_and_never_carry_the_key(
    replay: ReplayServer,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    name: str,
    error: type[SourceUnavailable],
) -> None:
    caplog.set_level(logging.DEBUG, logger="httpx")
    with pytest.raises(error) as raised:
        await etherscan(replay, client, name).observe(FACTS["hashes"][name])
    assert type(raised.value) is error
    assert FACTS["key"] not in str(raised.value)
    assert caplog.records, "httpx logs each request"
    assert all(FACTS["key"] not in r.getMessage() for r in caplog.records)
    assert any("apikey=[redacted]" in r.getMessage() for r in caplog.records)


async def test_a_source_that_keeps_failing_opens_its_circuit(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    source = etherscan(replay, client, "bad_gateway")
    for _ in range(4):
        with pytest.raises(SourceUnavailable):
            await source.observe(FACTS["hashes"]["bad_gateway"])
    hits = replay.hits[("etherscan", "bad_gateway")]
    with pytest.raises(SourceUnavailable, match="circuit open"):
        await source.observe(FACTS["hashes"]["bad_gateway"])
    assert replay.hits[("etherscan", "bad_gateway")] == hits  # short-circuited: no request
