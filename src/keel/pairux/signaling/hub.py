"""The signaling hub: who is connected to which room, in this process's memory, and the routing
of their messages.

A room lives on one process (its connections all reach the process that loaded it); rooms,
participants and roles are durable in the database, so a restarted process loads a room again
on its first ``hello`` and the participants resume with their tokens. ADR 0026 says what
takes over when one process is not enough (fan-out keyed by room, sticky routing by room id).

Routing never leaves the sender's room: a target is looked up among the members of the
sender's own room, so a participant id from another room is simply unknown. ``from`` is set
here, never taken from the sender.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from keel.core.errors import KeelError
from keel.core.logging import get_logger
from keel.pairux import metrics, rooms, sfu, turn
from keel.pairux.errors import InvalidToken, NotHost
from keel.pairux.rooms import Participant, Role, Room, Topology
from keel.pairux.settings import PairuxSettings
from keel.pairux.signaling import messages
from keel.pairux.signaling.messages import BadMessage
from keel.pairux.store import RoomStore

log = get_logger("keel.pairux.signaling")

# WebSocket close codes (4000–4999 are the application's).
CLOSE_NORMAL = 1000
CLOSE_SERVICE_RESTART = 1012
CLOSE_UNAUTHENTICATED = 4001
CLOSE_HEARTBEAT = 4008
CLOSE_REPLACED = 4009
CLOSE_ROOM_ENDED = 4010
CLOSE_TOO_SLOW = 4013
CLOSE_RATE_LIMITED = 4429
STRIKE_WINDOW_SECONDS = 5.0


class Connection(Protocol):
    """One participant's socket, as the hub sees it (the web layer adapts Starlette's)."""

    async def send_text(self, data: str) -> None:
        """Send one text frame; raises when the socket is gone."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code``; never raises."""
        ...


class TokenBucket:
    """``rate`` a second sustained, ``burst`` at once."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.last = burst, now

    def take(self, amount: float, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if amount > self.tokens:
            return False
        self.tokens -= amount
        return True


@dataclass(eq=False)
class Session:
    """One open connection of a member. Messages to it queue in ``outbox`` and a writer task
    (:meth:`pump`) sends them, so a slow receiver never holds up a sender."""

    conn: Connection
    member: Member
    room: LiveRoom
    outbox: asyncio.Queue[str | None]
    last_heard: float
    last_ping: float
    message_bucket: TokenBucket
    byte_bucket: TokenBucket
    ice_refresh_at: float
    strikes: collections.deque[float] = field(default_factory=collections.deque)
    candidate_type: str | None = None
    closing: tuple[int, str] | None = None
    left: bool = False

    @property
    def closed(self) -> bool:
        return self.closing is not None

    def send(self, message: dict[str, Any]) -> None:
        if self.closing is not None:
            return
        try:
            self.outbox.put_nowait(messages.encode(message))
        except asyncio.QueueFull:
            self.close(CLOSE_TOO_SLOW, "receiving too slowly")

    def error(self, code: str, message: str) -> None:
        metrics.ERRORS.labels(code).inc()
        self.send({"type": "error", "code": code, "message": message})

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued (all of them but on a slow receiver)."""
        if self.closing is not None:
            return
        self.closing = (code, reason)
        metrics.CLOSES.labels(str(code)).inc()
        if self.outbox.full():
            while not self.outbox.empty():
                self.outbox.get_nowait()
        self.outbox.put_nowait(None)

    async def pump(self) -> None:
        """Send queued frames until :meth:`close`, then close the socket."""
        while (frame := await self.outbox.get()) is not None:
            try:
                await self.conn.send_text(frame)
            except Exception:  # the peer is gone: the reader sees it too
                return
        code, reason = self.closing or (CLOSE_NORMAL, "")
        await self.conn.close(code, reason)


@dataclass(eq=False)
class Member:
    participant: Participant
    session: Session | None = None
    away_since: float | None = None  # monotonic; None while connected
    seen: bool = False  # has connected in this process (presence "join" against "back")
    requested_control: bool = False

    @property
    def id(self) -> str:
        return self.participant.id

    def view(self) -> dict[str, Any]:
        p = self.participant
        return {
            "id": p.id,
            "name": p.display_name,
            "role": p.role.value,
            "guest": p.is_guest,
            "connected": self.session is not None,
        }


@dataclass(eq=False)
class LiveRoom:
    room: Room
    members: dict[str, Member]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def host(self) -> Member | None:
        return next((m for m in self.members.values() if m.participant.role is Role.HOST), None)

    def broadcast(self, message: dict[str, Any], *, but: Member | None = None) -> None:
        for member in self.members.values():
            if member is not but and member.session is not None:
                member.session.send(message)

    def controllers(self) -> int:
        return sum(m.participant.role is Role.CONTROLLER for m in self.members.values())


class Hub:
    def __init__(
        self,
        store: RoomStore,
        settings: PairuxSettings,
        turn_config: turn.TurnConfig,
        livekit: sfu.LiveKitConfig | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.turn = turn_config
        self.livekit = livekit
        self.monotonic = monotonic
        self.wall = wall
        self.rooms: dict[str, LiveRoom] = {}
        self._loading = asyncio.Lock()

    # Connections.
    async def attach(self, token: str, conn: Connection) -> Session:
        """Authenticate ``token`` and connect its participant: a newer connection replaces an
        older one, and a participant within its grace period resumes. InvalidToken when the
        token is unknown, its participant left or its room ended."""
        found = await self.store.by_token(token)
        if found is None:
            raise InvalidToken()
        participant, room = found
        live = await self._live(room)
        now = self.monotonic()
        async with live.lock:
            member = live.members.get(participant.id)
            if member is None:
                # Joined after the room was loaded, or gone meanwhile (its token died then).
                if self.rooms.get(room.id) is not live or await self.store.by_token(token) is None:
                    raise InvalidToken()
                member = live.members[participant.id] = Member(participant)
            previous = member.session
            if previous is not None:
                previous.close(CLOSE_REPLACED, "replaced by a newer connection")
                self._disconnected(member)
            s = self.settings
            session = Session(
                conn=conn,
                member=member,
                room=live,
                outbox=asyncio.Queue(maxsize=s.outbox_max_messages),
                last_heard=now,
                last_ping=now,
                message_bucket=TokenBucket(s.messages_per_second, s.message_burst, now),
                byte_bucket=TokenBucket(s.bytes_per_second, s.byte_burst, now),
                ice_refresh_at=self.wall() + s.turn_ttl_seconds * 0.75,
            )
            returning = member.seen
            member.session, member.away_since, member.seen = session, None, True
            metrics.CONNECTIONS.labels(member.participant.role.value).inc()
            session.send(self._welcome(live, member))
            event = "back" if returning or previous is not None else "join"
            live.broadcast({"type": "presence", "event": event, **member.view()}, but=member)
        log.info("participant_connected", room=room.id, participant=participant.id, presence=event)
        return session

    async def detach(self, session: Session) -> None:
        """The connection ended: a ``leave`` removes the member; anything else starts its
        grace period (the host's is longer)."""
        live, member = session.room, session.member
        async with live.lock:
            if member.session is not session:
                return  # replaced by a newer connection, or the room ended
            self._disconnected(member)
            if session.left:
                await self._remove(live, member, reason="left")
                return
            member.away_since = self.monotonic()
            live.broadcast({"type": "presence", "event": "away", **member.view()})
            if member.participant.role is Role.HOST:
                grace = self.settings.host_grace_seconds
                live.broadcast({"type": "host-away", "graceSeconds": grace})

    def _disconnected(self, member: Member) -> None:
        metrics.CONNECTIONS.labels(member.participant.role.value).dec()
        member.session = None

    # Messages.
    async def receive(self, session: Session, text: str) -> None:
        """Handle one text frame from ``session``: never raises for bad input (an ``error``
        frame answers it), closes the connection with 4429 for a sender past its limits."""
        now = self.monotonic()
        session.last_heard = now
        size = len(text.encode("utf-8", "surrogatepass"))
        if not (session.message_bucket.take(1, now) and session.byte_bucket.take(size, now)):
            self._strike(session, now)
            return
        if size > self.settings.message_max_bytes:
            session.error(
                "too_large", f"messages are at most {self.settings.message_max_bytes} bytes"
            )
            return
        try:
            message = messages.parse(text)
        except BadMessage as exc:
            session.error("invalid_message", str(exc))
            return
        metrics.MESSAGES.labels(message.type).inc()
        try:
            await self._dispatch(session, message)
        except KeelError as exc:
            session.error(exc.code, exc.detail)

    def _strike(self, session: Session, now: float) -> None:
        strikes = session.strikes
        strikes.append(now)
        while strikes and strikes[0] < now - STRIKE_WINDOW_SECONDS:
            strikes.popleft()
        if len(strikes) > self.settings.rate_limit_strikes:
            session.close(CLOSE_RATE_LIMITED, "rate limit exceeded")
        else:
            session.error("rate_limited", "too many messages or bytes; this one was dropped")

    async def _dispatch(self, session: Session, message: messages.Inbound) -> None:
        match message:
            case messages.Offer() | messages.Answer() | messages.Ice() | messages.Restart():
                self._relay(session, message)
            case messages.ControlRequest():
                self._request_control(session)
            case messages.ControlGrant():
                await self._grant(session, message.participant)
            case messages.ControlRevoke():
                await self._revoke(session, message.participant)
            case messages.HostTransfer():
                await self._handover(session, message.participant)
            case messages.Stats():
                changed = message.candidateType not in (None, session.candidate_type)
                session.candidate_type = message.candidateType or session.candidate_type
                metrics.observe(message, candidate_changed=changed)
            case messages.Leave():
                session.left = True
                session.close(CLOSE_NORMAL, "left")
            case messages.Hello():
                session.error("already_authenticated", "this connection has said hello")
            case messages.Pong():
                pass

    def _relay(
        self,
        session: Session,
        message: messages.Offer | messages.Answer | messages.Ice | messages.Restart,
    ) -> None:
        sender = session.member
        target = session.room.members.get(message.to)
        if target is None or target is sender or target.session is None:
            session.error("unknown_peer", "no such participant is connected in this room")
            return
        host = Role.HOST
        if host not in (sender.participant.role, target.participant.role):
            session.error("peer_not_allowed", "peers connect to the host, not to each other")
            return
        frame = message.model_dump(exclude={"to"})
        frame["from"] = sender.id
        target.session.send(frame)

    def _request_control(self, session: Session) -> None:
        member, live = session.member, session.room
        if member.participant.role is not Role.VIEWER:
            session.error("not_viewer", "only a viewer asks for control")
            return
        host = live.host()
        if host is None or host.session is None:
            session.error("host_away", "the host is not connected")
            return
        member.requested_control = True
        host.session.send(
            {"type": "control-request", "from": member.id, "name": member.participant.display_name}
        )

    def _member(self, session: Session, participant_id: str) -> Member:
        target = session.room.members.get(participant_id)
        if target is None:
            raise UnknownParticipant()
        return target

    async def _grant(self, session: Session, participant_id: str) -> None:
        live = session.room
        async with live.lock:
            target = self._member(session, participant_id)
            limit = self.settings.max_controllers
            rooms.check_grant(
                session.member.participant, target.participant, live.controllers(), limit
            )
            await self._set_role(live, target, Role.CONTROLLER, by=session.member.id)

    async def _revoke(self, session: Session, participant_id: str) -> None:
        live, actor = session.room, session.member
        async with live.lock:
            target = self._member(session, participant_id)
            if (
                actor.participant.role is Role.HOST
                and target.participant.role is Role.VIEWER
                and target.requested_control
            ):
                target.requested_control = False  # the host denied the request
                if target.session is not None:
                    target.session.send({"type": "control-denied", "by": actor.id})
                return
            rooms.check_revoke(actor.participant, target.participant)
            await self._set_role(live, target, Role.VIEWER, by=actor.id)

    async def _set_role(self, live: LiveRoom, member: Member, role: Role, *, by: str) -> None:
        await self.store.set_role(live.room.id, member.id, role)
        self._retitle(member, role)
        member.requested_control = False
        metrics.ROLE_CHANGES.labels(role.value).inc()
        live.broadcast({"type": "role", "participant": member.id, "role": role.value, "by": by})
        self._send_livekit(live, member)

    def _retitle(self, member: Member, role: Role) -> None:
        if member.session is not None and member.participant.role is not role:
            metrics.CONNECTIONS.labels(member.participant.role.value).dec()
            metrics.CONNECTIONS.labels(role.value).inc()
        member.participant = dataclasses.replace(member.participant, role=role)

    async def _handover(self, session: Session, participant_id: str) -> None:
        live = session.room
        async with live.lock:
            if session.member.participant.role is not Role.HOST:
                raise NotHost("Only the host hands the room over")
            target = self._member(session, participant_id)
            if target is session.member or target.session is None:
                raise rooms.GrantRefused("Hand the room to another connected participant")
            await self._transfer(live, target, reason="handover")

    async def _transfer(self, live: LiveRoom, new_host: Member, *, reason: str) -> None:
        demoted = await self.store.transfer_host(live.room.id, new_host.id)
        for member_id in demoted:
            if (member := live.members.get(member_id)) is not None:
                self._retitle(member, Role.VIEWER)
        self._retitle(new_host, Role.HOST)
        live.room = dataclasses.replace(live.room, host_id=new_host.id)
        metrics.HOST_TRANSFERS.labels(reason).inc()
        live.broadcast({"type": "host", "participant": new_host.id, "reason": reason})
        for member_id in demoted:
            live.broadcast({"type": "role", "participant": member_id, "role": "viewer", "by": None})
        for member in live.members.values():
            if member.id in demoted or member is new_host:
                self._send_livekit(live, member)
        log.info("host_transferred", room=live.room.id, host=new_host.id, reason=reason)

    async def _remove(self, live: LiveRoom, member: Member, *, reason: str) -> None:
        await self.store.leave(member.id)
        del live.members[member.id]
        live.broadcast({"type": "presence", "event": "leave", **member.view()})
        if member.participant.role is Role.HOST:
            await self._succeed(live, reason=reason)
        if not live.members and self.rooms.get(live.room.id) is live:
            await self.store.end_room(live.room.id)
            self._unload(live)

    async def _succeed(self, live: LiveRoom, *, reason: str) -> None:
        """The host is gone: a connected participant takes over (an account before a guest,
        then whoever joined first); with nobody connected the room ends."""
        others = [m for m in live.members.values() if m.participant.role is not Role.HOST]
        connected = [m.participant for m in others if m.session is not None]
        chosen = rooms.successor(connected)
        if chosen is None:
            await self.end_room(live.room.id)
            await self.store.end_room(live.room.id)
            return
        await self._transfer(live, live.members[chosen.id], reason=reason)

    # The API's events.
    async def admitted(self, room: Room, participant: Participant) -> None:
        """A participant joined over HTTP: its grace to connect starts now, and a room that
        moved to the SFU tells everyone."""
        live = self.rooms.get(room.id)
        if live is None:
            return
        async with live.lock:
            if participant.id not in live.members:
                live.members[participant.id] = Member(participant, away_since=self.monotonic())
            if room.topology is not live.room.topology:
                live.room = dataclasses.replace(live.room, topology=room.topology)
                metrics.TOPOLOGY_MOVES.inc()
                live.broadcast({"type": "topology", "topology": room.topology.value})
                for member in live.members.values():
                    self._send_livekit(live, member)

    async def end_room(self, room_id: str) -> None:
        """The room ended: everyone connected is told and disconnected."""
        live = self.rooms.get(room_id)
        if live is None:
            return
        self._unload(live)
        for member in live.members.values():
            if member.session is not None:
                member.session.send({"type": "room-ended"})
                member.session.close(CLOSE_ROOM_ENDED, "the room has ended")
                self._disconnected(member)

    def close_all(self) -> None:
        """The process is stopping: close every connection (1012, service restart); the rooms
        stay live and their participants resume elsewhere or later with their tokens."""
        for live in self.rooms.values():
            for member in live.members.values():
                if member.session is not None:
                    member.session.close(CLOSE_SERVICE_RESTART, "server restarting")

    def connected(self, room_id: str) -> frozenset[str]:
        """Ids of the room's participants connected to this process."""
        live = self.rooms.get(room_id)
        if live is None:
            return frozenset()
        return frozenset(m.id for m in live.members.values() if m.session is not None)

    # Time.
    async def sweep(self) -> None:
        """Ping quiet connections, close silent ones, refresh TURN credentials, and end the
        grace of members away too long (a host's passes the room on)."""
        now, wall, s = self.monotonic(), self.wall(), self.settings
        for live in list(self.rooms.values()):
            for member in list(live.members.values()):
                session = member.session
                if session is not None:
                    if now - session.last_heard > s.heartbeat_timeout_seconds:
                        session.close(CLOSE_HEARTBEAT, "no heartbeat")
                    elif now - session.last_ping >= s.heartbeat_interval_seconds:
                        session.last_ping = now
                        session.send({"type": "ping"})
                    if wall >= session.ice_refresh_at:
                        session.ice_refresh_at = wall + s.turn_ttl_seconds * 0.75
                        session.send({"type": "ice-servers", "iceServers": self._ice(member)})
                    continue
                if member.away_since is None:
                    continue
                host = member.participant.role is Role.HOST
                grace = s.host_grace_seconds if host else s.reconnect_grace_seconds
                if now - member.away_since > grace:
                    async with live.lock:
                        if member.session is None and live.members.get(member.id) is member:
                            reason = "host-grace" if host else "gone"
                            await self._remove(live, member, reason=reason)

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until ``stop`` is set (the product's lifespan runs this)."""
        tick = min(1.0, self.settings.heartbeat_interval_seconds / 2)
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:  # a failing sweep (database down) must not end the loop
                log.exception("sweep_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)

    # Helpers.
    async def _live(self, room: Room) -> LiveRoom:
        async with self._loading:
            live = self.rooms.get(room.id)
            if live is None:
                present = await self.store.present(room.id)
                now = self.monotonic()
                members = {p.id: Member(p, away_since=now) for p in present}
                live = self.rooms[room.id] = LiveRoom(room, members)
                metrics.ROOMS_ACTIVE.inc()
            return live

    def _unload(self, live: LiveRoom) -> None:
        if self.rooms.get(live.room.id) is live:
            del self.rooms[live.room.id]
            metrics.ROOMS_ACTIVE.dec()

    def _ice(self, member: Member) -> list[dict[str, Any]]:
        return turn.ice_servers(self.turn, member.id, now=int(self.wall()))

    def _livekit_frame(self, live: LiveRoom, member: Member) -> dict[str, Any] | None:
        if self.livekit is None or live.room.topology is not Topology.SFU:
            return None
        token = sfu.access_token(
            self.livekit,
            room_id=live.room.id,
            participant_id=member.id,
            name=member.participant.display_name,
            role=member.participant.role,
        )
        return {"url": self.livekit.url, "room": sfu.room_name(live.room.id), "token": token}

    def _send_livekit(self, live: LiveRoom, member: Member) -> None:
        frame = self._livekit_frame(live, member)
        if frame is not None and member.session is not None:
            member.session.send({"type": "livekit", **frame})

    def _welcome(self, live: LiveRoom, member: Member) -> dict[str, Any]:
        room = live.room
        you = member.view()
        welcome: dict[str, Any] = {
            "type": "welcome",
            "you": you,
            "room": {
                "id": room.id,
                "topology": room.topology.value,
                "hostId": room.host_id,
                **({"code": room.code} if member.participant.role is Role.HOST else {}),
            },
            "participants": [m.view() for m in live.members.values() if m is not member],
            "iceServers": self._ice(member),
            "heartbeatSeconds": self.settings.heartbeat_interval_seconds,
        }
        livekit = self._livekit_frame(live, member)
        if livekit is not None:
            welcome["livekit"] = livekit
        return welcome


class UnknownParticipant(KeelError):
    """No such participant in this room."""

    code = "unknown_participant"
    status = 404
