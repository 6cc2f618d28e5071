"""Login, sign-up and reset limits through core's database rate limiter (SQLite and
PostgreSQL): failures lock an email or an address out before any password is checked."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest

from keel.core.identity.errors import InvalidCredentials, TooManyAttempts
from keel.core.ratelimit import LimiterUnavailable, Verdict
from tests.core.identity.conftest import LIMITS, World, make_accounts

PASSWORD = "correct horse battery"
IP = "ip:192.0.2.1"


async def fail(world: World, email: str = "ana@example.org", client: str = IP) -> None:
    with pytest.raises(InvalidCredentials):
        await world.accounts.log_in(email=email, password="wrong password", client=client)


async def test_failed_logins_lock_the_email_even_for_the_right_password(world: World) -> None:
    await world.accounts.sign_up(
        email="ana@example.org", password=PASSWORD, display_name=None, client=IP
    )
    for _ in range(LIMITS.failures_per_email):
        await fail(world, client=f"ip:198.51.100.{_}")  # from anywhere: the email's bucket
    with pytest.raises(TooManyAttempts) as locked:
        await world.accounts.log_in(email="ana@example.org", password=PASSWORD, client=IP)
    assert 0 < locked.value.retry_after <= 2 * LIMITS.window_seconds
    world.clock.advance(timedelta(seconds=2 * LIMITS.window_seconds))
    await world.accounts.log_in(email="ana@example.org", password=PASSWORD, client=IP)


async def test_failed_logins_lock_the_address_for_every_email(world: World) -> None:
    for n in range(LIMITS.failures_per_client):
        await fail(world, email=f"guess{n}@example.org")
    with pytest.raises(TooManyAttempts):
        await world.accounts.log_in(email="other@example.org", password=PASSWORD, client=IP)
    await fail(world, email="other@example.org", client="ip:192.0.2.99")  # another address


async def test_successful_logins_are_not_counted(world: World) -> None:
    await world.accounts.sign_up(
        email="ana@example.org", password=PASSWORD, display_name=None, client=IP
    )
    for _ in range(LIMITS.failures_per_email * 3):
        await world.accounts.log_in(email="ana@example.org", password=PASSWORD, client=IP)


async def test_another_process_learns_of_a_lock_out_at_its_next_failure(world: World) -> None:
    other = make_accounts(
        world.database, world.tables, world.limiter, world.clock, world.outbox
    )  # its own memory, the same counters
    for _ in range(LIMITS.failures_per_email):
        await fail(world)
    with pytest.raises(TooManyAttempts):  # the store refuses the count: locked there too
        await other.log_in(email="ana@example.org", password="wrong password", client=IP)
    with pytest.raises(TooManyAttempts):
        await other.log_in(email="ana@example.org", password=PASSWORD, client=IP)


async def test_sign_ups_are_limited_per_address(world: World) -> None:
    for n in range(LIMITS.signups_per_client):
        await world.accounts.sign_up(
            email=f"user{n}@example.org", password=PASSWORD, display_name=None, client=IP
        )
    with pytest.raises(TooManyAttempts):
        await world.accounts.sign_up(
            email="one-more@example.org", password=PASSWORD, display_name=None, client=IP
        )


async def test_reset_requests_are_limited_per_email_and_per_address(world: World) -> None:
    for _ in range(LIMITS.resets_per_email):
        await world.accounts.limit_password_resets(email="Ana@example.org", client=IP)
    with pytest.raises(TooManyAttempts):
        await world.accounts.limit_password_resets(email="ana@example.org", client="ip:192.0.2.7")
    for n in range(LIMITS.resets_per_client - LIMITS.resets_per_email):
        await world.accounts.limit_password_resets(email=f"x{n}@example.org", client=IP)
    with pytest.raises(TooManyAttempts):
        await world.accounts.limit_password_resets(email="fresh@example.org", client=IP)


class DownLimiter:
    window_seconds = 60

    async def hit(self, limits: Mapping[str, int]) -> Verdict:
        raise LimiterUnavailable("store unreachable")

    async def aclose(self) -> None:
        pass


async def test_a_limiter_that_is_down_lets_attempts_through(world: World) -> None:
    accounts = make_accounts(
        world.database,
        world.tables,
        DownLimiter(),
        world.clock,
        world.outbox,
    )
    for _ in range(LIMITS.failures_per_email + 2):
        with pytest.raises(InvalidCredentials):
            await accounts.log_in(email="ana@example.org", password="wrong password", client=IP)
