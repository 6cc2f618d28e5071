"""The two secrets identity hands out: session tokens and password-reset tokens.

* A **session token** is 256 random bits (``secrets.token_urlsafe(32)``) in a cookie; the
  database keeps only its SHA-256, so a leaked sessions table opens no session. (A keyed hash
  would add nothing: the token cannot be guessed, only stolen.)
* A **reset token** is ``<user id>.<expires, unix s>.<MAC>``: HMAC-SHA256 under a subkey of
  the product's server secret over the user id, the expiry and the user's current password
  hash. Nothing is stored; changing the password (which the reset does, with a new salt)
  changes the hash, so a token works once and dies with the password it was issued for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from keel.core.crypto import derive_subkey

SESSION_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_RESET = re.compile(r"([0-9a-f]{32})\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})")


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def session_token_hash(token: str) -> str:
    """What the sessions table keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed_session_token(token: str) -> bool:
    """Whether ``token`` has the shape of one we issue (cheap, before any lookup)."""
    return SESSION_TOKEN.fullmatch(token) is not None


@dataclass(frozen=True)
class ResetClaim:
    """What a reset token says, before its MAC is checked against the user's password hash."""

    user_id: str
    expires_at: int  # unix seconds
    mac: str


def parse_reset_token(token: str) -> ResetClaim | None:
    """The claim in ``token``, or None when it is not shaped like a reset token. Never raises:
    it reads strings from anyone."""
    match = _RESET.fullmatch(token)
    if match is None:
        return None
    return ResetClaim(match.group(1), int(match.group(2)), match.group(3))


class ResetTokens:
    """Issues and checks password-reset tokens under one product's server secret."""

    def __init__(self, server_secret: bytes, *, prefix: str, ttl_seconds: int = 3600) -> None:
        self._key = derive_subkey(server_secret, f"keel.identity:{prefix}:reset".encode())
        self.ttl_seconds = ttl_seconds

    def __repr__(self) -> str:
        return f"ResetTokens(ttl_seconds={self.ttl_seconds})"

    def _mac(self, user_id: str, expires_at: int, password_hash: str) -> str:
        # NUL-separated: no field can contain one, so two claims never sign the same bytes.
        message = f"reset\x00{user_id}\x00{expires_at}\x00{password_hash}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, user_id: str, password_hash: str, *, now: datetime) -> str:
        """A token for ``user_id`` that verifies until ``ttl_seconds`` after ``now``, and only
        while the user's password hash is ``password_hash``."""
        expires_at = int(now.timestamp()) + self.ttl_seconds
        return f"{user_id}.{expires_at}.{self._mac(user_id, expires_at, password_hash)}"

    def verify(self, claim: ResetClaim, password_hash: str, *, now: datetime) -> bool:
        """Whether ``claim`` was issued by us for this user and password hash and has not
        expired (constant-time comparison of the MAC)."""
        expected = self._mac(claim.user_id, claim.expires_at, password_hash)
        genuine = hmac.compare_digest(claim.mac, expected)
        return genuine and now.timestamp() < claim.expires_at
