"""Who may control this screen, decided on the host and nowhere else.

Jitsi disabled its Electron remote control (JSA-2020-0001) because the remote side could start
it; PairUX enables its injector from a database row the server holds. Here the server only
carries messages: a grant exists only in this object, on the shared machine, after its user
said yes.

Per participant::

    view-only --request--> requested --grant--> granted --revoke/release/expiry/leave--> view-only
                              |  (prompt shown to the host; no answer in 30 s = denied)
                              +--deny/timeout--> denied --(cool-down passes)--> may request again

A grant may be timed; ``reconfirm_lead`` before it lapses the host is asked to extend it
(Chrome Remote Desktop re-confirms every 30 min). :meth:`GrantAuthority.emergency_revoke` ends
every grant and every pending request at once (the hotkey). At most ``max_controllers`` hold a
grant together. :meth:`GrantAuthority.is_granted` answers for this instant from the injected
clock, whether or not :meth:`GrantAuthority.tick` ran: an expired grant is never honoured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from keel.core.clock import Clock

__all__ = [
    "ControlState",
    "GrantAuthority",
    "GrantEvent",
    "GrantRefused",
    "Participant",
]


class ControlState(StrEnum):
    VIEW_ONLY = "view-only"
    REQUESTED = "requested"
    GRANTED = "granted"
    DENIED = "denied"


EventKind = Literal[
    "requested", "granted", "denied", "revoked", "released", "reconfirm", "extended"
]


@dataclass(frozen=True, slots=True)
class GrantEvent:
    """Something that changed: ``requested`` (prompt the host until ``expires_at``),
    ``granted`` (until ``expires_at``, or open-ended), ``denied`` (reason host / timeout /
    cooldown / full / not-allowed), ``revoked`` (host / expired / emergency / disconnected),
    ``released`` (by the controller), ``reconfirm`` (ask the host to extend before
    ``expires_at``), ``extended`` (new ``expires_at``)."""

    kind: EventKind
    participant_id: str
    at: datetime
    reason: str | None = None
    expires_at: datetime | None = None


class GrantRefused(Exception):
    """The host asked for something the state does not allow; ``code`` says what."""

    def __init__(self, code: str, participant_id: str) -> None:
        super().__init__(f"{code}: {participant_id}")
        self.code = code
        self.participant_id = participant_id


@dataclass(slots=True)
class Participant:
    id: str
    name: str
    state: ControlState = ControlState.VIEW_ONLY
    prompt_expires_at: datetime | None = None
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    reconfirm_asked: bool = False
    denied_at: datetime | None = None


Listener = Callable[[GrantEvent], None]


class GrantAuthority:
    """The host's grant state for one session; every change is returned and told to the
    listeners (arbitration releases what a revoked controller held; the audit log records).

    Not locked: change it from one thread (the host agent's event loop). Reads
    (:meth:`is_granted`) are safe from any thread, and the arbiter's listener makes
    :meth:`revoke` wait for an injection in progress.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        max_controllers: int = 3,
        request_timeout: timedelta = timedelta(seconds=30),
        reconfirm_lead: timedelta = timedelta(seconds=60),
        deny_cooldown: timedelta = timedelta(seconds=10),
        allow_control: bool = True,
    ) -> None:
        if max_controllers < 1:
            raise ValueError("max_controllers must be at least 1")
        self.clock = clock
        self.max_controllers = max_controllers
        self.request_timeout = request_timeout
        self.reconfirm_lead = reconfirm_lead
        self.deny_cooldown = deny_cooldown
        self.allow_control = allow_control
        self._participants: dict[str, Participant] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- what the host and the agent ask ---------------------------------------------------

    def participant(self, participant_id: str) -> Participant | None:
        return self._participants.get(participant_id)

    def is_granted(self, participant_id: str) -> bool:
        """Whether input from this participant may be injected now."""
        held = self._participants.get(participant_id)
        return held is not None and self._holds_grant(held, self.clock.now())

    def controllers(self) -> list[Participant]:
        now = self.clock.now()
        return [p for p in self._participants.values() if self._holds_grant(p, now)]

    def pending(self) -> list[Participant]:
        """Requests waiting for the host's answer (the prompts to show)."""
        now = self.clock.now()
        return [
            p
            for p in self._participants.values()
            if p.state is ControlState.REQUESTED
            and p.prompt_expires_at is not None
            and now < p.prompt_expires_at
        ]

    # -- participants ----------------------------------------------------------------------

    def join(self, participant_id: str, name: str) -> None:
        self._participants.setdefault(participant_id, Participant(participant_id, name))

    def leave(self, participant_id: str) -> list[GrantEvent]:
        """The participant disconnected: its grant or request ends."""
        held = self._participants.get(participant_id)
        if held is None:
            return []
        events = self._end(held, "revoked", "disconnected") if self._active(held) else []
        del self._participants[participant_id]
        return self._emit(events)

    # -- the viewer's side -----------------------------------------------------------------

    def request(self, participant_id: str) -> list[GrantEvent]:
        """A viewer asks for control: a prompt for the host, or a denial right away."""
        now = self.clock.now()
        self._expire(now)
        held = self._participants.get(participant_id)
        if held is None or not self.allow_control:
            return self._emit([GrantEvent("denied", participant_id, now, "not-allowed")])
        if held.state in (ControlState.GRANTED, ControlState.REQUESTED):
            return []
        if (
            held.state is ControlState.DENIED
            and held.denied_at is not None
            and now < held.denied_at + self.deny_cooldown
        ):
            return self._emit([GrantEvent("denied", participant_id, now, "cooldown")])
        if len(self.controllers()) >= self.max_controllers:
            return self._emit([GrantEvent("denied", participant_id, now, "full")])
        held.state = ControlState.REQUESTED
        held.prompt_expires_at = now + self.request_timeout
        return self._emit(
            [GrantEvent("requested", participant_id, now, None, held.prompt_expires_at)]
        )

    def release(self, participant_id: str) -> list[GrantEvent]:
        """The controller gives control back (or withdraws its request)."""
        held = self._participants.get(participant_id)
        if held is None or not self._active(held):
            return []
        return self._emit(self._end(held, "released", "released"))

    # -- the host's side -------------------------------------------------------------------

    def grant(self, participant_id: str, *, duration: timedelta | None = None) -> list[GrantEvent]:
        """The host allows a pending request, open-ended or for ``duration``.

        Raises :class:`GrantRefused` (``no_request``, ``full``) when it cannot.
        """
        now = self.clock.now()
        self._expire(now)
        held = self._participants.get(participant_id)
        if held is None or held.state is not ControlState.REQUESTED:
            raise GrantRefused("no_request", participant_id)
        if len(self.controllers()) >= self.max_controllers:
            raise GrantRefused("full", participant_id)
        held.state = ControlState.GRANTED
        held.prompt_expires_at = None
        held.granted_at = now
        held.expires_at = now + duration if duration is not None else None
        held.reconfirm_asked = False
        return self._emit([GrantEvent("granted", participant_id, now, None, held.expires_at)])

    def deny(self, participant_id: str) -> list[GrantEvent]:
        held = self._participants.get(participant_id)
        if held is None or held.state is not ControlState.REQUESTED:
            return []
        return self._emit(self._end(held, "denied", "host"))

    def revoke(self, participant_id: str, reason: str = "host") -> list[GrantEvent]:
        """End a grant (or refuse a pending request); always wins, whatever else is pending."""
        held = self._participants.get(participant_id)
        if held is None or not self._active(held):
            return []
        return self._emit(self._end(held, "revoked", reason))

    def extend(self, participant_id: str, duration: timedelta) -> list[GrantEvent]:
        """The host re-confirms a timed grant: it now lapses ``duration`` from now."""
        now = self.clock.now()
        self._expire(now)
        held = self._participants.get(participant_id)
        if held is None or held.state is not ControlState.GRANTED:
            raise GrantRefused("not_granted", participant_id)
        held.expires_at = now + duration
        held.reconfirm_asked = False
        return self._emit([GrantEvent("extended", participant_id, now, None, held.expires_at)])

    def emergency_revoke(self) -> list[GrantEvent]:
        """Every grant and every pending request ends now (the hotkey's first half; the
        arbiter releases every held key and button)."""
        events: list[GrantEvent] = []
        for held in self._participants.values():
            if self._active(held):
                events += self._end(held, "revoked", "emergency")
        return self._emit(events)

    def tick(self) -> list[GrantEvent]:
        """Lapse unanswered prompts and expired grants; ask to re-confirm grants about to
        lapse. Call it a few times a second."""
        return self._expire(self.clock.now())

    # -- internals -------------------------------------------------------------------------

    def _expire(self, now: datetime) -> list[GrantEvent]:
        events: list[GrantEvent] = []
        for held in self._participants.values():
            if held.state is ControlState.REQUESTED:
                if held.prompt_expires_at is not None and now >= held.prompt_expires_at:
                    events += self._end(held, "denied", "timeout")
            elif held.state is ControlState.GRANTED and held.expires_at is not None:
                if now >= held.expires_at:
                    events += self._end(held, "revoked", "expired")
                elif not held.reconfirm_asked and now >= held.expires_at - self.reconfirm_lead:
                    held.reconfirm_asked = True
                    events.append(GrantEvent("reconfirm", held.id, now, None, held.expires_at))
        return self._emit(events)

    def _end(self, held: Participant, kind: EventKind, reason: str) -> list[GrantEvent]:
        now = self.clock.now()
        was_request = held.state is ControlState.REQUESTED
        if kind == "denied" or (kind == "revoked" and was_request and reason == "host"):
            held.state, held.denied_at, kind = ControlState.DENIED, now, "denied"
        else:
            held.state = ControlState.VIEW_ONLY
        held.prompt_expires_at = held.granted_at = held.expires_at = None
        held.reconfirm_asked = False
        return [GrantEvent(kind, held.id, now, reason)]

    @staticmethod
    def _active(held: Participant) -> bool:
        return held.state in (ControlState.GRANTED, ControlState.REQUESTED)

    @staticmethod
    def _holds_grant(held: Participant, now: datetime) -> bool:
        return held.state is ControlState.GRANTED and (
            held.expires_at is None or now < held.expires_at
        )

    def _emit(self, events: list[GrantEvent]) -> list[GrantEvent]:
        for event in events:
            for listener in self._listeners:
                listener(event)
        return events
