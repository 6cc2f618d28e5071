"""Secrets people hold: join codes, participant tokens, account keys and invite links.

* A **join code** is 6 characters from an alphabet without look-alikes (no 0/O, 1/I): 32**6,
  about 10**9 codes, unique among live rooms; guessing is held back by the failed-join limits
  (``keel.pairux.joins``), not by the code's length alone.
* A **participant token** (``pxp_…``) and an **account key** (``pxa_…``) are 256-bit bearer
  secrets, stored only as a keyed hash. They travel in the ``Authorization`` header or the
  first WebSocket message, never in a URL (the original leaked its SSE token into URLs).
* An **invite link** carries a signed token (room, expiry, MAC), not the code: it can be sent
  by mail without handing out the code, and it expires on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from keel.core.crypto import derive_subkey
from keel.pairux.errors import InvalidInvite

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CODE = re.compile(f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")
PARTICIPANT_PREFIX = "pxp_"
ACCOUNT_PREFIX = "pxa_"
_TOKEN = re.compile(r"^px[pa]_[A-Za-z0-9_-]{43}$")
_INVITE = re.compile(r"^([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})$")


def new_code() -> str:
    """A fresh join code (uniform over :data:`CODE_ALPHABET`)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(value: str) -> str:
    """A code as people type it (lower case, spaces, dashes) in its canonical form; the result
    may still not be a valid code (check :data:`CODE`)."""
    return re.sub(r"[\s-]", "", value).upper()


def new_participant_token() -> str:
    return PARTICIPANT_PREFIX + secrets.token_urlsafe(32)


def new_account_key() -> str:
    return ACCOUNT_PREFIX + secrets.token_urlsafe(32)


def well_formed(token: str, prefix: str) -> bool:
    """Whether ``token`` has the shape of one we issue with ``prefix`` (cheap, before a lookup)."""
    return token.startswith(prefix) and _TOKEN.match(token) is not None


@dataclass(frozen=True)
class Keys:
    """Subkeys of the server secret: one hashes tokens at rest, one signs invites."""

    token_key: bytes
    invite_key: bytes

    @classmethod
    def derive(cls, server_secret: bytes) -> Keys:
        return cls(
            token_key=derive_subkey(server_secret, b"pairux:token-hash"),
            invite_key=derive_subkey(server_secret, b"pairux:invite"),
        )

    def __repr__(self) -> str:
        return "Keys(…)"

    def hash_token(self, token: str) -> str:
        """HMAC-SHA256 of a token (hex): what the database keeps."""
        return hmac.new(self.token_key, token.encode(), hashlib.sha256).hexdigest()

    def _mac(self, room_id: str, expires_at: int) -> str:
        digest = hmac.new(
            self.invite_key, f"invite:{room_id}:{expires_at}".encode(), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")

    def invite(self, room_id: str, expires_at: int) -> str:
        """An invite token for ``room_id`` valid until ``expires_at`` (unix seconds)."""
        return f"{room_id}.{expires_at}.{self._mac(room_id, expires_at)}"

    def open_invite(self, token: str, *, now: int) -> str:
        """The room id an invite token names; InvalidInvite when forged, malformed or expired."""
        match = _INVITE.match(token)
        if match is None:
            raise InvalidInvite()
        room_id, expires_at = match.group(1), int(match.group(2))
        if not hmac.compare_digest(match.group(3), self._mac(room_id, expires_at)):
            raise InvalidInvite()
        if expires_at <= now:
            raise InvalidInvite("The invite link has expired; ask the host for a new one")
        return room_id
