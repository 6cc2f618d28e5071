"""Accounts: sign up, log in and out, the session behind a cookie, password reset.

:class:`Accounts` is one product's service over its own identity tables (``tables.py``) and
:class:`~keel.core.replicated.Database`. It knows nothing of HTTP: ``web.py`` turns cookies
into calls here and errors into problems.

Sessions slide: each use moves ``expires_at`` to ``idle`` after it, never past ``lifetime``
after the login. The move is written at most once per ``touch_every``, so a signed-in page
view is one indexed read, not a write. Reads go through ``Database.reading()``, so signed-in
people stay signed in on the replica while the primary is down (only the touch is skipped).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.core.clock import Clock
from keel.core.errors import Unavailable
from keel.core.identity import emails, passwords, tokens
from keel.core.identity.csrf import CsrfTokens
from keel.core.identity.errors import (
    EmailUnavailable,
    InvalidCredentials,
    InvalidEmail,
    InvalidResetToken,
)
from keel.core.identity.mail import Mailer, MailerError, Message
from keel.core.identity.passwords import Passwords
from keel.core.identity.tables import IdentityTables
from keel.core.identity.throttle import LoginLimits, LoginThrottle, email_key
from keel.core.logging import get_logger
from keel.core.ratelimit import RateLimiter
from keel.core.replicated import Database

log = get_logger("keel.identity")

MAX_USER_AGENT_CHARS = 200


@dataclass(frozen=True)
class User:
    id: str
    email: str
    display_name: str
    created_at: datetime


@dataclass(frozen=True)
class Session:
    """A live session, as an authenticated request sees it."""

    user: User
    token_hash: str
    expires_at: datetime


@dataclass(frozen=True)
class LoggedIn:
    """A new session: ``token`` goes into the cookie once and is stored nowhere."""

    session: Session
    token: str = field(repr=False)

    @property
    def user(self) -> User:
        return self.session.user


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(days=14)  # unused this long, a session ends
    lifetime: timedelta = timedelta(days=30)  # and never lives longer than this
    touch_every: timedelta = timedelta(minutes=10)  # last_seen is written at most this often

    def __post_init__(self) -> None:
        if not timedelta(0) < self.touch_every < self.idle <= self.lifetime:
            raise ValueError("need 0 < touch_every < idle <= lifetime")


@dataclass(frozen=True)
class ResetMail:
    """How a product words its reset mail; ``{link}`` and ``{minutes}`` are filled in."""

    subject: str = "Reset your password"
    text: str = (
        "Someone asked to reset the password of this account. If it was you, open this "
        "link within {minutes} minutes to choose a new one:\n\n{link}\n\n"
        "If it was not you, ignore this message: your password stays as it is."
    )


class Accounts:
    """One product's accounts. ``prefix`` names its tables' product and keys its subkeys."""

    def __init__(
        self,
        database: Database,
        tables: IdentityTables,
        *,
        prefix: str,
        server_secret: bytes,
        clock: Clock,
        mailer: Mailer,
        limiter: RateLimiter,
        limits: LoginLimits | None = None,
        passwords_: Passwords | None = None,
        sessions: SessionPolicy | None = None,
        reset_mail: ResetMail | None = None,
        reset_ttl_seconds: int = 3600,
    ) -> None:
        self.database = database
        self.t = tables
        self.prefix = prefix
        self.clock = clock
        self.mailer = mailer
        self.passwords = passwords_ or Passwords()
        self.policy = sessions or SessionPolicy()
        self.reset_mail = reset_mail or ResetMail()
        self.resets = tokens.ResetTokens(
            server_secret, prefix=prefix, ttl_seconds=reset_ttl_seconds
        )
        self.csrf = CsrfTokens(server_secret, prefix=prefix)
        self.limits = limits or LoginLimits()
        self.throttle = LoginThrottle(
            limiter, self.limits, prefix=prefix, now=lambda: clock.now().timestamp()
        )

    def __repr__(self) -> str:
        return f"Accounts(prefix={self.prefix!r})"

    # -- signing up and in ----------------------------------------------------------------

    async def sign_up(
        self,
        *,
        email: str,
        password: str,
        display_name: str | None,
        client: str,
        user_agent: str = "",
    ) -> LoggedIn:
        """Create an account and its first session. InvalidEmail, InvalidDisplayName,
        PasswordRejected for bad input; EmailUnavailable when the email has an account (the
        password is hashed first either way, so the answer takes as long); TooManyAttempts
        past the sign-ups allowed from ``client``."""
        address = emails.normalise_email(email)
        name = (
            emails.clean_display_name(display_name)
            if display_name is not None and display_name.strip()
            else emails.default_display_name(address)
        )
        normalised = passwords.check_policy(password, email=address)
        await self.throttle.attempt("signup", {f"client:{client}": self.limits.signups_per_client})
        password_hash = await self.passwords.hash(normalised)
        now = self.clock.now()
        user = User(uuid.uuid4().hex, address, name, now)
        try:
            async with self.database.writing() as conn:
                await conn.execute(
                    self.t.users.insert().values(
                        id=user.id,
                        email=user.email,
                        display_name=user.display_name,
                        password_hash=password_hash,
                        created_at=now,
                        password_changed_at=now,
                    )
                )
                logged_in = await self._open_session(conn, user, user_agent, now)
        except IntegrityError as exc:  # the unique email: someone has it (or just took it)
            raise EmailUnavailable() from exc
        log.info("signed_up", prefix=self.prefix, user_id=user.id)
        return logged_in

    async def log_in(
        self,
        *,
        email: str,
        password: str,
        client: str,
        previous_token: str | None = None,
        user_agent: str = "",
    ) -> LoggedIn:
        """A new session for the account with this email and password; the session in
        ``previous_token`` (the cookie the request came with) ends, so a session planted
        before login is never promoted. InvalidCredentials whatever was wrong; TooManyAttempts
        while ``client`` or ``email`` is locked out (before any password is checked)."""
        try:
            address = emails.normalise_email(email)
        except InvalidEmail:
            address = email.strip()[: emails.MAX_EMAIL_CHARS]  # can have no account
        self.throttle.check_login(client=client, email=address)
        if passwords.too_long(password):  # never hashed, and as wrong as any other
            await self.throttle.failed_login(client=client, email=address)
            raise InvalidCredentials()
        async with self.database.reading() as conn:
            row = (
                await conn.execute(select(self.t.users).where(self.t.users.c.email == address))
            ).first()
        if row is None or row.disabled_at is not None:
            await self.passwords.verify_dummy(password)
            ok = False
        else:
            ok = await self.passwords.verify(row.password_hash, password)
        if not ok or row is None:
            await self.throttle.failed_login(client=client, email=address)
            log.info("login_failed", prefix=self.prefix)
            raise InvalidCredentials()
        user = _user(row)
        upgraded = (
            await self.passwords.hash(password)
            if self.passwords.needs_rehash(row.password_hash)
            else None
        )
        now = self.clock.now()
        async with self.database.writing() as conn:
            users, sessions = self.t.users, self.t.sessions
            if upgraded is not None:
                # Only over the hash we verified: a reset in between wins.
                await conn.execute(
                    update(users)
                    .where(users.c.id == user.id, users.c.password_hash == row.password_hash)
                    .values(password_hash=upgraded)
                )
            if previous_token is not None and tokens.well_formed_session_token(previous_token):
                await conn.execute(
                    delete(sessions).where(
                        sessions.c.token_hash == tokens.session_token_hash(previous_token)
                    )
                )
            # The account's ended sessions go now: a user's rows stay few without a sweeper.
            await conn.execute(
                delete(sessions).where(sessions.c.user_id == user.id, sessions.c.expires_at <= now)
            )
            logged_in = await self._open_session(conn, user, user_agent, now)
        log.info("logged_in", prefix=self.prefix, user_id=user.id, rehashed=upgraded is not None)
        return logged_in

    async def _open_session(
        self, conn: AsyncConnection, user: User, user_agent: str, now: datetime
    ) -> LoggedIn:
        token = tokens.new_session_token()
        token_hash = tokens.session_token_hash(token)
        expires_at = now + min(self.policy.idle, self.policy.lifetime)
        await conn.execute(
            self.t.sessions.insert().values(
                token_hash=token_hash,
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
                user_agent=user_agent[:MAX_USER_AGENT_CHARS],
            )
        )
        return LoggedIn(Session(user, token_hash, expires_at), token)

    # -- the session behind a cookie ---------------------------------------------------------

    async def authenticate(self, token: str) -> Session | None:
        """The live session of ``token``, or None (unknown, ended, expired, account
        disabled). Slides its expiry when ``touch_every`` has passed since it was last seen;
        if that write fails (the primary is down) the session still counts."""
        if not tokens.well_formed_session_token(token):
            return None
        token_hash = tokens.session_token_hash(token)
        users, sessions = self.t.users, self.t.sessions
        async with self.database.reading() as conn:
            row = (
                await conn.execute(
                    select(
                        users,
                        sessions.c.created_at.label("session_created_at"),
                        sessions.c.last_seen_at,
                        sessions.c.expires_at,
                    )
                    .join(sessions, sessions.c.user_id == users.c.id)
                    .where(sessions.c.token_hash == token_hash)
                )
            ).first()
        now = self.clock.now()
        if row is None or row.disabled_at is not None or row.expires_at <= now:
            return None
        expires_at = row.expires_at
        if now - row.last_seen_at >= self.policy.touch_every:
            slid = min(now + self.policy.idle, row.session_created_at + self.policy.lifetime)
            if await self._touch(token_hash, now, slid):
                expires_at = slid
        return Session(_user(row), token_hash, expires_at)

    async def _touch(self, token_hash: str, now: datetime, expires_at: datetime) -> bool:
        sessions = self.t.sessions
        try:
            async with self.database.writing() as conn:
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.token_hash == token_hash)
                    .values(last_seen_at=now, expires_at=expires_at)
                )
        except (Unavailable, DBAPIError, OSError) as exc:
            log.warning("session_touch_failed", prefix=self.prefix, error=type(exc).__name__)
            return False
        return True

    async def log_out(self, token: str) -> None:
        """End the session of ``token`` (nothing happens for an unknown one)."""
        if not tokens.well_formed_session_token(token):
            return
        async with self.database.writing() as conn:
            await conn.execute(
                delete(self.t.sessions).where(
                    self.t.sessions.c.token_hash == tokens.session_token_hash(token)
                )
            )

    async def log_out_everywhere(self, user_id: str) -> int:
        """End every session of the user; how many there were."""
        async with self.database.writing() as conn:
            result = await conn.execute(
                delete(self.t.sessions).where(self.t.sessions.c.user_id == user_id)
            )
        log.info("logged_out_everywhere", prefix=self.prefix, user_id=user_id)
        return int(result.rowcount or 0)

    # -- password reset ---------------------------------------------------------------------

    async def limit_password_resets(self, *, email: str, client: str) -> None:
        """Count a reset request from ``client`` for ``email``; TooManyAttempts past the
        limits. Kept apart from delivery so an HTTP layer can answer before delivering."""
        try:
            key = email_key(emails.normalise_email(email))
        except InvalidEmail:
            key = email_key(email.strip())
        await self.throttle.attempt(
            "reset",
            {
                f"client:{client}": self.limits.resets_per_client,
                f"email:{key}": self.limits.resets_per_email,
            },
        )

    async def request_password_reset(self, *, email: str, link: Callable[[str], str]) -> bool:
        """Mail a reset link (``link(token)`` makes its URL) to the account with ``email``, if
        there is one. Whether there was is returned for tests and metrics only: callers must
        answer the same either way, and should run this after answering (the time it takes
        tells). A mail system that fails is logged, never raised."""
        try:
            address = emails.normalise_email(email)
        except InvalidEmail:
            return False
        async with self.database.reading() as conn:
            row = (
                await conn.execute(select(self.t.users).where(self.t.users.c.email == address))
            ).first()
        if row is None or row.disabled_at is not None:
            log.info("password_reset_unknown_email", prefix=self.prefix)
            return False
        token = self.resets.issue(row.id, row.password_hash, now=self.clock.now())
        text = self.reset_mail.text.format(link=link(token), minutes=self.resets.ttl_seconds // 60)
        try:
            await self.mailer.send(
                Message(to=row.email, subject=self.reset_mail.subject, text=text)
            )
        except MailerError as exc:
            log.warning("password_reset_mail_failed", prefix=self.prefix, error=exc.detail)
            return False
        log.info("password_reset_sent", prefix=self.prefix, user_id=row.id)
        return True

    async def check_reset_token(self, token: str) -> User:
        """The user a reset token is good for right now; InvalidResetToken otherwise. For
        showing the form; :meth:`reset_password` checks again."""
        user, _hash = await self._reset_target(token)
        return user

    async def reset_password(self, *, token: str, new_password: str) -> User:
        """Set a new password with a reset token and end every session of the account, in one
        transaction. InvalidResetToken when the token is forged, expired or already used
        (also when two requests race with one token: only one wins); PasswordRejected."""
        user, old_hash = await self._reset_target(token)
        normalised = passwords.check_policy(new_password, email=user.email)
        new_hash = await self.passwords.hash(normalised)
        users, sessions = self.t.users, self.t.sessions
        async with self.database.writing() as conn:
            changed = await conn.execute(
                update(users)
                .where(and_(users.c.id == user.id, users.c.password_hash == old_hash))
                .values(password_hash=new_hash, password_changed_at=self.clock.now())
            )
            if changed.rowcount != 1:
                raise InvalidResetToken()
            await conn.execute(delete(sessions).where(sessions.c.user_id == user.id))
        log.info("password_reset", prefix=self.prefix, user_id=user.id)
        return user

    async def _reset_target(self, token: str) -> tuple[User, str]:
        claim = tokens.parse_reset_token(token)
        if claim is None:
            raise InvalidResetToken()
        async with self.database.reading() as conn:
            row = (
                await conn.execute(select(self.t.users).where(self.t.users.c.id == claim.user_id))
            ).first()
        if row is None or row.disabled_at is not None:
            raise InvalidResetToken()
        if not self.resets.verify(claim, row.password_hash, now=self.clock.now()):
            raise InvalidResetToken()
        return _user(row), str(row.password_hash)


def _user(row: Row[Any]) -> User:
    return User(row.id, row.email, row.display_name, row.created_at)
