"""The commission split: exact integers, rounded down, the parts add up."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from keel.coinpay import commission, models, payments
from tests.coinpay.conftest import Harness


def test_the_published_rates() -> None:
    assert commission.split(10**8, "free").commission == 10**6  # 1 % of one BTC
    assert commission.split(10**8, "paid").commission == 5 * 10**5  # 0.5 %
    assert commission.split(99, "free").commission == 0  # under a whole unit: nothing
    assert commission.split(2**256 - 1, "paid").merchant > 0  # the largest uint256 amount


@given(
    received=st.integers(min_value=0, max_value=2**256 - 1), plan=st.sampled_from(["free", "paid"])
)
def test_the_parts_add_up_and_the_commission_never_exceeds_its_rate(
    received: int, plan: str
) -> None:
    s = commission.split(received, plan)
    assert s.commission + s.merchant == received
    assert 0 <= s.commission * 10_000 <= received * s.rate_bps
    assert (s.commission + 1) * 10_000 > received * s.rate_bps  # rounded down by less than 1


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown plan"):
        commission.split(1, "gold")
    with pytest.raises(ValueError, match="negative"):
        commission.split(-1, "free")


async def test_the_split_is_stored_on_the_payment_when_forwarding_starts(harness: Harness) -> None:
    async with harness.gw.sessions() as session, session.begin():
        await session.execute(
            update(models.businesses)
            .where(models.businesses.c.id == harness.business_id)
            .values(plan="paid")
        )
    payment = await harness.create_payment(blockchain="LTC")
    await harness.simulate(payment["id"], amount_crypto=payment["crypto_amount"])
    await harness.run_jobs()
    async with harness.gw.sessions() as session:
        stored = await payments.store.load(session, payment["id"])
    assert stored.status == "forwarded"
    assert stored.commission_bps == 50
    assert stored.commission_amount == stored.received_amount * 50 // 10_000
