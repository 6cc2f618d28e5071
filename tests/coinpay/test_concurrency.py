"""Races are tested, not argued."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tests.coinpay.conftest import Harness


async def test_200_concurrent_creates_get_200_distinct_addresses(harness: Harness) -> None:
    body = {"business_id": harness.business_id, "amount": "5.00", "blockchain": "ETH"}

    async def create() -> str:
        response = await harness.client.post(
            "/api/payments/create", json=body, headers=harness.auth()
        )
        assert response.status_code == 201, response.text
        address: str = response.json()["payment"]["payment_address"]
        return address

    addresses = await asyncio.gather(*(create() for _ in range(200)))
    assert len(set(addresses)) == 200
    from keel.coinpay import addresses as allocation

    async with harness.gw.sessions() as session:
        indexes = await allocation.current_indexes(session)
    assert indexes["system:EVM"] >= 200


async def test_a_cold_process_survives_a_burst_of_first_creates(harness: Harness) -> None:
    """A restart meeting a burst: no warm-up, more concurrent creates than pooled connections."""
    from keel.coinpay import apikeys, payments
    from keel.coinpay.addresses import SequenceAllocator, system_family_key
    from keel.coinpay.wallets import Family

    allocator = SequenceAllocator(harness.gw.engine)
    await allocator.prepare(system_family_key(f) for f in Family)
    harness.gw.allocator = allocator
    who = await apikeys.authenticate(harness.gw.lookups, harness.gw.box, harness.test_key)
    request = payments.NewPayment(
        business_id=harness.business_id,
        amount=Decimal("3"),
        currency="USD",
        blockchain="BNB",
    )
    rows = await asyncio.gather(*(payments.create(harness.gw, who, request) for _ in range(40)))
    assert len({r.payment_address for r in rows}) == 40
