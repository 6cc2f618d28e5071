"""The block scanner: each block read once, only our live payments' transfers kept, depth
counted against the scan, reorgs followed back, restarts resumed; the scan's cost per block
does not grow with the number of open payments."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event

from keel.coinpay import models
from keel.coinpay.chains.base import Transfer
from keel.coinpay.chains.scanner import KEEP_BLOCKS, ObservedChain, ReorgTooDeep, Scanner
from keel.coinpay.lifecycle import Deposit, Status
from tests.coinpay.chains.scripted import ScriptedChain
from tests.coinpay.conftest import Harness, make_harness


@pytest.fixture
async def harness(db_url: str) -> AsyncIterator[Harness]:
    async for h in make_harness(db_url, None):
        yield h


async def open_payment(h: Harness, *, coin: str = "ETH", mode: str = "live") -> str:
    """A payment row waiting at a fresh address (the API's path is tested elsewhere)."""
    address = "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    now = h.clock.now()
    async with h.gw.sessions() as session, session.begin():
        await session.execute(
            models.payments.insert().values(
                id=str(uuid.uuid4()),
                business_id=h.business_id,
                mode=mode,
                amount=Decimal("10.00"),
                currency="USD",
                blockchain=coin,
                crypto_amount=10**18,
                rate=Decimal(1),
                rate_source="test",
                payment_address=address,
                family_key="test",
                derivation_index=0,
                custody="system",
                payout_address=None,
                status=Status.PENDING.value,
                paid_partial=False,
                paid_over=False,
                paid_late=False,
                received_amount=0,
                confirmations=0,
                required_confirmations=3,
                tolerance_percent=Decimal(1),
                description=None,
                metadata={},
                expires_at=now + timedelta(hours=1),
                monitor_until=now + timedelta(hours=2),
                created_at=now,
                updated_at=now,
            )
        )
    return address


def pay(address: str, amount: int, *, coin: str = "ETH", position: int = 0) -> Transfer:
    return Transfer(coin, "0x" + uuid.uuid4().hex, position, address, amount)


async def deposits(h: Harness, address: str, coin: str = "ETH") -> list[Deposit]:
    return await ObservedChain(h.gw.sessions).deposits_to(coin, address)


def scanner(h: Harness, chain: ScriptedChain) -> Scanner:
    return Scanner(chain, h.gw.sessions, h.clock)


async def test_only_our_live_payments_transfers_are_kept_and_depth_follows_the_scan(
    harness: Harness,
) -> None:
    ours = await open_payment(harness)
    test_world = await open_payment(harness, mode="test")
    token = await open_payment(harness, coin="USDC_ETH")
    chain = ScriptedChain()
    chain.mine()
    report = await scanner(harness, chain).step()  # starts at the tip
    assert report.scanned == (1,)
    paid = pay(ours, 5 * 10**17)
    wrong_coin = pay(token, 7, coin="ETH")  # ETH sent to a USDC payment's address
    chain.mine(paid, pay(test_world, 1), wrong_coin, pay("0xstranger", 9))
    report = await scanner(harness, chain).step()
    assert report.touched == {ours}
    assert await deposits(harness, ours) == [Deposit(paid.tx_hash, 5 * 10**17, 1)]
    assert await deposits(harness, test_world) == []
    assert await deposits(harness, token, "USDC_ETH") == []
    chain.mine()
    chain.mine()
    await scanner(harness, chain).step()
    assert await deposits(harness, ours) == [Deposit(paid.tx_hash, 5 * 10**17, 3)]


async def test_a_restart_resumes_after_the_last_block_stored(harness: Harness) -> None:
    ours = await open_payment(harness)
    chain = ScriptedChain()
    chain.mine()
    await scanner(harness, chain).step()
    first = pay(ours, 2)
    chain.mine(first)
    chain.mine(pay(ours, 3, position=1))
    assert (
        await Scanner(chain, harness.gw.sessions, harness.clock, max_blocks_per_step=1).step()
    ).scanned == (2,)
    chain.reads.clear()
    report = await scanner(harness, chain).step()  # a new process
    assert report.scanned == (3,)
    assert chain.reads == [3]  # block 2 was not read again
    assert sum(d.amount for d in await deposits(harness, ours)) == 5


async def test_a_reorg_orphans_the_dropped_blocks_transfers_until_mined_again(
    harness: Harness,
) -> None:
    ours = await open_payment(harness)
    chain = ScriptedChain()
    chain.mine()
    await scanner(harness, chain).step()
    kept, moved, lost = pay(ours, 1), pay(ours, 2), pay(ours, 4)
    chain.mine(kept)
    chain.mine(moved, lost)
    await scanner(harness, chain).step()
    chain.reorg(1)
    chain.mine()  # the new branch: block 3 empty, block 4 mines `moved` again
    chain.mine(moved)
    report = await scanner(harness, chain).step()
    assert report.dropped == (3,)
    assert report.scanned == (3, 4)
    assert ours in report.touched
    assert await deposits(harness, ours) == [
        Deposit(kept.tx_hash, 1, 3),
        Deposit(moved.tx_hash, 2, 1),
        Deposit(lost.tx_hash, 4, 0, reverted=True),
    ]
    chain.mempool.append(lost)  # back in the mempool: pending again, not reverted
    await scanner(harness, chain).step()
    assert (await deposits(harness, ours))[2] == Deposit(lost.tx_hash, 4, 0)


async def test_the_mempool_gives_zero_confirmations_then_the_block_counts(
    harness: Harness,
) -> None:
    ours = await open_payment(harness)
    chain = ScriptedChain()
    chain.mine()
    await scanner(harness, chain).step()
    incoming = pay(ours, 10)
    chain.mempool.append(incoming)
    assert (await scanner(harness, chain).step()).touched == {ours}
    assert await deposits(harness, ours) == [Deposit(incoming.tx_hash, 10, 0)]
    assert (await scanner(harness, chain).step()).touched == frozenset()  # nothing new
    chain.mine(incoming)
    await scanner(harness, chain).step()
    assert await deposits(harness, ours) == [Deposit(incoming.tx_hash, 10, 1)]


async def test_a_reorg_deeper_than_the_hashes_kept_stops_for_an_operator(
    harness: Harness,
) -> None:
    chain = ScriptedChain()
    chain.mine()
    await scanner(harness, chain).step()
    for _ in range(KEEP_BLOCKS + 2):
        chain.mine()
    await Scanner(chain, harness.gw.sessions, harness.clock, max_blocks_per_step=10**6).step()
    chain.reorg(KEEP_BLOCKS + 1)
    for _ in range(KEEP_BLOCKS + 2):
        chain.mine()
    with pytest.raises(ReorgTooDeep):
        await scanner(harness, chain).step()


async def test_the_statements_per_block_do_not_grow_with_the_open_payments(
    harness: Harness,
) -> None:
    statements: list[str] = []

    @event.listens_for(harness.gw.engine.sync_engine, "before_cursor_execute")
    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    chain = ScriptedChain()
    chain.mine()
    await scanner(harness, chain).step()
    per_block = []
    for open_payments in (10, 200):
        addresses = [await open_payment(harness) for _ in range(open_payments)]
        chain.mine(pay(addresses[0], 1), *(pay(f"0xother{i}", 1) for i in range(300)))
        statements.clear()
        await scanner(harness, chain).step()
        per_block.append(len(statements))
    assert per_block[0] == per_block[1]


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Steps of a chain's life: mine a block paying k of our addresses, reorg k blocks, put a
    payment in the mempool, or scan."""
    ops = st.one_of(
        st.tuples(st.just("mine"), st.integers(0, 2)),
        st.tuples(st.just("reorg"), st.integers(1, 3)),
        st.tuples(st.just("mempool"), st.integers(0, 1)),
        st.tuples(st.just("scan"), st.just(0)),
    )
    return draw(st.lists(ops, min_size=1, max_size=25))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories())
async def test_after_any_history_the_deposits_are_the_canonical_chains(
    harness: Harness, history: Sequence[tuple[str, int]]
) -> None:
    async with harness.gw.sessions() as session, session.begin():
        for table in (models.chain_transfers, models.chain_blocks, models.chain_cursors):
            await session.execute(delete(table))
    addresses = [await open_payment(harness) for _ in range(2)]
    chain = ScriptedChain()
    chain.mine()
    await scanner(harness, chain).step()
    seen: dict[str, Transfer] = {}
    for op, k in history:
        if op == "mine":
            new = [pay(addresses[i % 2], 1 + i) for i in range(k)]
            seen.update({t.tx_hash: t for t in new})
            chain.mine(*new, *chain.mempool)
        elif op == "reorg" and len(chain.blocks) > k + 1:
            chain.reorg(k)
        elif op == "mempool" and k:
            incoming = pay(addresses[0], 100)
            seen[incoming.tx_hash] = incoming
            chain.mempool.append(incoming)
        elif op == "scan":
            await scanner(harness, chain).step()
    await scanner(harness, chain).step()
    tip = chain.blocks[-1].ref.height
    where = {t.tx_hash: b.ref.height for b in chain.blocks for t in b.transfers}
    pending = {t.tx_hash for t in chain.mempool}
    for address in addresses:
        expected = {}
        for tx, t in seen.items():
            if t.address != address:
                continue
            if tx in where:
                expected[tx] = (t.amount, tip - where[tx] + 1, False)
            elif tx in pending:
                expected[tx] = (t.amount, 0, False)
            else:  # mined on a branch that was dropped, if the scanner ever saw it
                expected[tx] = (t.amount, 0, True)
        got = {
            d.tx_hash: (d.amount, d.confirmations, d.reverted)
            for d in await deposits(harness, address)
        }
        # A transfer mined and dropped between two scans was never seen: nothing to revert.
        unseen = {tx for tx, v in expected.items() if v[2] and tx not in got}
        assert got == {tx: v for tx, v in expected.items() if tx not in unseen}, (
            history,
            address,
            addresses,
        )
