"""Accounts for every product: email and password (argon2id), sessions in secure http-only
cookies, CSRF protection, login rate limits, password reset by signed one-use token.

    tables.py     the users and sessions tables, on a product's own metadata
    accounts.py   the service: sign up, log in/out, sessions, password reset
    emails.py     email normalisation and display names
    passwords.py  the password policy and argon2id hashing
    tokens.py     session tokens (stored as SHA-256) and signed reset tokens
    csrf.py       CSRF tokens derived from the session or a pre-session nonce
    throttle.py   failed-login, sign-up and reset-request limits
    mail.py       the Mailer protocol: the file outbox (default) and SMTP
    formtoken.py  the CSRF field of a form body, read without consuming the body
    web.py        FastAPI: cookies, the middleware, user dependencies (the only web part)

A product adopts it with its own table prefix and migration (ADR 0029).
"""

from keel.core.identity.accounts import (
    Accounts,
    LoggedIn,
    ResetMail,
    Session,
    SessionPolicy,
    User,
)
from keel.core.identity.mail import FileMailer, Mailer, MailerError, Message, SmtpMailer
from keel.core.identity.passwords import Passwords
from keel.core.identity.tables import IdentityTables, identity_tables
from keel.core.identity.throttle import LoginLimits

__all__ = [
    "Accounts",
    "FileMailer",
    "IdentityTables",
    "LoggedIn",
    "LoginLimits",
    "Mailer",
    "MailerError",
    "Message",
    "Passwords",
    "ResetMail",
    "Session",
    "SessionPolicy",
    "SmtpMailer",
    "User",
    "identity_tables",
]
