"""Races are tested, not argued."""

from __future__ import annotations

import asyncio

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
