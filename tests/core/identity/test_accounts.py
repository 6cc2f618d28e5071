"""The Accounts service on SQLite and PostgreSQL: sign-up, login, sessions that slide and
end, password reset through the file mailer, and what the answers never reveal."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from keel.core.identity import Passwords
from keel.core.identity.errors import (
    EmailUnavailable,
    InvalidCredentials,
    InvalidDisplayName,
    InvalidEmail,
    InvalidResetToken,
    PasswordRejected,
)
from keel.core.identity.tokens import session_token_hash
from tests.core.identity.conftest import FAST, START, World, make_accounts

PASSWORD = "correct horse battery"
IP = "ip:127.0.0.1"


def link(token: str) -> str:
    return f"https://learn.example.org/reset/confirm?token={token}"


async def sign_up(world: World, email: str = "Ana@Example.org", **kw: str) -> str:
    logged_in = await world.accounts.sign_up(
        email=email,
        password=kw.get("password", PASSWORD),
        display_name=kw.get("display_name"),
        client=IP,
    )
    return logged_in.token


async def session_rows(world: World) -> int:
    async with world.database.reading() as conn:
        count = (
            await conn.execute(select(func.count()).select_from(world.tables.sessions))
        ).scalar()
    return int(count or 0)


async def test_sign_up_normalises_the_email_and_opens_a_session(world: World) -> None:
    token = await sign_up(world, "  Ana@Example.ORG ")
    session = await world.accounts.authenticate(token)
    assert session is not None
    assert session.user.email == "ana@example.org"
    assert session.user.display_name == "ana"  # the local part, when none is given
    async with world.database.reading() as conn:
        row = (await conn.execute(select(world.tables.sessions))).one()
        user = (await conn.execute(select(world.tables.users))).one()
    assert row.token_hash == session_token_hash(token) != token  # only the hash is kept
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


async def test_sign_up_refuses_bad_input(world: World) -> None:
    with pytest.raises(InvalidEmail):
        await sign_up(world, "not-an-email")
    with pytest.raises(PasswordRejected, match="at least 10"):
        await sign_up(world, password="short")
    with pytest.raises(PasswordRejected, match="email"):
        await sign_up(world, "longenough@example.org", password="LongEnough@Example.org")
    with pytest.raises(PasswordRejected, match="1024 bytes"):
        await sign_up(world, password="é" * 513)  # 513 characters, 1026 bytes
    with pytest.raises(InvalidDisplayName):
        await sign_up(world, display_name="bell\x07")
    assert await session_rows(world) == 0


async def test_a_taken_email_is_refused_with_a_message_that_names_no_account(world: World) -> None:
    await sign_up(world, "ana@example.org")
    with pytest.raises(EmailUnavailable) as refused:
        await sign_up(world, "ANA@example.org", password="another password")
    assert "ana@example.org" not in refused.value.detail


async def test_concurrent_sign_ups_of_one_email_make_one_account(world: World) -> None:
    results = await asyncio.gather(
        *(sign_up(world, "race@example.org") for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, str) for r in results) == 1
    assert sum(isinstance(r, EmailUnavailable) for r in results) == 4


async def test_login_rotates_the_session_and_ends_the_one_it_came_with(world: World) -> None:
    first = await sign_up(world)
    second = await world.accounts.log_in(
        email="ana@example.org", password=PASSWORD, client=IP, previous_token=first
    )
    assert second.token != first
    assert await world.accounts.authenticate(first) is None
    assert await world.accounts.authenticate(second.token) is not None


async def test_wrong_password_and_unknown_email_fail_alike(world: World) -> None:
    await sign_up(world)
    errors = []
    for email, password in [
        ("ana@example.org", "wrong password!"),
        ("nobody@example.org", PASSWORD),
        ("not an email", PASSWORD),
        ("ana@example.org", "x" * 5000),  # too long to hash: refused without hashing
    ]:
        with pytest.raises(InvalidCredentials) as failed:
            await world.accounts.log_in(email=email, password=password, client=IP)
        errors.append((failed.value.code, failed.value.detail, failed.value.status))
    assert len(set(errors)) == 1


async def test_an_unknown_email_still_costs_a_password_verification(world: World) -> None:
    calls: list[str] = []
    passwords = world.accounts.passwords
    original = passwords.verify

    async def counting(stored: str, password: str) -> bool:
        calls.append(stored)
        return await original(stored, password)

    passwords.verify = counting  # type: ignore[method-assign]
    with pytest.raises(InvalidCredentials):
        await world.accounts.log_in(email="nobody@example.org", password=PASSWORD, client=IP)
    assert len(calls) == 1
    assert calls[0].startswith("$argon2id$")


async def test_a_disabled_account_cannot_log_in_and_its_sessions_stop(world: World) -> None:
    token = await sign_up(world)
    async with world.database.writing() as conn:
        await conn.execute(update(world.tables.users).values(disabled_at=world.clock.now()))
    assert await world.accounts.authenticate(token) is None
    with pytest.raises(InvalidCredentials):
        await world.accounts.log_in(email="ana@example.org", password=PASSWORD, client=IP)


async def test_login_upgrades_a_hash_made_with_older_parameters(world: World) -> None:
    weak = Passwords(FAST)
    await sign_up(world)
    async with world.database.writing() as conn:
        await conn.execute(
            update(world.tables.users).values(password_hash=await weak.hash(PASSWORD))
        )
    stronger = dataclasses.replace(FAST, time_cost=2)
    upgraded = make_accounts(
        world.database,
        world.tables,
        world.limiter,
        world.clock,
        world.outbox,
        passwords=Passwords(stronger),
    )
    await upgraded.log_in(email="ana@example.org", password=PASSWORD, client=IP)
    async with world.database.reading() as conn:
        stored = (await conn.execute(select(world.tables.users.c.password_hash))).scalar_one()
    assert ",t=2," in stored
    assert not upgraded.passwords.needs_rehash(stored)
    await upgraded.log_in(email="ana@example.org", password=PASSWORD, client=IP)


async def test_sessions_slide_but_never_outlive_their_lifetime(world: World) -> None:
    token = await sign_up(world)  # idle 14 days, lifetime 30
    for day in (10, 20, 29):  # each use moves the idle expiry on
        world.clock.advance(timedelta(days=day) - (world.clock.now() - START))
        assert await world.accounts.authenticate(token) is not None
    world.clock.advance(timedelta(days=1))  # a day after the last use, 30 after login
    assert await world.accounts.authenticate(token) is None


async def test_an_idle_session_expires(world: World) -> None:
    token = await sign_up(world)
    world.clock.advance(world.accounts.policy.idle)
    assert await world.accounts.authenticate(token) is None


async def test_last_seen_is_written_at_most_once_per_touch_interval(world: World) -> None:
    token = await sign_up(world)

    async def last_seen() -> object:
        async with world.database.reading() as conn:
            return (await conn.execute(select(world.tables.sessions.c.last_seen_at))).scalar()

    written = await last_seen()
    world.clock.advance(world.accounts.policy.touch_every / 2)
    await world.accounts.authenticate(token)
    assert await last_seen() == written  # a read, no write
    world.clock.advance(world.accounts.policy.touch_every)
    await world.accounts.authenticate(token)
    assert await last_seen() == world.clock.now()


async def test_malformed_tokens_are_not_looked_up(world: World) -> None:
    await sign_up(world)
    for token in ["", "x", "a" * 42, "a" * 44, "a" * 42 + "!", "a" * 10_000]:
        assert await world.accounts.authenticate(token) is None


async def test_log_out_ends_one_session_and_everywhere_ends_all(world: World) -> None:
    one = await sign_up(world)
    two = (await world.accounts.log_in(email="ana@example.org", password=PASSWORD, client=IP)).token
    three = (
        await world.accounts.log_in(email="ana@example.org", password=PASSWORD, client=IP)
    ).token
    await world.accounts.log_out(one)
    assert await world.accounts.authenticate(one) is None
    session = await world.accounts.authenticate(two)
    assert session is not None
    assert await world.accounts.log_out_everywhere(session.user.id) == 2
    assert await world.accounts.authenticate(two) is None
    assert await world.accounts.authenticate(three) is None


async def test_password_reset_works_once_and_ends_every_session(world: World) -> None:
    token = await sign_up(world)
    assert await world.accounts.request_password_reset(email="ANA@example.org", link=link)
    (mail,) = world.mails()
    assert mail["To"] == "ana@example.org"
    reset = world.reset_token()
    assert (await world.accounts.check_reset_token(reset)).email == "ana@example.org"
    await world.accounts.reset_password(token=reset, new_password="a brand new secret")
    assert await world.accounts.authenticate(token) is None
    assert await session_rows(world) == 0
    with pytest.raises(InvalidResetToken):
        await world.accounts.reset_password(token=reset, new_password="yet another secret")
    with pytest.raises(InvalidCredentials):
        await world.accounts.log_in(email="ana@example.org", password=PASSWORD, client=IP)
    await world.accounts.log_in(email="ana@example.org", password="a brand new secret", client=IP)


async def test_two_resets_racing_with_one_token_change_the_password_once(world: World) -> None:
    await sign_up(world)
    await world.accounts.request_password_reset(email="ana@example.org", link=link)
    reset = world.reset_token()
    results = await asyncio.gather(
        *(
            world.accounts.reset_password(token=reset, new_password=f"new password {i}")
            for i in range(4)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, InvalidResetToken) for r in results) == 3


async def test_a_reset_token_expires(world: World) -> None:
    await sign_up(world)
    await world.accounts.request_password_reset(email="ana@example.org", link=link)
    reset = world.reset_token()
    world.clock.advance(timedelta(seconds=world.accounts.resets.ttl_seconds))
    with pytest.raises(InvalidResetToken):
        await world.accounts.reset_password(token=reset, new_password="a brand new secret")


async def test_a_reset_still_applies_the_password_policy(world: World) -> None:
    await sign_up(world)
    await world.accounts.request_password_reset(email="ana@example.org", link=link)
    with pytest.raises(PasswordRejected):
        await world.accounts.reset_password(token=world.reset_token(), new_password="short")
    # The token was not spent on a refused password.
    await world.accounts.reset_password(token=world.reset_token(), new_password="long enough now")


async def test_a_reset_for_an_unknown_email_sends_nothing(world: World) -> None:
    assert not await world.accounts.request_password_reset(email="nobody@example.org", link=link)
    assert not await world.accounts.request_password_reset(email="not an email", link=link)
    assert world.mails() == []
