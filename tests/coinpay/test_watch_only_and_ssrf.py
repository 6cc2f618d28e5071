from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bip_utils import Bip39SeedGenerator, Bip84, Bip84Coins
from sqlalchemy import select

from keel.coinpay import businesses, models, notify
from keel.core import netguard
from keel.core.errors import BadRequest
from tests.coinpay.conftest import ABANDON, Harness, WebhookSink, make_harness


def zpub() -> str:
    seed = Bip39SeedGenerator(ABANDON).Generate()
    account = Bip84.FromSeed(seed, Bip84Coins.BITCOIN).Purpose().Coin().Account(0)
    key: str = account.PublicKey().ToExtended()
    return key


async def test_watch_only_business_receives_into_its_own_wallet(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    async with harness.gw.sessions() as session, session.begin():
        await businesses.set_watch_only(
            session,
            harness.operator,
            business_id=harness.business_id,
            mode="test",
            family="BTC",
            extended_key=zpub(),
        )
    first = await harness.create_payment(blockchain="BTC")
    second = await harness.create_payment(blockchain="BTC")
    # The merchant's own BIP84 wallet (same seed here) shows exactly these receive addresses.
    assert first["payment_address"] == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    assert second["payment_address"] == "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    paid = await harness.simulate(first["id"], amount_crypto=first["crypto_amount"])
    assert paid["status"] == "confirmed"
    await harness.run_jobs()
    await harness.run_jobs()
    again = await harness.client.get(f"/api/payments/{first['id']}", headers=harness.auth())
    assert again.json()["payment"]["status"] == "confirmed"  # nothing to forward
    assert {"payment.confirmed", "payment.completed"} <= {b["type"] for b in webhook_sink.events()}
    assert "payment.forwarded" not in {b["type"] for b in webhook_sink.events()}


async def test_private_xpub_is_refused_over_the_cli_path(harness: Harness) -> None:
    from keel.coinpay.errors import InvalidExtendedKey

    with pytest.raises(InvalidExtendedKey):
        async with harness.gw.sessions() as session, session.begin():
            await businesses.set_watch_only(
                session,
                harness.operator,
                business_id=harness.business_id,
                mode="test",
                family="BTC",
                extended_key="zprvAWgYBBk7JR8Gjrh4UJQ2uJdG1r3WNRRfURiABBE3RvMXYSrRJL62XuezvGdPvG6GFBZduosCc1YP5wixPox7zhZLfiUm8aunE96BBa4Kei5",
            )


@pytest.fixture
async def guarded(db_url: str, webhook_sink: WebhookSink) -> AsyncIterator[Harness]:
    async for h in make_harness(db_url, webhook_sink.url, webhook_allow_private=False):
        yield h


async def test_webhook_to_a_refused_destination_is_dead_at_once_with_the_reason(
    guarded: Harness, webhook_sink: WebhookSink
) -> None:
    # The sink (127.0.0.1) was registered in allow_private mode; this gateway refuses it.
    payment = await guarded.create_payment()
    await guarded.run_jobs()
    assert webhook_sink.received == []
    log = await guarded.client.get(
        f"/api/webhooks?payment_id={payment['id']}", headers=guarded.auth()
    )
    [event] = log.json()["events"]
    [attempt] = event["deliveries"]  # one attempt, not a retry schedule
    assert attempt["outcome"] == "dead"
    assert "resolves to loopback 127.0.0.1" in attempt["error"]
    async with guarded.gw.sessions() as session:
        jobs = (
            await session.execute(
                select(models.jobs.c.status, models.jobs.c.attempts, models.jobs.c.last_error)
            )
        ).all()
    assert [(status, attempts) for status, attempts, _ in jobs] == [("dead", 1)]
    assert "loopback 127.0.0.1" in jobs[0].last_error


# Hosts the HTTP client (and the C library under it) reads as an internal address, each with
# the reason the 400 must name.
REFUSED_AT_REGISTRATION = [
    ("http://2130706433/", "loopback 127.0.0.1"),
    ("http://0x7f000001/", "loopback 127.0.0.1"),
    ("http://0177.0.0.1/", "loopback 127.0.0.1"),
    ("http://127.1/", "loopback 127.0.0.1"),
    ("http://0/", "unspecified 0.0.0.0"),
    ("http://localhost./", "loopback"),
    ("http://127.0.0.1./", "loopback 127.0.0.1"),
    ("http://127\uff0e0\uff0e0\uff0e1/", "loopback 127.0.0.1"),
    ("http://%31%32%37.0.0.1/", "loopback 127.0.0.1"),
    ("http://2852039166/", "link-local 169.254.169.254"),
    ("http://0xa9fea9fe/", "link-local 169.254.169.254"),
    ("http://167772161/", "private 10.0.0.1"),
    ("http://10.1/", "private 10.0.0.1"),
    ("http://127.0.0.1:9/x", "loopback 127.0.0.1"),
    ("http://localhost/x", "loopback"),
    ("http://169.254.169.254/", "link-local 169.254.169.254"),
    ("http://[::1]/x", "loopback ::1"),
    ("http://[::ffff:127.0.0.1]/", "loopback 127.0.0.1"),
    ("http://[fe80::1]/", "link-local fe80::1"),
    ("http://[fe80::1%25eth0]/", "link-local fe80::1"),
    ("http://1.2.3.4.5/", "not an IPv4 address"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_AT_REGISTRATION)
async def test_internal_webhook_urls_are_refused_at_registration_naming_the_reason(
    guarded: Harness, url: str, reason: str
) -> None:
    response = await guarded.client.post(
        f"/api/businesses/{guarded.business_id}/webhooks",
        json={"url": url},
        headers=guarded.auth(),
    )
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["success"] is False
    assert reason in problem["detail"]
    assert reason in problem["reason"]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http://[/"])
async def test_malformed_webhook_urls_are_refused_at_registration(
    guarded: Harness, url: str
) -> None:
    response = await guarded.client.post(
        f"/api/businesses/{guarded.business_id}/webhooks",
        json={"url": url},
        headers=guarded.auth(),
    )
    assert response.status_code == 400
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/hook",
        "http://1.1.1.1:8080/x",
        "http://134744072/",  # 8.8.8.8 as one number: odd, but public
        "http://[2606:4700:4700::1111]/hook",
        "http://[::ffff:8.8.8.8]/",
    ],
)
async def test_public_literal_webhook_urls_are_accepted(guarded: Harness, url: str) -> None:
    response = await guarded.client.post(
        f"/api/businesses/{guarded.business_id}/webhooks",
        json={"url": url},
        headers=guarded.auth(),
    )
    assert response.status_code == 201, response.text
    assert response.json()["webhook"]["url"] == url


def _fake_dns(answers: dict[str, list[str]]) -> netguard.Lookup:
    async def lookup(host: str, port: int) -> list[str]:
        name = host.removesuffix(".")  # as DNS does: "x." is the fully qualified "x"
        if name not in answers:
            raise netguard.UnresolvableHost(host, "does not resolve (no such name)")
        return answers[name]

    return lookup


def _fake_getaddrinfo(answers: dict[str, list[str]]) -> Any:
    """Stands in for the system resolver: no name leaves this machine."""

    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    return fake


async def test_a_name_resolving_to_a_private_address_is_refused_by_the_api(
    guarded: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncio's getaddrinfo looks socket.getaddrinfo up at call time.
    monkeypatch.setattr(
        socket, "getaddrinfo", _fake_getaddrinfo({"hooks.shop.example": ["169.254.169.254"]})
    )
    response = await guarded.client.post(
        f"/api/businesses/{guarded.business_id}/webhooks",
        json={"url": "https://hooks.shop.example/coinpay"},
        headers=guarded.auth(),
    )
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == "resolves to link-local 169.254.169.254"
    response = await guarded.client.post(
        f"/api/businesses/{guarded.business_id}/webhooks",
        json={"url": "https://gone.shop.example/coinpay"},
        headers=guarded.auth(),
    )
    assert response.status_code == 400, response.text
    assert "does not resolve" in response.json()["reason"]


async def test_a_name_resolving_to_a_private_address_is_refused_at_registration() -> None:
    dns = _fake_dns({"hooks.shop.example": ["93.184.216.34", "10.0.0.5"]})
    with pytest.raises(BadRequest, match=r"hooks\.shop\.example.*resolves to private 10\.0\.0\.5"):
        await notify.validate_url("https://hooks.shop.example/x", allow_private=False, lookup=dns)


async def test_a_name_resolving_to_public_addresses_is_accepted_at_registration() -> None:
    dns = _fake_dns({"hooks.shop.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    url = "https://Hooks.Shop.Example./x"
    assert await notify.validate_url(url, allow_private=False, lookup=dns) == url


async def test_a_name_that_does_not_resolve_is_refused_at_registration() -> None:
    with pytest.raises(BadRequest, match=r"gone\.example.*does not resolve"):
        await notify.validate_url(
            "https://gone.example/", allow_private=False, lookup=_fake_dns({})
        )


async def test_allow_private_accepts_loopback_but_still_parses_the_host() -> None:
    assert await notify.validate_url("http://2130706433/", allow_private=True) == (
        "http://2130706433/"
    )
    with pytest.raises(BadRequest, match="not an IPv4 address"):
        await notify.validate_url("http://1.2.3.4.5/", allow_private=True)
