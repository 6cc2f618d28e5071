"""``subscribe``: one coinpay payment per invoice, an open invoice handed out again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from keel.coach import models
from keel.coach.adapters.coinpay import CoinpayPayment, CoinpayRefused, CoinpayUnavailable
from keel.coach.billing import coinpay
from keel.coach.billing.coinpay import Plan
from keel.coach.billing.errors import InconsistentPayment, UnknownUser, UnsupportedCoin
from keel.coach.billing.lifecycle import InvoiceStatus
from keel.coach.settings import CoachSettings
from tests.coach.billing.conftest import NOW, MakeUser, Sessions
from tests.coach.billing.fake_coinpay import FakeCoinpay

PLAN = Plan(price_usd=Decimal("10"), days=30)


@pytest.fixture
def fake() -> FakeCoinpay:
    return FakeCoinpay(lambda: NOW)


async def invoice_count(sessions: Sessions) -> int:
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(models.invoices))
    return int(count or 0)


async def test_a_new_invoice_records_coinpays_payment_exactly(
    sessions: Sessions, make_user: MakeUser, fake: FakeCoinpay
) -> None:
    user = await make_user()
    invoice = await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="eth", now=NOW)
    payment = fake.payments[invoice.coinpay_payment_id or ""]
    # 10 / 2600 ETH, to the wei, never through a float.
    assert payment.crypto_amount == Decimal("0.003846153846153846")
    assert invoice.amount == 3_846_153_846_153_846
    assert (invoice.route, invoice.chain, invoice.asset) == ("coinpay", "ETH", "ETH")
    assert (invoice.status, invoice.days) == (InvoiceStatus.OPEN, 30)
    assert invoice.recipient == payment.payment_address
    assert invoice.expires_at == payment.expires_at == NOW + timedelta(minutes=15)
    assert payment.metadata == {"coach_invoice_id": invoice.id, "coach_user_id": str(user)}
    async with sessions() as session:
        row = (await session.execute(select(models.invoices))).one()
    assert (row.id, row.amount, row.coinpay_payment_id, row.status) == (
        invoice.id,
        invoice.amount,
        payment.id,
        "open",
    )


async def test_an_open_invoice_is_handed_out_again_while_payable(
    sessions: Sessions, make_user: MakeUser, fake: FakeCoinpay
) -> None:
    user = await make_user()
    first = await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="ETH", now=NOW)
    later = NOW + timedelta(minutes=9)
    again = await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="ETH", now=later)
    assert again == first
    assert fake.calls == 1
    # Another coin (even on the same chain) is another invoice.
    usdc = await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="USDC_ETH", now=later)
    assert (usdc.chain, usdc.asset, usdc.amount) == ("ETH", "USDC", 10_000_000)
    assert usdc.id != first.id
    # Too close to its expiry to be paid in time: a fresh one.
    late = NOW + timedelta(minutes=11)
    fresh = await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="ETH", now=late)
    assert fresh.id != first.id
    assert await invoice_count(sessions) == 3


async def test_each_user_gets_their_own_invoice(
    sessions: Sessions, make_user: MakeUser, fake: FakeCoinpay
) -> None:
    a, b = await make_user(1), await make_user(2)
    first = await coinpay.subscribe(sessions, fake, PLAN, user_id=a, coin="ETH", now=NOW)
    second = await coinpay.subscribe(sessions, fake, PLAN, user_id=b, coin="ETH", now=NOW)
    assert first.id != second.id
    assert first.recipient != second.recipient


async def test_concurrent_subscribes_leave_one_open_invoice(
    sessions: Sessions, make_user: MakeUser, fake: FakeCoinpay
) -> None:
    user = await make_user()
    made = await asyncio.gather(
        *(
            coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="ETH", now=NOW)
            for _ in range(8)
        )
    )
    assert len({invoice.id for invoice in made}) == 1
    assert await invoice_count(sessions) == 1


async def test_nothing_is_written_when_coinpay_cannot_or_will_not(
    sessions: Sessions, make_user: MakeUser, fake: FakeCoinpay
) -> None:
    user = await make_user()
    fake.fail_with = CoinpayUnavailable("coinpay: ConnectError")
    with pytest.raises(CoinpayUnavailable):
        await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="ETH", now=NOW)
    fake.fail_with = CoinpayRefused("no wallet", coinpay_status=422, coinpay_code="no_wallet")
    with pytest.raises(CoinpayRefused):
        await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="ETH", now=NOW)
    assert await invoice_count(sessions) == 0


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: replace(p, blockchain="SOL"),
        lambda p: replace(p, amount_usd=Decimal("1")),
        lambda p: replace(p, crypto_amount=Decimal("0.0000000000000000001")),  # finer than wei
        lambda p: replace(p, expires_at=NOW),
        lambda p: replace(p, metadata={"coach_invoice_id": "someone-else"}),
    ],
)
async def test_a_payment_other_than_the_one_asked_for_is_refused(
    sessions: Sessions,
    make_user: MakeUser,
    fake: FakeCoinpay,
    tamper: Callable[[CoinpayPayment], CoinpayPayment],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = await make_user()
    honest = fake.create_payment

    async def lying(*args: object, **kwargs: object) -> CoinpayPayment:
        return tamper(await honest(*args, **kwargs))  # type: ignore[arg-type]

    monkeypatch.setattr(fake, "create_payment", lying)
    with pytest.raises(InconsistentPayment):
        await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="ETH", now=NOW)
    assert await invoice_count(sessions) == 0


async def test_unknown_users_and_coins_are_refused_before_coinpay_is_asked(
    sessions: Sessions, make_user: MakeUser, fake: FakeCoinpay
) -> None:
    with pytest.raises(UnknownUser):
        await coinpay.subscribe(sessions, fake, PLAN, user_id=404, coin="ETH", now=NOW)
    user = await make_user()
    with pytest.raises(UnsupportedCoin):
        await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="XRP", now=NOW)
    assert fake.calls == 0


def test_the_plan_comes_from_settings_exactly() -> None:
    plan = Plan.from_settings(CoachSettings(price_usd="9.99", period_days=31))
    assert plan == Plan(price_usd=Decimal("9.99"), days=31)
    for price in ("ten", "0", "-1", "NaN"):
        with pytest.raises(ValueError, match="price"):
            Plan.from_settings(CoachSettings(price_usd=price))
