"""The replay store on SQLite and PostgreSQL: a transaction unlocks one invoice, once, however
many submissions race."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.coach import models
from keel.coach.payments import claims
from keel.coach.payments.claims import ClaimResult
from keel.core import db
from tests.coach.payments.conftest import add_invoice, zero_address

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
CREATED = datetime(2025, 1, 15, 11, 40, tzinfo=UTC)
RACERS = 8


async def new_invoice(engine: AsyncEngine, user_id: int = 1001, status: str = "open") -> str:
    return await add_invoice(
        engine,
        chain="ETH",
        asset="ETH",
        amount=10**16,
        recipient=zero_address(),
        created_at=CREATED,
        user_id=user_id,
        status=status,
    )


def tx_hash() -> str:
    return "0x" + secrets.token_hex(32)


async def claim(engine: AsyncEngine, tx: str, invoice_id: str, user_id: int = 1001) -> ClaimResult:
    return await claims.claim(
        engine, chain="ETH", tx_hash=tx, invoice_id=invoice_id, user_id=user_id, now=NOW
    )


async def claim_rows(engine: AsyncEngine) -> int:
    async with db.reading(engine) as conn:
        return int(await conn.scalar(select(func.count()).select_from(models.payment_claims)) or 0)


async def status_of(engine: AsyncEngine, invoice_id: str) -> tuple[str, str | None]:
    invoices = models.invoices
    async with db.reading(engine) as conn:
        row = (
            await conn.execute(
                select(invoices.c.status, invoices.c.paid_by).where(invoices.c.id == invoice_id)
            )
        ).one()
    return row.status, row.paid_by


async def test_a_claim_marks_the_invoice_paid_by_the_hash(engine: AsyncEngine) -> None:
    invoice_id, tx = await new_invoice(engine), tx_hash()
    assert await claim(engine, tx, invoice_id) is ClaimResult.CLAIMED
    assert await status_of(engine, invoice_id) == ("paid", tx)
    found = await claims.find_claim(engine, chain="ETH", tx_hash=tx)
    assert found is not None
    assert found.invoice_id == invoice_id
    assert found.claimed_at == NOW


async def test_the_same_hash_twice_unlocks_once(engine: AsyncEngine) -> None:
    first, second, tx = await new_invoice(engine), await new_invoice(engine), tx_hash()
    assert await claim(engine, tx, first) is ClaimResult.CLAIMED
    assert await claim(engine, tx, second) is ClaimResult.TX_USED
    assert await status_of(engine, second) == ("open", None)  # nothing changed
    assert await claim_rows(engine) == 1


async def test_the_same_hash_on_another_chain_is_another_transaction(
    engine: AsyncEngine,
) -> None:
    first, second = await new_invoice(engine), await new_invoice(engine)
    bare = secrets.token_hex(32)
    assert await claim(engine, "0x" + bare, first) is ClaimResult.CLAIMED
    tron = await claims.claim(
        engine, chain="TRON", tx_hash=bare, invoice_id=second, user_id=1001, now=NOW
    )
    assert tron is ClaimResult.CLAIMED


async def test_concurrent_claims_of_one_hash_unlock_exactly_one_invoice(
    engine: AsyncEngine,
) -> None:
    invoices = [await new_invoice(engine, user_id=2000 + i) for i in range(RACERS)]
    tx = tx_hash()
    results = await asyncio.gather(
        *(claim(engine, tx, inv, 2000 + i) for i, inv in enumerate(invoices))
    )
    assert results.count(ClaimResult.CLAIMED) == 1
    assert results.count(ClaimResult.TX_USED) == RACERS - 1
    statuses = [(await status_of(engine, inv))[0] for inv in invoices]
    assert statuses.count("paid") == 1
    assert await claim_rows(engine) == 1


async def test_concurrent_resubmissions_of_one_hash_for_one_invoice_claim_once(
    engine: AsyncEngine,
) -> None:
    invoice_id, tx = await new_invoice(engine), tx_hash()
    results = await asyncio.gather(*(claim(engine, tx, invoice_id) for _ in range(RACERS)))
    assert results.count(ClaimResult.CLAIMED) == 1
    assert results.count(ClaimResult.TX_USED) == RACERS - 1


async def test_two_hashes_racing_for_one_invoice_leave_one_claim(engine: AsyncEngine) -> None:
    invoice_id = await new_invoice(engine)
    hashes = [tx_hash() for _ in range(RACERS)]
    results = await asyncio.gather(*(claim(engine, tx, invoice_id) for tx in hashes))
    assert results.count(ClaimResult.CLAIMED) == 1
    assert results.count(ClaimResult.INVOICE_NOT_OPEN) == RACERS - 1
    assert await claim_rows(engine) == 1
    winner = hashes[results.index(ClaimResult.CLAIMED)]
    assert await status_of(engine, invoice_id) == ("paid", winner)


async def test_an_invoice_that_is_not_open_cannot_be_claimed(engine: AsyncEngine) -> None:
    invoice_id, tx = await new_invoice(engine, status="expired"), tx_hash()
    assert await claim(engine, tx, invoice_id) is ClaimResult.INVOICE_NOT_OPEN
    assert await claim_rows(engine) == 0  # the hash stays usable
    assert await status_of(engine, invoice_id) == ("expired", None)


async def test_someone_elses_invoice_cannot_be_claimed(engine: AsyncEngine) -> None:
    invoice_id, tx = await new_invoice(engine, user_id=1001), tx_hash()
    await new_invoice(engine, user_id=1002)
    assert await claim(engine, tx, invoice_id, user_id=1002) is ClaimResult.INVOICE_NOT_OPEN
    assert await claim_rows(engine) == 0


async def test_what_paying_buys_commits_with_the_claim_or_not_at_all(
    engine: AsyncEngine,
) -> None:
    invoice_id, tx = await new_invoice(engine), tx_hash()

    async def broken(conn: AsyncConnection) -> None:
        raise RuntimeError("entitlement write failed")

    with pytest.raises(RuntimeError):
        await claims.claim(
            engine,
            chain="ETH",
            tx_hash=tx,
            invoice_id=invoice_id,
            user_id=1001,
            now=NOW,
            on_claimed=broken,
        )
    assert await claim_rows(engine) == 0
    assert await status_of(engine, invoice_id) == ("open", None)
    assert await claim(engine, tx, invoice_id) is ClaimResult.CLAIMED


async def test_open_invoices_lists_the_users_direct_ones_newest_first(
    engine: AsyncEngine,
) -> None:
    older = await new_invoice(engine)
    newer = await add_invoice(
        engine,
        chain="TRON",
        asset="USDT",
        amount=10_000_000,
        recipient="TEY8j5s1oTkAAGk8ZzDGcZe4cu5F7GK9sa",
        created_at=NOW,
    )
    await new_invoice(engine, status="paid")
    await add_invoice(
        engine,
        chain="ETH",
        asset="ETH",
        amount=1,
        recipient=zero_address(),
        created_at=NOW,
        route="coinpay",
    )
    await new_invoice(engine, user_id=1002)
    found = await claims.open_invoices(engine, user_id=1001)
    assert [i.id for i in found] == [newer, older]
    assert found[0].amount == 10_000_000
    assert found[0].created_at == NOW
