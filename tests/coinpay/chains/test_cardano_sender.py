"""CardanoSender.expired against Koios's answers replayed from 127.0.0.1 (a chain the test writes
as it goes, ``KoiosChain``; see recordings/koios/README.md): a stored sweep counts as expired only
once the tip is past its TTL (and the margin), Koios knows it in no block, and every output it
spends is unspent; an output spent elsewhere keeps it as it is, logged and counted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from keel.coinpay.chains import cardano_tx
from keel.coinpay.chains.base import ExpiringSender
from keel.coinpay.chains.cardano_sender import (
    DEFAULT_EXPIRY_MARGIN_SLOTS,
    CardanoSender,
    plan_sweep,
)
from keel.coinpay.chains.cardano_tx import MAINNET_PARAMS, TxIn
from keel.coinpay.chains.koios import KoiosClient
from keel.coinpay.wallets import Family, HDRoot
from tests.coinpay.chains.koios_chain import KoiosChain, Output
from tests.coinpay.conftest import ABANDON, PAYOUT_MNEMONIC
from tests.replay import ReplayServer, checked, serve_recordings

ROOT = HDRoot.from_mnemonic(ABANDON)
DEPOSIT = ROOT.address(Family.ADA, 0)
MERCHANT = HDRoot.from_mnemonic(PAYOUT_MNEMONIC).address(Family.ADA, 7)
PLATFORM = HDRoot.from_mnemonic(PAYOUT_MNEMONIC).address(Family.ADA, 8)
AMOUNT = 25_000_000
TTL = 3_600  # slots after the tip when signed
MARGIN = DEFAULT_EXPIRY_MARGIN_SLOTS


@pytest.fixture
def koios(tmp_path: Path) -> Iterator[tuple[ReplayServer, KoiosChain]]:
    with serve_recordings(tmp_path) as server, checked(server):
        yield server, KoiosChain(tmp_path)


@pytest.fixture
async def sender(koios: tuple[ReplayServer, KoiosChain]) -> AsyncIterator[CardanoSender]:
    server, _ = koios

    async def keys() -> HDRoot:
        return ROOT

    engine = create_async_engine("sqlite+aiosqlite://")  # expired() reads no stored deposit
    client = KoiosClient(
        "ADA", [server.url("koios", "chain")], timeout_seconds=5, round_pause_seconds=0
    )
    opened = CardanoSender(client, async_sessionmaker(engine), keys)
    try:
        yield opened
    finally:
        await opened.aclose()
        await engine.dispose()


def sweep_of(ref: TxIn, ttl: int) -> tuple[str, str]:
    """(id, hex bytes) of a sweep of the deposit ``ref`` to the merchant, signed with ``ttl``."""
    unsigned, _ = plan_sweep(
        [ref],
        {"p": AMOUNT},
        {"p": cardano_tx.address_bytes(MERCHANT)},
        cardano_tx.address_bytes(PLATFORM),
        0,
        signers=1,
        ttl=ttl,
        params=MAINNET_PARAMS,
    )
    witness = cardano_tx.sign(ROOT.private_key(Family.ADA, 0), bytes.fromhex(unsigned.tx_hash))
    return unsigned.tx_hash, cardano_tx.signed_tx(unsigned.body, [witness]).hex()


def stored_sweep(chain: KoiosChain, *, lands: bool = False) -> tuple[str, str, TxIn]:
    """A deposit mined, and its sweep signed and submitted at the tip: (id, bytes, deposit)."""
    [deposit] = chain.mine([Output(DEPOSIT, AMOUNT)])
    ref = TxIn(deposit, 0)
    tx_hash, raw = sweep_of(ref, chain.tip.slot + TTL)
    chain.expect_submit(tx_hash, [(deposit, 0)], raw=raw, lands=lands)
    return tx_hash, raw, ref


def spent_elsewhere() -> float:
    labels = {"chain": "ADA"}
    return REGISTRY.get_sample_value("coinpay_sweep_inputs_spent_elsewhere_total", labels) or 0.0


def test_the_cardano_sender_is_an_expiring_sender(sender: CardanoSender) -> None:
    assert isinstance(sender, ExpiringSender)  # so the sweeper asks it before signing again


async def test_a_sweep_past_its_ttl_in_no_block_with_its_outputs_unspent_has_expired(
    koios: tuple[ReplayServer, KoiosChain], sender: CardanoSender
) -> None:
    _, chain = koios
    tx_hash, raw, _ = stored_sweep(chain)  # accepted, then lost: in no block
    chain.mine(gap=TTL + MARGIN)
    assert await sender.expired(tx_hash, raw) is True


@pytest.mark.parametrize(
    "after", [TTL - 20, TTL, TTL + MARGIN - 1], ids=["before-ttl", "at-ttl", "within-margin"]
)
async def test_a_sweep_not_past_its_ttl_and_the_margin_has_not_expired(
    koios: tuple[ReplayServer, KoiosChain], sender: CardanoSender, after: int
) -> None:
    _, chain = koios
    tx_hash, raw, _ = stored_sweep(chain)
    chain.mine(gap=after)
    assert await sender.expired(tx_hash, raw) is False


async def test_a_sweep_past_its_ttl_whose_output_was_spent_elsewhere_has_not_expired(
    koios: tuple[ReplayServer, KoiosChain], sender: CardanoSender
) -> None:
    _, chain = koios
    tx_hash, raw, ref = stored_sweep(chain)
    chain.mine(gap=TTL + MARGIN)
    chain.spend(ref.tx_hash, ref.index)  # by a transaction that is not this sweep
    before = spent_elsewhere()
    # Signing again would not spend the same output: an operator must look.
    assert await sender.expired(tx_hash, raw) is False
    assert spent_elsewhere() == before + 1


async def test_a_sweep_that_landed_has_not_expired(
    koios: tuple[ReplayServer, KoiosChain], sender: CardanoSender
) -> None:
    _, chain = koios
    tx_hash, raw, _ = stored_sweep(chain, lands=True)
    chain.mine()  # it is in this block
    chain.mine(gap=TTL + MARGIN)
    assert await sender.confirmations(tx_hash) == 2
    assert await sender.expired(tx_hash, raw) is False


async def test_bytes_that_are_not_the_sweeps_transaction_are_refused(
    koios: tuple[ReplayServer, KoiosChain], sender: CardanoSender
) -> None:
    _, chain = koios
    tx_hash, raw, ref = stored_sweep(chain)
    other, _ = sweep_of(ref, chain.tip.slot + 1)
    with pytest.raises(ValueError, match="not"):
        await sender.expired(other, raw)
    with pytest.raises(ValueError, match="not a signed Cardano transaction"):
        await sender.expired(tx_hash, "00" + raw[2:])
