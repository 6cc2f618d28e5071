"""CSRF tokens: nothing stored, everything derived under a subkey of the server secret.

* Signed in: the **synchronizer token** is HMAC(key, "session", SHA-256 of the session
  token). It is the same for the whole session, changes with it (login rotates it, logout
  ends it), and cannot be computed without the key even by someone who knows the session.
* Not signed in (the login, sign-up and reset forms): a **signed double-submit** token,
  HMAC(key, "nonce", n), where n is a random value in a cookie of its own. A cross-site form
  can neither read the cookie nor compute the token, so login CSRF (signing a victim into
  the attacker's account) is refused too.

Which requests must carry one, and where it is read from, is ``keel.core.identity.web``'s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from keel.core.crypto import derive_subkey

FIELD = "csrf_token"  # the form field
HEADER = "X-CSRF-Token"  # the header, for scripts
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_TOKEN_CHARS = 64  # ours have 43; anything longer is refused before comparing


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def well_formed_nonce(nonce: str) -> bool:
    return _NONCE.fullmatch(nonce) is not None


class CsrfTokens:
    """Derives the CSRF tokens of one product (its server secret and table prefix)."""

    def __init__(self, server_secret: bytes, *, prefix: str) -> None:
        self._key = derive_subkey(server_secret, f"keel.identity:{prefix}:csrf".encode())

    def __repr__(self) -> str:
        return "CsrfTokens(…)"

    def _mac(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def for_session(self, session_token_hash: str) -> str:
        """The token every unsafe request of this session must carry."""
        return self._mac("session", session_token_hash)

    def for_nonce(self, nonce: str) -> str:
        """The token a form shown before sign-in carries, bound to the nonce cookie."""
        return self._mac("nonce", nonce)


def matches(expected: str, submitted: str | None) -> bool:
    """Constant-time equality; a missing or oversized ``submitted`` never matches."""
    if submitted is None or len(submitted) > MAX_TOKEN_CHARS:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode("utf-8", "surrogatepass"))
