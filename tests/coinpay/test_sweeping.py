"""Sweeps: batched per chain, signed bytes stored before they are sent, sent again (never
re-signed) after a crash at any step, claimed by one worker only, reported when stuck."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from keel.coinpay import models, payments
from keel.coinpay.chains.base import SignedSweep, SweepInput
from keel.coinpay.errors import SweepReverted
from keel.coinpay.payments.sweeping import (
    LEFT_OUT,
    NOT_SENT,
    NOT_SIGNED,
    SWEEPS_STUCK,
    UNCONFIRMED,
    UNSIGNED_STUCK,
    Sweeper,
)
from tests.coinpay.conftest import Harness, make_harness


class Killed(BaseException):  # a kill, not an error: no handler may catch it
    """The worker died here (like SIGKILL, nothing below ``except Exception`` sees it)."""


@dataclass
class ScriptedSender:
    """A node that keeps every transaction it accepted (by hash) and how deep each is."""

    chain: str = "LTC"
    batch_limit: int = 3
    accepted: dict[str, str] = field(default_factory=dict)  # tx hash -> raw
    depth: dict[str, int] = field(default_factory=dict)
    signed: list[str] = field(default_factory=list)
    die_before_send: int = 0  # broadcasts that "kill the worker" before reaching the node
    die_after_send: int = 0  # broadcasts that reach the node, then "kill the worker"

    async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
        await asyncio.sleep(0)  # another worker may run meanwhile
        raw = "|".join(f"{i.payment_id}:{i.received - i.commission}" for i in inputs)
        tx_hash = hashlib.sha256(raw.encode()).hexdigest()
        self.signed.append(tx_hash)
        return SignedSweep(tx_hash, raw, {i.payment_id: 7 for i in inputs})

    async def broadcast(self, raw: str) -> None:
        if self.die_before_send:
            self.die_before_send -= 1
            raise Killed()
        tx_hash = hashlib.sha256(raw.encode()).hexdigest()
        self.accepted.setdefault(tx_hash, raw)  # "already known" is fine
        self.depth.setdefault(tx_hash, 0)
        if self.die_after_send:
            self.die_after_send -= 1
            raise Killed()

    async def confirmations(self, tx_hash: str) -> int | None:
        return self.depth.get(tx_hash)

    def mine(self, blocks: int = 1) -> None:
        for tx_hash in self.depth:
            self.depth[tx_hash] += blocks

    def payments_on_chain(self) -> Counter[str]:
        return Counter(p.split(":")[0] for raw in self.accepted.values() for p in raw.split("|"))


@pytest.fixture
async def harness(db_url: str) -> AsyncIterator[Harness]:
    async for h in make_harness(db_url, None, platform_wallets={"LTC": "ltc1platform"}):
        yield h


def sweeper(h: Harness, sender: ScriptedSender, **options: Any) -> Sweeper:
    return Sweeper(
        h.gw, "test", sender, platform_address="ltc1platform", confirmations=2, **options
    )


async def forwarding(h: Harness, count: int) -> list[str]:
    """``count`` test payments paid, confirmed and at ``forwarding`` with their split written,
    their sweep left to the sweeper under test (the mode's own sender signs nothing)."""
    h.gw.senders = {**h.gw.senders, "test": {}}
    ids = []
    for _ in range(count):
        payment = await h.create_payment(blockchain="LTC")
        await h.simulate(payment["id"], amount_crypto=payment["crypto_amount"])
        ids.append(payment["id"])
    await h.run_jobs()  # forward: split written, then "no sender": retried later
    async with h.gw.sessions() as session:
        for payment_id in ids:
            assert (await payments.store.load(session, payment_id)).status == "forwarding"
    return ids


async def api_payment(h: Harness, payment_id: str) -> dict[str, Any]:
    response = await h.client.get(f"/api/payments/{payment_id}", headers=h.auth())
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()["payment"]
    return payment


async def stored(h: Harness, payment_id: str) -> payments.Payment:
    async with h.gw.sessions() as session:
        return await payments.store.load(session, payment_id)


async def test_payments_are_batched_and_forwarded_at_the_policys_depth(harness: Harness) -> None:
    ids = await forwarding(harness, 7)
    sender = ScriptedSender()
    report = await sweeper(harness, sender).round()
    assert (report.signed, report.sent, report.confirmed) == (3, 3, 0)  # 3 + 3 + 1
    sender.mine(2)
    assert (await sweeper(harness, sender).round()).confirmed == 3
    assert sender.payments_on_chain() == dict.fromkeys(ids, 1)
    for payment_id in ids:
        payment = await stored(harness, payment_id)
        assert payment.status == "forwarded"
        assert payment.forward_tx_hash in sender.accepted
        assert payment.network_fee == 7
        assert payment.commission_amount == payment.received_amount // 100


@pytest.mark.parametrize("crash", ["before the broadcast", "after the broadcast"])
async def test_a_worker_killed_around_the_broadcast_sends_the_same_bytes_once(
    harness: Harness, crash: str
) -> None:
    [payment_id] = await forwarding(harness, 1)
    sender = ScriptedSender()
    if crash == "before the broadcast":
        sender.die_before_send = 1
    else:
        sender.die_after_send = 1
    with pytest.raises(Killed):
        await sweeper(harness, sender).round()
    signed_once = list(sender.signed)
    await sweeper(harness, sender).round()  # the restarted worker
    sender.mine(2)
    await sweeper(harness, sender).round()
    assert sender.signed == signed_once  # never signed again
    assert sender.payments_on_chain() == {payment_id: 1}
    assert (await stored(harness, payment_id)).status == "forwarded"


async def test_two_workers_never_sweep_one_payment_twice(harness: Harness) -> None:
    ids = await forwarding(harness, 5)
    sender = ScriptedSender(batch_limit=1)
    await asyncio.gather(*(sweeper(harness, sender).round() for _ in range(3)))
    await sweeper(harness, sender).round()  # each round takes 4 at most: the rest now
    sender.mine(2)
    await sweeper(harness, sender).round()
    assert sender.payments_on_chain() == dict.fromkeys(ids, 1)
    async with harness.gw.sessions() as session:
        sweeps = (await session.execute(select(models.sweeps))).all()
    assert len(sweeps) == 5
    assert {s.status for s in sweeps} == {"confirmed"}


async def test_a_forgotten_transaction_is_sent_again_and_a_slow_one_reported_stuck(
    harness: Harness,
) -> None:
    [payment_id] = await forwarding(harness, 1)
    sender = ScriptedSender()
    await sweeper(harness, sender, stuck_after=timedelta(minutes=30)).round()
    [tx_hash] = sender.accepted
    sender.accepted.clear()
    del sender.depth[tx_hash]  # evicted from the node's mempool
    await sweeper(harness, sender, stuck_after=timedelta(minutes=30)).round()
    assert list(sender.accepted) == [tx_hash]  # the very same transaction
    harness.clock.advance(timedelta(minutes=31))
    report = await sweeper(harness, sender, stuck_after=timedelta(minutes=30)).round()
    assert report.stuck == 1
    assert SWEEPS_STUCK.labels("test", "LTC")._value.get() == 1
    async with harness.gw.sessions() as session:
        [sweep] = (await session.execute(select(models.sweeps))).all()
    assert "not confirmed" in sweep.last_error
    shown = await api_payment(harness, payment_id)
    assert shown["status"] == "forwarding"
    assert shown["forwarding_reason"] == UNCONFIRMED  # the merchant sees why, in fixed words
    sender.mine(2)
    report = await sweeper(harness, sender, stuck_after=timedelta(minutes=30)).round()
    assert (report.confirmed, report.stuck) == (1, 0)
    shown = await api_payment(harness, payment_id)
    assert (shown["status"], shown["forwarding_reason"]) == ("forwarded", None)


async def test_a_sweep_the_sender_refuses_is_counted_once_overdue(harness: Harness) -> None:
    [payment_id] = await forwarding(harness, 1)

    class Refusing(ScriptedSender):
        async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
            raise ValueError("the merchant's part would be dust")

    sender = Refusing()
    options = {"stuck_after": timedelta(minutes=30)}
    assert (await sweeper(harness, sender, **options).round()).signed == 0
    assert UNSIGNED_STUCK.labels("test", "LTC")._value.get() == 0  # not overdue yet
    harness.clock.advance(timedelta(minutes=31))
    await sweeper(harness, sender, **options).round()
    assert UNSIGNED_STUCK.labels("test", "LTC")._value.get() == 1
    assert (await stored(harness, payment_id)).sweep_id is None
    shown = await api_payment(harness, payment_id)
    assert shown["forwarding_reason"] == NOT_SIGNED  # the detail stays in the log
    await sweeper(harness, ScriptedSender(), **options).round()  # the cause is fixed
    assert UNSIGNED_STUCK.labels("test", "LTC")._value.get() == 0
    assert (await api_payment(harness, payment_id))["forwarding_reason"] is None


async def test_a_batching_chains_payments_wait_for_its_round_and_leave_in_one_transaction(
    harness: Harness,
) -> None:
    sender = ScriptedSender(batch_limit=10)
    harness.gw.senders = {**harness.gw.senders, "test": {"LTC": sender}}
    ids = []
    for _ in range(3):
        payment = await harness.create_payment(blockchain="LTC")
        await harness.simulate(payment["id"], amount_crypto=payment["crypto_amount"])
        ids.append(payment["id"])
    await harness.run_jobs()  # each forward job writes its split and leaves the sweep to the round
    assert sender.signed == []
    await harness.periodic("sweep:test").run()
    assert len(sender.accepted) == 1  # one transaction for the three
    assert sender.payments_on_chain() == dict.fromkeys(ids, 1)


async def test_a_payment_the_sender_leaves_out_does_not_hold_back_its_batch(
    harness: Harness,
) -> None:
    """One payment of a batch whose funds are not spendable yet (a deposit still settling, an
    output carrying something the sweep cannot move) is left out: the others are swept now, it
    shows why, and it goes in a later round."""
    ids = await forwarding(harness, 3)
    holdout = {ids[1]}

    class Choosy(ScriptedSender):
        async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
            ready = tuple(i for i in inputs if i.payment_id not in holdout)
            if not ready:
                raise ValueError("nothing ready")
            signed = await super().sign(ready, platform_address)
            left = {i.payment_id: "2 of 3 outputs confirmed" for i in inputs if i not in ready}
            return SignedSweep(signed.tx_hash, signed.raw, signed.fees, left)

    sender = Choosy()
    await sweeper(harness, sender).round()
    assert sender.payments_on_chain() == {ids[0]: 1, ids[2]: 1}
    held = await api_payment(harness, ids[1])
    assert (held["status"], held["forwarding_reason"]) == ("forwarding", LEFT_OUT)
    assert (await stored(harness, ids[1])).sweep_id is None
    sender.mine(2)
    await sweeper(harness, sender).round()
    assert [(await stored(harness, i)).status for i in ids] == [
        "forwarded",
        "forwarding",
        "forwarded",
    ]
    holdout.clear()  # its funds settled
    await sweeper(harness, sender).round()
    sender.mine(2)
    await sweeper(harness, sender).round()
    assert sender.payments_on_chain() == {ids[0]: 1, ids[1]: 1, ids[2]: 1}
    done = await api_payment(harness, ids[1])
    assert (done["status"], done["forwarding_reason"]) == ("forwarded", None)


async def test_a_sweep_of_several_transactions_is_done_only_when_all_of_them_are(
    harness: Harness,
) -> None:
    """An account chain's sweep sends the commission, then the merchant's part: the merchant's
    being deep enough is not enough if the commission transaction failed or is shallower."""
    [payment_id] = await forwarding(harness, 1)

    @dataclass
    class TwoStep(ScriptedSender):
        batch_limit: int = 1
        failed: set[str] = field(default_factory=set)

        async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
            [sweep] = inputs
            raw = f"commission:{sweep.payment_id}\nmerchant:{sweep.payment_id}"
            return SignedSweep(self.tx_hashes(raw)[-1], raw, {sweep.payment_id: 7})

        def tx_hashes(self, raw: str) -> list[str]:
            return [hashlib.sha256(line.encode()).hexdigest() for line in raw.split("\n")]

        async def broadcast(self, raw: str) -> None:
            for tx_hash in self.tx_hashes(raw):
                self.depth.setdefault(tx_hash, 0)

        async def confirmations(self, tx_hash: str) -> int | None:
            if tx_hash in self.failed:
                raise SweepReverted(f"{tx_hash} failed")
            return self.depth.get(tx_hash)

    sender = TwoStep()
    await sweeper(harness, sender).round()
    commission, merchant = sender.tx_hashes(f"commission:{payment_id}\nmerchant:{payment_id}")
    sender.depth[merchant] = 5
    sender.depth[commission] = 1  # shallower than the policy's 2
    await sweeper(harness, sender).round()
    assert (await stored(harness, payment_id)).status == "forwarding"
    sender.failed.add(commission)
    sender.depth[commission] = 5
    await sweeper(harness, sender).round()
    assert (await stored(harness, payment_id)).status == "forwarding"
    async with harness.gw.sessions() as session:
        [sweep] = (await session.execute(select(models.sweeps))).all()
    assert "failed" in sweep.last_error
    sender.failed.clear()
    await sweeper(harness, sender).round()
    assert (await stored(harness, payment_id)).status == "forwarded"


async def test_a_sweep_no_node_accepts_is_reported_stuck(harness: Harness) -> None:
    [payment_id] = await forwarding(harness, 1)

    class Refused(ScriptedSender):
        async def broadcast(self, raw: str) -> None:
            raise ValueError("bad-txns-inputs-missingorspent")

    options = {"stuck_after": timedelta(minutes=30)}
    await sweeper(harness, Refused(), **options).round()
    assert SWEEPS_STUCK.labels("test", "LTC")._value.get() == 0
    harness.clock.advance(timedelta(minutes=31))
    await sweeper(harness, Refused(), **options).round()
    assert SWEEPS_STUCK.labels("test", "LTC")._value.get() == 1
    shown = await api_payment(harness, payment_id)
    assert (shown["status"], shown["forwarding_reason"]) == ("forwarding", NOT_SENT)


async def test_payments_that_cannot_go_do_not_starve_the_others(harness: Harness) -> None:
    """Two payments the sender always refuses, two slots a round: the third payment, which
    can go, is swept in the next round instead of waiting behind them for ever."""
    ids = sorted(await forwarding(harness, 3))  # confirmed together: in line by id
    refused = set(ids[:2])  # the first two in line

    @dataclass
    class Picky(ScriptedSender):
        batch_limit: int = 1

        async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
            if inputs[0].payment_id in refused:
                raise ValueError("dust")
            return await super().sign(inputs, platform_address)

    sender = Picky()
    await sweeper(harness, sender, parallel=2).round()
    assert sender.signed == []  # both slots went to the two that cannot go
    await sweeper(harness, sender, parallel=2).round()
    assert sender.payments_on_chain() == {ids[2]: 1}
