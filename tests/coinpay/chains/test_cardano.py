"""KoiosSource against Koios's answers replayed from 127.0.0.1 (recordings/koios/README.md)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from keel.coinpay.chains import config, senders, sources
from keel.coinpay.chains.base import BlockRef, Mempool, Transfer
from keel.coinpay.chains.cardano import KoiosSource
from keel.coinpay.chains.cardano_sender import CardanoSender
from keel.coinpay.chains.koios import KoiosClient
from keel.coinpay.errors import (
    BlockNotFound,
    ChainUnavailable,
    InvalidChainConfig,
    RpcCallRejected,
)
from keel.coinpay.wallets import Family, HDRoot
from tests.chains_nodes import closed_port_url
from tests.coinpay.chains.conftest import provider_errors
from tests.coinpay.chains.koios_chain import _koios_server, koios_replay
from tests.coinpay.conftest import ABANDON
from tests.replay import ReplayServer

__all__ = ["_koios_server", "koios_replay"]

HEIGHT = 10_500_000
BLOCK = "b8a2a5e7c0c3f5e8d6b7e33ce4fd3bd0c7a0f1b0e7b3a0e2c1d9f3a8b6c4d201"
PARENT = "4f5d8d6a1d6e0c5b3a2f1e0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a39281706f"
TX1 = "92bcd06b25dfbd89b578d536b4d3b7dd269b7c2aa206ed518012cffe0444d67f"
TX2 = "f144a8264acf4bdfe2e1241170969c930d64ab6b0996a4a45237b623f1dd670e"
BYRON = (
    "DdzFFzCqrhsrcTVhLygT24QwTnNqQqQ8mZrq5jykUzMveU26sxaH529kMpo7VXudRuMVqVYXUrNAs4XPAvgjqmUJ"
    "TQbVBaXyhp4Rs3jk"
)
ROOT = HDRoot.from_mnemonic(ABANDON)
A, B, C = (ROOT.address(Family.ADA, i) for i in range(3))


def source(*urls: str) -> KoiosSource:
    return KoiosSource(KoiosClient("ADA", urls, timeout_seconds=2, round_pause_seconds=0))


async def test_a_block_is_read_with_each_outputs_lovelace_as_a_transfer(
    koios_replay: ReplayServer,
) -> None:
    ada = source(koios_replay.url("koios", "block"))
    try:
        assert await ada.tip() == BlockRef(HEIGHT, BLOCK, PARENT)
        block = await ada.block(HEIGHT)
        assert block.ref == BlockRef(HEIGHT, BLOCK, PARENT)
        assert block.transfers == (
            Transfer("ADA", TX1, 0, A, 25_458_248),
            Transfer("ADA", TX1, 1, BYRON, 1_000_000),
            Transfer("ADA", TX1, 2, B, 3_000_000_000_000),  # beyond 2**32, exact
            # An output with native tokens counts for its lovelace only.
            Transfer("ADA", TX2, 0, C, 1_444_443),
            # The third transaction's scripts failed: its output to A was never created.
        )
        empty = await ada.block(HEIGHT - 1)
        assert (empty.ref.hash, empty.transfers) == (PARENT, ())
        with pytest.raises(BlockNotFound):
            await ada.block(HEIGHT + 1)  # above the tip
        assert await ada.pending() == Mempool(complete=False)
    finally:
        await ada.aclose()


async def test_a_block_that_changes_between_two_requests_is_not_found_this_time(
    koios_replay: ReplayServer,
) -> None:
    ada = source(koios_replay.url("koios", "block_rolled_back"))
    try:
        with pytest.raises(BlockNotFound, match="changed while it was read"):
            await ada.block(HEIGHT)
    finally:
        await ada.aclose()


@pytest.mark.parametrize("first", ["closed port", "HTTP 503"])
async def test_a_failing_provider_hands_over_to_the_next(
    koios_replay: ReplayServer, first: str
) -> None:
    down = closed_port_url() if first == "closed port" else koios_replay.url("koios", "haproxy_503")
    kind = "connect" if first == "closed port" else "http_5xx"
    before = provider_errors("ADA", down, kind)
    ada = source(down, koios_replay.url("koios", "block"))
    try:
        assert (await ada.tip()).height == HEIGHT
        assert len((await ada.block(HEIGHT)).transfers) == 4
    finally:
        await ada.aclose()
    # Each of the four requests (tip, block, its transactions, their outputs) failed over.
    assert provider_errors("ADA", down, kind) == before + 4


async def test_no_provider_answering_is_chain_unavailable(koios_replay: ReplayServer) -> None:
    ada = source(closed_port_url(), koios_replay.url("koios", "haproxy_503"))
    try:
        with pytest.raises(ChainUnavailable, match="no RPC provider answered /blocks"):
            await ada.tip()
    finally:
        await ada.aclose()


async def test_a_400_blames_the_call_and_is_not_retried_elsewhere(
    koios_replay: ReplayServer,
) -> None:
    ada = source(koios_replay.url("koios", "bad_filter_400"), koios_replay.url("koios", "block"))
    try:
        with pytest.raises(RpcCallRejected) as raised:
            await ada.tip()
    finally:
        await ada.aclose()
    assert raised.value.rpc_code == 400
    assert "PGRST100" in raised.value.rpc_message
    assert koios_replay.hits[("koios", "block")] == 0


async def test_the_koios_api_setting_opens_a_koios_source() -> None:
    ada = config.load(
        {
            "KEEL_COINPAY_ADA_RPC_URLS": "https://api.koios.rest/api/v1",
            "KEEL_COINPAY_ADA_API": "koios",
        }
    ).chain("ADA")
    opened = sources.open_source(ada)
    try:
        assert isinstance(opened, KoiosSource)
        assert opened.chain == "ADA"
    finally:
        await opened.aclose()


async def test_ada_gets_a_batching_sender_when_it_has_a_platform_wallet() -> None:
    async def root() -> HDRoot:
        return ROOT

    chains = config.load({"KEEL_COINPAY_ADA_RPC_URLS": "https://api.koios.rest/api/v1"})
    engine = create_async_engine("sqlite+aiosqlite://")
    sessions = async_sessionmaker(engine)
    try:
        assert senders.open_senders(chains, root, sessions=sessions) == {}  # no platform wallet
        opened = senders.open_senders(chains, root, sessions=sessions, platform_wallets={"ADA": A})
        try:
            [(chain, sender)] = opened.items()
            assert chain == "ADA"
            assert isinstance(sender, CardanoSender)
            assert sender.batch_limit == 40
        finally:
            for s in opened.values():
                await s.aclose()
        with pytest.raises(InvalidChainConfig, match="not a mainnet Cardano address"):
            senders.open_senders(
                chains, root, sessions=sessions, platform_wallets={"ADA": "ltc1qnotcardano"}
            )
    finally:
        await engine.dispose()
