"""A live UTXO chain on a test network (KEEL_COINPAY_LTC_NETWORK=regtest): its payments get
that network's addresses from their own index counter, and its payout wallets take that
network's forms only; test mode, and every other chain, keep mainnet."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from keel.coinpay import apikeys, models
from keel.coinpay.chains.scanner import ObservedChain
from keel.coinpay.wallets import Family, HDRoot, Network
from tests.coinpay.conftest import ABANDON, Harness, make_harness

ROOT = HDRoot.from_mnemonic(ABANDON)
PAYOUT_REGTEST = "rltc1qtjyqjwm28e5l0nl9cnkr3mwjyc5jmvlfyexkzs"  # a litecoind regtest wallet's
PAYOUT_MAINNET = "ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh"


@pytest.fixture
async def h(db_url: str) -> AsyncIterator[Harness]:
    async for harness in make_harness(db_url, None, networks={"LTC": Network.REGTEST}):
        # LTC is watched live (as if its node were configured) so live payments are taken.
        live = {**harness.gw.watchers["live"], "LTC": ObservedChain(harness.gw.sessions)}
        harness.gw.watchers = {**harness.gw.watchers, "live": live}
        yield harness


async def create(h: Harness, key: str, coin: str) -> str:
    body = {"business_id": h.business_id, "amount": "10.00", "blockchain": coin}
    response = await h.client.post("/api/payments/create", json=body, headers=h.auth(key))
    assert response.status_code == 201, response.text
    address: str = response.json()["payment"]["payment_address"]
    return address


async def test_live_payments_get_regtest_addresses_from_their_own_counter(h: Harness) -> None:
    assert h.gw.network("live", "LTC") is Network.REGTEST
    assert h.gw.network("test", "LTC") is Network.MAINNET
    live = [await create(h, h.live_key, "LTC") for _ in range(2)]
    test = await create(h, h.test_key, "LTC")
    assert live == [ROOT.address(Family.LTC, i, Network.REGTEST) for i in (0, 1)]
    assert live[0].startswith("rltc1q")
    assert test == ROOT.address(Family.LTC, 0)  # mainnet's counter was not advanced
    assert await create(h, h.live_key, "BTC") == ROOT.address(Family.BTC, 0)
    async with h.gw.sessions() as session:
        keys = set((await session.execute(select(models.payments.c.family_key))).scalars())
    assert keys == {"system:LTC:regtest", "system:LTC", "system:BTC"}


async def test_live_payout_wallets_take_the_chains_network_forms_only(h: Harness) -> None:
    async with h.gw.sessions() as session, session.begin():
        _, manager = await apikeys.create_key(
            session,
            h.gw.box,
            h.operator,
            business_id=h.business_id,
            mode="live",
            scopes=["wallets:manage"],
        )
    url = f"/api/businesses/{h.business_id}/wallets"

    async def put(key: str, address: str) -> tuple[int, str]:
        body = {"cryptocurrency": "LTC", "wallet_address": address}
        response = await h.client.post(url, json=body, headers=h.auth(key))
        return response.status_code, response.text

    status, text = await put(manager, PAYOUT_MAINNET)
    assert status == 400
    assert "not a valid Litecoin regtest address" in text
    status, _ = await put(manager, PAYOUT_REGTEST)
    assert status == 200
    # The test world's LTC is simulated, on mainnet forms.
    assert (await put(h.test_key, PAYOUT_MAINNET))[0] == 200
    assert (await put(h.test_key, PAYOUT_REGTEST))[0] == 400
    async with h.gw.sessions() as session:
        rows = (
            await session.execute(
                select(models.wallets.c.mode, models.wallets.c.address).where(
                    models.wallets.c.coin == "LTC"
                )
            )
        ).all()
    assert dict(rows) == {"live": PAYOUT_REGTEST, "test": PAYOUT_MAINNET}
