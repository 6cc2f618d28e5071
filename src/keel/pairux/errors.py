"""Errors of pairux. Each has a stable ``code`` that clients may switch on; the signaling
socket sends the same codes in its ``error`` frames.

PairuxError (KeelError)
├── InvalidToken          no, a malformed or an unknown participant token (401)
├── InvalidAccountKey     an account key that is malformed or unknown (401)
├── NotHost               the action is the host's and the caller is not the host (403)
├── RoomNotFound          no live room with that id for this caller (404)
├── UnknownCode           no live room has that join code (404)
├── InvalidInvite         an invite link that is forged, expired or for an ended room (404)
├── RoomFull              the room is at capacity for its topology (409)
├── RoomEnded             the room has ended (410)
└── JoinsLocked           too many failed code joins: from this address or everyone (429)
"""

from __future__ import annotations

from keel.core import errors


class PairuxError(errors.KeelError):
    """A pairux error."""


class InvalidToken(PairuxError, errors.Unauthorized):
    """Send a participant token: Authorization: Bearer pxp_…"""

    code = "invalid_token"


class InvalidAccountKey(PairuxError, errors.Unauthorized):
    """The account key is not valid."""

    code = "invalid_account_key"


class NotHost(PairuxError, errors.Forbidden):
    """Only the room's host may do this."""

    code = "not_host"


class RoomNotFound(PairuxError, errors.NotFound):
    """No such room."""

    code = "room_not_found"


class UnknownCode(PairuxError, errors.NotFound):
    """No live room has that join code."""

    code = "unknown_code"


class InvalidInvite(PairuxError, errors.NotFound):
    """The invite link is not valid, has expired, or its room has ended."""

    code = "invalid_invite"


class RoomFull(PairuxError, errors.Conflict):
    """The room is full."""

    code = "room_full"


class RoomEnded(PairuxError):
    """The room has ended."""

    code = "room_ended"
    status = 410
    title = "Gone"


class JoinsLocked(PairuxError, errors.RateLimited):
    """Too many failed joins; try again later."""

    code = "joins_locked"
