"""The replay store on SQLite and PostgreSQL: a transaction unlocks one invoice, once, however
many submissions race, and the unlock (paid invoice, longer paid_until) commits with it."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keel.coach import models
from keel.coach.billing import invoices
from keel.coach.payments import claims
from keel.coach.payments.claims import ClaimResult
from keel.core import db
from tests.coach.payments.conftest import add_invoice, zero_address

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
CREATED = datetime(2025, 1, 15, 11, 40, tzinfo=UTC)
RACERS = 8
Sessions = async_sessionmaker[AsyncSession]


async def new_invoice(
    engine: AsyncEngine, sessions: Sessions, user_id: int = 1001, status: str = "open"
) -> invoices.Invoice:
    invoice_id = await add_invoice(
        engine,
        chain="ETH",
        asset="ETH",
        amount=10**16,
        recipient=zero_address(),
        created_at=CREATED,
        user_id=user_id,
        status=status,
    )
    invoice = await claims.load_invoice(sessions, invoice_id=invoice_id, user_id=user_id)
    assert invoice is not None
    return invoice


def tx_hash() -> str:
    return "0x" + secrets.token_hex(32)


async def claim(sessions: Sessions, tx: str, invoice: invoices.Invoice) -> ClaimResult:
    claimed = await claims.claim(sessions, chain="ETH", tx_hash=tx, invoice=invoice, now=NOW)
    return claimed.result


async def claim_rows(engine: AsyncEngine) -> int:
    async with db.reading(engine) as conn:
        return int(await conn.scalar(select(func.count()).select_from(models.payment_claims)) or 0)


async def state(sessions: Sessions, invoice: invoices.Invoice) -> tuple[str, str | None]:
    now = await claims.load_invoice(sessions, invoice_id=invoice.id, user_id=invoice.user_id)
    assert now is not None
    return now.status.value, now.paid_by


async def test_a_claim_pays_the_invoice_and_grants_its_days(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    invoice, tx = await new_invoice(engine, sessions), tx_hash()
    claimed = await claims.claim(sessions, chain="ETH", tx_hash=tx, invoice=invoice, now=NOW)
    assert claimed.result is ClaimResult.CLAIMED
    assert claimed.unlocked is not None
    assert claimed.unlocked.paid_until == NOW + timedelta(days=invoice.days)
    assert await state(sessions, invoice) == ("paid", tx)
    found = await claims.find_claim(sessions, chain="ETH", tx_hash=tx)
    assert found is not None
    assert (found.invoice_id, found.user_id, found.claimed_at) == (invoice.id, 1001, NOW)


async def test_the_same_hash_twice_unlocks_once(engine: AsyncEngine, sessions: Sessions) -> None:
    first, second = await new_invoice(engine, sessions), await new_invoice(engine, sessions)
    tx = tx_hash()
    assert await claim(sessions, tx, first) is ClaimResult.CLAIMED
    again = await claims.claim(sessions, chain="ETH", tx_hash=tx, invoice=second, now=NOW)
    assert again == claims.Claim(ClaimResult.TX_USED)
    assert await state(sessions, second) == ("open", None)  # nothing changed
    assert await claim_rows(engine) == 1


async def test_the_same_hash_on_another_chain_is_another_transaction(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    first, second = await new_invoice(engine, sessions), await new_invoice(engine, sessions)
    bare = secrets.token_hex(32)
    assert await claim(sessions, "0x" + bare, first) is ClaimResult.CLAIMED
    tron = await claims.claim(sessions, chain="TRON", tx_hash=bare, invoice=second, now=NOW)
    assert tron.result is ClaimResult.CLAIMED


async def test_concurrent_claims_of_one_hash_unlock_exactly_one_invoice(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    racers = [await new_invoice(engine, sessions, user_id=2000 + i) for i in range(RACERS)]
    tx = tx_hash()
    results = await asyncio.gather(*(claim(sessions, tx, invoice) for invoice in racers))
    assert results.count(ClaimResult.CLAIMED) == 1
    assert results.count(ClaimResult.TX_USED) == RACERS - 1
    statuses = [(await state(sessions, invoice))[0] for invoice in racers]
    assert statuses.count("paid") == 1
    assert await claim_rows(engine) == 1


async def test_concurrent_resubmissions_of_one_hash_for_one_invoice_grant_days_once(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    invoice, tx = await new_invoice(engine, sessions), tx_hash()
    results = await asyncio.gather(*(claim(sessions, tx, invoice) for _ in range(RACERS)))
    assert results.count(ClaimResult.CLAIMED) == 1
    assert results.count(ClaimResult.TX_USED) == RACERS - 1
    async with db.reading(engine) as conn:
        paid_until = await conn.scalar(
            select(models.users.c.paid_until).where(models.users.c.id == invoice.user_id)
        )
    assert paid_until == NOW + timedelta(days=invoice.days)


async def test_two_hashes_racing_for_one_invoice_leave_one_claim(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    invoice = await new_invoice(engine, sessions)
    hashes = [tx_hash() for _ in range(RACERS)]
    results = await asyncio.gather(*(claim(sessions, tx, invoice) for tx in hashes))
    assert results.count(ClaimResult.CLAIMED) == 1
    assert results.count(ClaimResult.INVOICE_PAID) == RACERS - 1
    assert await claim_rows(engine) == 1
    winner = hashes[results.index(ClaimResult.CLAIMED)]
    assert await state(sessions, invoice) == ("paid", winner)


async def test_an_invoice_paid_another_way_keeps_the_hash_usable(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    invoice = await new_invoice(engine, sessions, status="paid")  # through coinpay, say
    tx = tx_hash()
    assert await claim(sessions, tx, invoice) is ClaimResult.INVOICE_PAID
    assert await claim_rows(engine) == 0


async def test_an_expired_invoice_can_still_be_paid(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    invoice = await new_invoice(engine, sessions, status="expired")
    assert await claim(sessions, tx_hash(), invoice) is ClaimResult.CLAIMED


async def test_payable_invoices_are_the_users_unpaid_direct_ones_newest_first(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    older = await new_invoice(engine, sessions)
    expired = await new_invoice(engine, sessions, status="expired")
    newer = await add_invoice(
        engine,
        chain="TRON",
        asset="USDT",
        amount=10_000_000,
        recipient="TEY8j5s1oTkAAGk8ZzDGcZe4cu5F7GK9sa",
        created_at=NOW,
    )
    await new_invoice(engine, sessions, status="paid")
    await add_invoice(
        engine,
        chain="ETH",
        asset="ETH",
        amount=1,
        recipient=zero_address(),
        created_at=NOW,
        route="coinpay",
    )
    await new_invoice(engine, sessions, user_id=1002)
    found = await claims.payable_invoices(sessions, user_id=1001, chains=("ETH", "TRON"))
    assert found[0].id == newer
    assert {i.id for i in found[1:]} == {older.id, expired.id}
    assert found[0].amount == 10_000_000
    assert found[0].created_at == NOW
    only_eth = await claims.payable_invoices(sessions, user_id=1001, chains=("ETH",))
    assert newer not in {i.id for i in only_eth}
