"""The Payment value is the payments table, column for column, and reads a stored row whole."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from sqlalchemy import select

from keel.coinpay import apikeys, models, payments
from tests.coinpay.conftest import Harness


def test_the_payment_value_has_exactly_the_tables_columns() -> None:
    fields = [f.name for f in dataclasses.fields(payments.Payment)]
    assert fields == list(models.payments.c.keys())


async def test_a_payment_reads_the_same_through_every_read(harness: Harness) -> None:
    payment_id = (await harness.create_payment(amount="19.99"))["id"]
    principal = await apikeys.authenticate(harness.gw.lookups, harness.gw.box, harness.test_key)
    got = await payments.get(harness.gw, principal, payment_id)
    public = await payments.get_public(harness.gw, payment_id)
    listed = await payments.list_payments(
        harness.gw, principal, business_id=None, status=None, limit=5, offset=0
    )
    async with harness.gw.sessions() as session:
        row = (
            await session.execute(select(models.payments).where(models.payments.c.id == payment_id))
        ).one()
    assert got == public == payments.Payment.from_row(row)
    assert listed == [got]
    assert got.amount == Decimal("19.99")
    assert got.metadata == {"order": "42"}
