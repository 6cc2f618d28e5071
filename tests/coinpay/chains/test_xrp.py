"""The XRP Ledger source against rippled's answers replayed over real HTTP on 127.0.0.1
(recordings/xrp/README.md says where the shapes come from): what counts as a transfer, the
partial-payment exploit, a ledger above the tip, and failover across providers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coinpay.chains import xrp
from keel.coinpay.chains.base import Mempool
from keel.coinpay.chains.rpc import MalformedResponse
from keel.coinpay.chains.xrp import XrpSource, delivered_drops, framed_client
from keel.coinpay.errors import BlockNotFound, ChainUnavailable
from keel.coinpay.wallets import Family, HDRoot
from tests.chains_nodes import closed_port_url
from tests.coinpay.chains.conftest import provider_errors
from tests.replay import ReplayServer, checked, serve_recordings

RECORDINGS = Path(__file__).parent / "recordings"
LEDGER = 90000010
ACCOUNT = HDRoot.from_mnemonic(" ".join(["abandon"] * 11 + ["about"])).address(Family.XRP, 0)
PAID = "CB3ABA0FF2BA58D90721010AA556CD344257AFFFDE4F60999C33687CB118FE13"
PARTIAL = "BB8C6E6BEA12D56E6498688A4C14907D8EB382EB90E5CB3536EE0A60B2B682AB"
UNTAGGED = "B0F65B459A2753BBE9D46F171BBC572918B56E0FFE01EAC64290F0888DDD602D"


@pytest.fixture(scope="module")
def _server() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def replay(_server: ReplayServer) -> Iterator[ReplayServer]:
    with checked(_server) as server:
        yield server


def url(replay: ReplayServer, name: str) -> str:
    return replay.url("xrp", name) + "/"


@pytest.fixture
async def source(replay: ReplayServer) -> AsyncIterator[XrpSource]:
    found = XrpSource(framed_client("XRP", (url(replay, "source"),), round_pause_seconds=0))
    yield found
    await found.aclose()


async def test_the_tip_is_the_newest_validated_ledger(source: XrpSource) -> None:
    tip = await source.tip()
    assert tip.height == LEDGER
    assert len(tip.hash) == len(tip.parent_hash) == 64
    assert tip.hash != tip.parent_hash


async def test_a_ledger_gives_its_successful_xrp_payments_with_their_tags(
    source: XrpSource,
) -> None:
    block = await source.block(LEDGER)
    assert block.ref == await source.tip()
    found = {t.tx_hash: t for t in block.transfers}
    # The failed payment (tec), the offer and the USD payment are not transfers.
    assert list(found) == [PAID, PARTIAL, UNTAGGED]
    paid = found[PAID]
    assert (paid.coin, paid.address, paid.amount, paid.memo, paid.position) == (
        "XRP",
        ACCOUNT,
        25_000_000,
        "424242",
        0,
    )
    assert (found[UNTAGGED].amount, found[UNTAGGED].memo) == (3_000_000, None)


async def test_a_partial_payment_credits_what_it_delivered_not_its_amount(
    source: XrpSource,
) -> None:
    block = await source.block(LEDGER)
    [partial] = [t for t in block.transfers if t.tx_hash == PARTIAL]
    # Its Amount says 1,000,000 XRP; five drops arrived.
    assert partial.amount == 5
    assert partial.memo == "424243"


async def test_the_wrapped_api_v2_shape_reads_the_same(replay: ReplayServer) -> None:
    v2 = XrpSource(framed_client("XRP", (url(replay, "source_api_v2"),)))
    try:
        block = await v2.block(LEDGER)
    finally:
        await v2.aclose()
    [transfer] = block.transfers
    assert (transfer.tx_hash, transfer.amount, transfer.memo) == (PAID, 25_000_000, "424242")
    assert block.ref.height == LEDGER


async def test_a_ledger_above_the_validated_tip_is_not_found(source: XrpSource) -> None:
    with pytest.raises(BlockNotFound, match=str(LEDGER + 1)):
        await source.block(LEDGER + 1)


async def test_validated_ledgers_are_final_so_the_mempool_concludes_nothing(
    source: XrpSource,
) -> None:
    assert await source.pending() == Mempool(complete=False)


async def test_a_closed_port_and_an_overloaded_node_fail_over_to_the_next(
    replay: ReplayServer,
) -> None:
    dead, busy = closed_port_url(), url(replay, "overloaded")
    before = provider_errors("XRP", busy, "http_5xx")
    rpc = framed_client("XRP", (dead, busy, url(replay, "source")), round_pause_seconds=0)
    found = XrpSource(rpc)
    try:
        tip = await found.tip()
    finally:
        await found.aclose()
    assert tip.height == LEDGER
    assert provider_errors("XRP", dead, "connect") >= 1
    assert provider_errors("XRP", busy, "http_5xx") == before + 1


async def test_a_node_not_synced_is_a_provider_failure_not_an_answer(
    replay: ReplayServer,
) -> None:
    rpc = framed_client("XRP", (url(replay, "not_synced"),), rounds=1)
    found = XrpSource(rpc)
    try:
        with pytest.raises(ChainUnavailable, match="noNetwork"):
            await found.tip()
    finally:
        await found.aclose()
    assert provider_errors("XRP", url(replay, "not_synced"), "rpc_server") >= 1


@given(
    delivered=st.integers(min_value=0, max_value=xrp.MAX_DROPS),
    amount=st.integers(min_value=0, max_value=xrp.MAX_DROPS),
    partial=st.booleans(),
)
def test_delivered_drops_never_read_the_amount(delivered: int, amount: int, partial: bool) -> None:
    meta: dict[str, object] = {
        "TransactionResult": "tesSUCCESS",
        "delivered_amount": str(delivered),
    }
    if partial:
        meta["DeliveredAmount"] = str(delivered)
    # Whatever Amount the transaction names (here, in the metadata's neighbourhood), only the
    # delivered drops count.
    meta["Amount"] = str(amount)
    assert delivered_drops(meta) == delivered


@pytest.mark.parametrize(
    "value", [25_000_000, "-5", "1.5", "1e6", "", "0x10", str(xrp.MAX_DROPS + 1), None]
)
def test_anything_but_a_string_of_drops_is_malformed(value: object) -> None:
    with pytest.raises(MalformedResponse):
        xrp.drops(value)


def test_a_payment_without_delivered_amount_is_malformed_never_read_from_amount() -> None:
    with pytest.raises(MalformedResponse):
        delivered_drops({"TransactionResult": "tesSUCCESS", "Amount": "1000"})
    issued = {"delivered_amount": {"currency": "USD", "issuer": ACCOUNT, "value": "1"}}
    assert delivered_drops(issued) is None
