"""XRP sweeps against rippled's answers replayed on 127.0.0.1 (recordings/xrp/README.md): the
exact Payments signed (commission, then merchant minus the fee, at the account's Sequence), the
reserve left behind, refusals before anything is sent, and an idempotent resubmission."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from keel.coinpay.chains.base import SweepInput
from keel.coinpay.chains.xrp import framed_client
from keel.coinpay.chains.xrp_sender import XrpSender, payee
from keel.coinpay.errors import SweepRefused
from keel.coinpay.wallets import Family, HDRoot
from tests.replay import ReplayServer, checked, serve_recordings

RECORDINGS = Path(__file__).parent / "recordings"
ROOT = HDRoot.from_mnemonic(" ".join(["abandon"] * 11 + ["about"]))
ZOO = HDRoot.from_mnemonic(" ".join(["zoo"] * 11 + ["wrong"]))
ACCOUNT = ROOT.address(Family.XRP, 0)
MERCHANT = ZOO.address(Family.XRP, 7)
PLATFORM = ZOO.address(Family.XRP, 8)
COMMISSION_TX = "7CCED693F7D294AD1AE72AF85EA0EF4FCF10925D7D66AE808D57A5DA8BCCB495"
MERCHANT_TX = "986A0E082FF9D66B648F8A5C0E066FD6E6E8EE5829701B419F863ED24416CB9D"
SWEEP = SweepInput(
    payment_id="p1",
    coin="XRP",
    address=ACCOUNT,
    derivation_index=0,
    received=25_000_000,
    commission=250_000,
    merchant_address=MERCHANT,
)


@pytest.fixture(scope="module")
def _server() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def replay(_server: ReplayServer) -> Iterator[ReplayServer]:
    with checked(_server) as server:
        yield server


async def _root() -> HDRoot:
    return ROOT


def sender_for(replay: ReplayServer, name: str) -> XrpSender:
    rpc = framed_client("XRP", (replay.url("xrp", name) + "/",), round_pause_seconds=0)
    return XrpSender(rpc, _root)


@pytest.fixture
async def sender(replay: ReplayServer) -> AsyncIterator[XrpSender]:
    found = sender_for(replay, "sweep")
    yield found
    await found.aclose()


def recorded_blobs() -> list[str]:
    recording = json.loads((RECORDINGS / "xrp" / "sweep.json").read_text())
    return [
        x["request"]["json"]["params"][0]["tx_blob"]
        for x in recording["exchanges"]
        if x["request"]["json"]["method"] == "submit"
    ]


async def test_a_sweep_pays_the_commission_then_the_merchant_less_the_fee_and_confirms(
    sender: XrpSender,
) -> None:
    from xrpl.core.binarycodec import decode

    signed = await sender.sign((SWEEP,), PLATFORM)
    assert signed.tx_hash == MERCHANT_TX
    assert signed.fees == {"p1": 24}  # two Payments at the open ledger fee of 12 drops
    blobs = signed.raw.split("\n")
    assert blobs == recorded_blobs()  # byte for byte what xrpl-py signs for these fields
    commission, merchant = (decode(b) for b in blobs)
    assert (commission["Destination"], commission["Amount"], commission["Sequence"]) == (
        PLATFORM,
        "250000",
        5,
    )
    assert (merchant["Destination"], merchant["Amount"], merchant["Sequence"]) == (
        MERCHANT,
        str(25_000_000 - 250_000 - 24),
        6,
    )
    assert commission["LastLedgerSequence"] == merchant["LastLedgerSequence"] == 90000040
    # 26 XRP held: the 25 received leave, the 1 XRP reserve stays.
    await sender.broadcast(signed.raw)
    assert await sender.confirmations(signed.tx_hash) == 1


async def test_a_sweep_that_would_eat_into_the_reserve_is_refused_unsent(
    replay: ReplayServer,
) -> None:
    sender = sender_for(replay, "sweep_reserve_short")
    try:
        with pytest.raises(SweepRefused, match="reserve of 1000000"):
            await sender.sign((SWEEP,), PLATFORM)
    finally:
        await sender.aclose()


async def test_a_payout_that_requires_a_tag_is_refused_without_one(replay: ReplayServer) -> None:
    sender = sender_for(replay, "sweep_tag_needed")
    try:
        with pytest.raises(SweepRefused, match="requires a destination tag"):
            await sender.sign((SWEEP,), PLATFORM)
    finally:
        await sender.aclose()


async def test_resubmitting_an_applied_sweep_counts_as_sent(replay: ReplayServer) -> None:
    sender = sender_for(replay, "resubmit")
    try:
        # tefPAST_SEQ, but the node has this very transaction: the sweep went through.
        await sender.broadcast(recorded_blobs()[1])
    finally:
        await sender.aclose()


def test_an_x_address_payout_keeps_its_tag() -> None:
    from xrpl.core.addresscodec import classic_address_to_xaddress

    tagged = classic_address_to_xaddress(MERCHANT, 991, False)
    assert payee(tagged) == (MERCHANT, 991)
    assert payee(MERCHANT) == (MERCHANT, None)


async def test_the_platform_fee_wallet_is_off_every_payment_path() -> None:
    address, key = ROOT.fee_wallet(Family.XRP)
    assert len(key) == 32
    assert address not in {ROOT.address(Family.XRP, i) for i in range(50)}
    assert (
        repr(XrpSender(framed_client("XRP", ("http://127.0.0.1:9",)), _root)) == "XrpSender('XRP')"
    )


def test_each_stored_payment_hashes_as_rippled_names_it() -> None:
    blobs = recorded_blobs()
    hashes = XrpSender.tx_hashes(cast(Any, None), "\n".join(blobs))
    assert len(hashes) == 2
    assert hashes[-1] == MERCHANT_TX  # the hash the recorded `tx` answer carries


@pytest.mark.parametrize(
    ("recording", "expired"),
    [
        ("expiry_unapplied_past", True),  # nothing applied, past LastLedgerSequence: re-sign
        ("expiry_applied", False),  # the commission took Sequence 5: never signed again
        ("expiry_not_yet", False),  # may still be applied
    ],
)
async def test_a_sweep_expires_only_when_none_of_it_was_applied_and_none_can_be(
    replay: ReplayServer, recording: str, expired: bool
) -> None:
    sender = sender_for(replay, recording)
    try:
        assert await sender.expired(MERCHANT_TX, "\n".join(recorded_blobs())) is expired
    finally:
        await sender.aclose()
