"""The password policy, and argon2id hashing with the production profile."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from argon2 import Type, profiles
from hypothesis import given
from hypothesis import strategies as st

from keel.core.identity import passwords
from keel.core.identity.errors import PasswordRejected
from keel.core.identity.passwords import Passwords

EMAIL = "ana@example.org"


def test_the_policy_counts_characters_from_below_and_bytes_from_above() -> None:
    assert passwords.check_policy("ten chars!", email=EMAIL) == "ten chars!"
    with pytest.raises(PasswordRejected):
        passwords.check_policy("nine char", email=EMAIL)
    assert passwords.check_policy("a" * 1024, email=EMAIL)
    with pytest.raises(PasswordRejected):
        passwords.check_policy("a" * 1025, email=EMAIL)
    with pytest.raises(PasswordRejected):
        passwords.check_policy("🔑" * 257, email=EMAIL)  # 257 characters, 1028 bytes


def test_the_policy_refuses_the_email_in_any_case() -> None:
    for password in ("ana@example.org", "ANA@Example.org", " ana@example.org "):
        with pytest.raises(PasswordRejected):
            passwords.check_policy(password, email=EMAIL)


@given(st.text(max_size=300))
def test_the_policy_either_accepts_a_normalised_password_or_refuses(password: str) -> None:
    try:
        accepted = passwords.check_policy(password, email=EMAIL)
    except PasswordRejected:
        return
    assert len(accepted) >= passwords.MIN_PASSWORD_CHARS
    assert len(accepted.encode("utf-8", "surrogatepass")) <= passwords.MAX_PASSWORD_BYTES
    assert passwords.check_policy(accepted, email=EMAIL) == accepted


async def test_the_production_profile_is_argon2id_rfc_9106_low_memory() -> None:
    hasher = Passwords()
    stored = await hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert await hasher.verify(stored, "correct horse battery")
    assert not await hasher.verify(stored, "correct horse batterY")
    assert not hasher.needs_rehash(stored)


async def test_a_password_typed_in_another_unicode_form_verifies() -> None:
    hasher = Passwords(profiles.CHEAPEST)
    stored = await hasher.hash("caf\u00e9 au lait 12")  # é composed
    assert await hasher.verify(stored, "cafe\u0301 au lait 12")  # e + combining accent
    assert await hasher.verify(stored, "café au lait １２")  # full-width digits


async def test_malformed_stored_hashes_never_verify_and_need_a_rehash() -> None:
    hasher = Passwords(profiles.CHEAPEST)
    for stored in ("", "plain", "$argon2id$v=19$m=8,t=1,p=1$broken"):
        assert not await hasher.verify(stored, "anything at all")
        assert hasher.needs_rehash(stored)


def test_only_argon2id_is_accepted() -> None:
    with pytest.raises(ValueError, match="argon2id"):
        Passwords(dataclasses.replace(profiles.CHEAPEST, type=Type.I))


async def test_hashes_run_off_the_event_loop() -> None:
    hasher = Passwords(profiles.RFC_9106_LOW_MEMORY, concurrency=1)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await hasher.hash("correct horse battery")
    elapsed = time.perf_counter() - started
    task.cancel()
    assert ticks >= elapsed / 0.01 / 3  # the loop kept turning while argon2 ran
