"""Passwords: the policy, and argon2id hashing that keeps the event loop and memory free.

Hashes use argon2-cffi's RFC 9106 low-memory profile (argon2id, t=3, m=64 MiB, p=4; about
0.2 s on one core). Each hash takes 64 MiB, so at most one per CPU runs at a time: a login
burst queues instead of exhausting memory. A stored hash made with other parameters verifies
and is then upgraded (``needs_rehash``) by the login that proved the password.

Passwords are NFKC-normalised before anything else, so one typed on another keyboard or
platform (composed or decomposed accents, full-width digits) is the same password.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import unicodedata

from argon2 import Parameters, PasswordHasher, Type, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from keel.core.identity.errors import PasswordRejected

MIN_PASSWORD_CHARS = 10
# Bytes of UTF-8, so nobody can make us hash megabytes; a passphrase of 100 words fits.
MAX_PASSWORD_BYTES = 1024
DEFAULT_PROFILE = profiles.RFC_9106_LOW_MEMORY


def normalise_password(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_policy(password: str, *, email: str) -> str:
    """The normalised password, or PasswordRejected: fewer than 10 characters, more than 1024
    bytes of UTF-8, or the account's (normalised) email itself."""
    normalised = normalise_password(password)
    if len(normalised) < MIN_PASSWORD_CHARS:
        raise PasswordRejected(f"A password needs at least {MIN_PASSWORD_CHARS} characters")
    if too_long(normalised):
        raise PasswordRejected(f"A password may have at most {MAX_PASSWORD_BYTES} bytes")
    if normalised.strip().casefold() == email.casefold():
        raise PasswordRejected("The password must not be your email address")
    return normalised


def too_long(password: str) -> bool:
    return len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES


class Passwords:
    """argon2id hashing and verification, off the event loop, at most one per CPU at once."""

    def __init__(self, parameters: Parameters = DEFAULT_PROFILE, *, concurrency: int = 0) -> None:
        if parameters.type is not Type.ID:
            raise ValueError("identity hashes passwords with argon2id only")
        self._hasher = PasswordHasher.from_parameters(parameters)
        self._slots = asyncio.Semaphore(concurrency or os.cpu_count() or 1)
        self._dummy: str | None = None

    def __repr__(self) -> str:
        h = self._hasher
        return f"Passwords(argon2id t={h.time_cost} m={h.memory_cost} KiB p={h.parallelism})"

    async def hash(self, password: str) -> str:
        """The PHC string of ``password`` (NFKC-normalised first, as :meth:`verify` does)."""
        normalised = normalise_password(password)
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, normalised)

    async def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches the PHC string ``stored``; a malformed ``stored`` is a
        mismatch (it is logged by nobody: the caller answers "wrong email or password")."""
        normalised = normalise_password(password)
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored, normalised)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time a real verification takes, for an email with no account, so the
        response time does not tell that it has none."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy, password)

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than ours (upgrade it on login)."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
