"""The ``control`` data channel of each viewer, end to end on the host: parse what arrives,
hand it to the grant authority or the arbiter, and send back grants, denials, revokes, pongs
and everyone's cursors.

The transport is not here: the WebRTC side calls :meth:`ControlHub.open` when a viewer's
channel opens (with a ``send`` callable), :meth:`ControlChannel.receive` for each message and
:meth:`ControlHub.close` when it closes. Who sent a message is the channel it came on, never
a ``participantId`` inside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import get_args

from keel.pairux.host.control import messages
from keel.pairux.host.control.arbitration import Arbiter, Outcome
from keel.pairux.host.control.audit import AuditLog
from keel.pairux.host.control.grants import GrantAuthority, GrantEvent

__all__ = ["ControlChannel", "ControlHub"]

Send = Callable[[str], None]
_DENY_REASONS = frozenset(get_args(messages.DenyReason))
_REVOKE_REASONS = frozenset(get_args(messages.RevokeReason))


class ControlChannel:
    """One viewer's ``control`` channel."""

    def __init__(self, hub: ControlHub, participant_id: str, send: Send) -> None:
        self.participant_id = participant_id
        self.rejected: Counter[str] = Counter()
        self._hub = hub
        self._send = send

    def receive(self, data: bytes | str) -> Outcome | None:
        """Handle one message; returns the arbiter's verdict for input, else None."""
        message = messages.parse_from_viewer(data)
        hub, pid = self._hub, self.participant_id
        if isinstance(message, messages.Rejected):
            self.rejected[message.code] += 1
            return None
        if isinstance(message, messages.InputMessage):
            return hub.arbiter.submit(pid, message)
        if isinstance(message, messages.ControlRequest):
            hub.grants.request(pid)
        elif isinstance(message, messages.ControlRelease):
            hub.grants.release(pid)
        elif isinstance(message, messages.CursorMessage):
            hub.arbiter.set_cursor(pid, message.x, message.y, message.visible)
        elif isinstance(message, messages.Ping):
            self.send(messages.Pong(timestamp=message.timestamp))
        return None

    def send(self, message: messages.HostMessage) -> None:
        self._send(messages.encode(message))


class ControlHub:
    """Every viewer's channel in one session, around one grant authority and one arbiter."""

    def __init__(
        self, *, grants: GrantAuthority, arbiter: Arbiter, audit: AuditLog | None = None
    ) -> None:
        self.grants = grants
        self.arbiter = arbiter
        self.audit = audit
        self._channels: dict[str, ControlChannel] = {}
        self._names: dict[str, str] = {}
        if audit is not None:
            grants.subscribe(audit.on_grant_event)
        grants.subscribe(self._tell_viewer)

    def open(self, participant_id: str, name: str, send: Send) -> ControlChannel:
        channel = ControlChannel(self, participant_id, send)
        self._channels[participant_id] = channel
        self._names[participant_id] = name
        self.grants.join(participant_id, name)
        return channel

    def close(self, participant_id: str) -> None:
        self.grants.leave(participant_id)
        self.arbiter.forget(participant_id)
        self._channels.pop(participant_id, None)
        self._names.pop(participant_id, None)

    def emergency_revoke(self) -> None:
        """The hotkey: recorded, then every grant ends and everything held is released."""
        if self.audit is not None:
            self.audit.record("emergency-revoke")
        self.arbiter.emergency_revoke()

    def cursors(self) -> messages.Cursors:
        """Everyone's pointer, to broadcast to every viewer (about 30 times a second)."""
        return messages.Cursors(
            participants=[
                messages.ParticipantCursor(
                    id=c.participant_id,
                    name=self._names.get(c.participant_id, "")[:64],
                    x=c.x,
                    y=c.y,
                )
                for c in self.arbiter.cursors()
                if c.participant_id in self._names
            ]
        )

    def broadcast(self, message: messages.HostMessage) -> None:
        for channel in list(self._channels.values()):
            channel.send(message)

    def _tell_viewer(self, event: GrantEvent) -> None:
        channel = self._channels.get(event.participant_id)
        if channel is None:
            return
        stamp = _millis(event.at)
        if event.kind == "granted":
            expires = _millis(event.expires_at) if event.expires_at else None
            channel.send(messages.ControlGrant(timestamp=stamp, expires_at=expires))
        elif event.kind == "denied":
            reason = event.reason if event.reason in _DENY_REASONS else "host"
            channel.send(messages.ControlDenied(timestamp=stamp, reason=reason))  # type: ignore[arg-type]
        elif event.kind in ("revoked", "released"):
            reason = event.reason if event.reason in _REVOKE_REASONS else "host"
            channel.send(messages.ControlRevoke(timestamp=stamp, reason=reason))  # type: ignore[arg-type]


def _millis(moment: datetime) -> float:
    return moment.timestamp() * 1000.0
