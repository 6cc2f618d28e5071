"""The host agent (``keel pairux host``): one shared screen in one room, end to end.

It enters the room over HTTP (creates it, or joins by code and shares once it is the host),
says ``hello`` on ``/pairux/ws`` with its participant token (never in a URL), and for every
viewer present makes a peer connection with the welcome's ``iceServers`` (never aiortc's
default Google STUN), the viewer's fan-out track and an ordered ``control`` data channel, then
offers: the host always offers, as in PairUX. Answers and trickled candidates come back through
the server. Each channel is handed to the control side (:mod:`keel.pairux.host.control`) under
the participant id and name the server announced, never what the peer says about itself.

Grants are decided here (``decide``: a terminal prompt, a policy or a test's script); the
server is only told the outcome, so the room's roles follow the host's choices.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from keel.core.clock import Clock, SystemClock
from keel.core.logging import get_logger
from keel.pairux.host.control import runtime
from keel.pairux.host.control.arbitration import CaptureRect
from keel.pairux.host.control.channel import ControlChannel
from keel.pairux.host.control.grants import ControlState, GrantEvent, GrantRefused
from keel.pairux.host.control.injector import Injector
from keel.pairux.host.media import capture, ladder, rtc
from keel.pairux.host.media.encoder import Codec
from keel.pairux.host.media.fanout import Fanout
from keel.pairux.host.media.pipeline import MediaPipeline

__all__ = ["AgentOptions", "HostAgent", "ask_in_terminal", "policy"]

log = get_logger("keel.pairux.host")

RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0
# The server's close code when a room ends (keel.pairux.signaling.hub.CLOSE_ROOM_ENDED: the host
# agent talks to the server over the wire only, so the number is restated here).
CLOSE_ROOM_ENDED = 4010

Decide = Callable[[str, str], Awaitable[bool]]
"""The host's answer to a control request: (participant id, display name) -> allow."""
GrantPolicy = Literal["ask", "all", "none"]


def policy(name: GrantPolicy, *, prompt_timeout_s: float = 30.0) -> Decide:
    """``all`` allows every request, ``none`` refuses them, ``ask`` asks on the terminal."""
    if name == "all":

        async def allow(_pid: str, _name: str) -> bool:
            return True

        return allow
    if name == "none":

        async def refuse(_pid: str, _name: str) -> bool:
            return False

        return refuse
    return lambda pid, who: ask_in_terminal(who, timeout_s=prompt_timeout_s)


async def ask_in_terminal(name: str, *, timeout_s: float) -> bool:
    """Print a prompt line and read y/n from stdin; no answer within ``timeout_s`` is a no."""
    print(f"\n{name!r} asks to control this screen. Allow? [y/N] ", end="", flush=True)
    loop = asyncio.get_running_loop()
    try:
        line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), timeout_s)
    except TimeoutError:
        print("(no answer: refused)", flush=True)
        return False
    return line.strip().lower() in ("y", "yes")


@dataclass(frozen=True)
class AgentOptions:
    """What ``keel pairux host`` was asked for."""

    server: str
    """The server's base URL (``http://host:port``); the API is under ``/pairux``."""
    name: str
    room_code: str | None = None
    """Join this room by code (and share once the host hands it over); None: create one."""
    display: str | None = None
    """The X display to share and inject into (``:N``); None: ``$DISPLAY``."""
    fps: int | None = None
    """Cap on frames per second at every quality rung."""
    start_rung: int = 2
    max_rung: int | None = None
    """The ladder's top rung (an index into ``ladder.LADDER``); None: all of it."""
    codec: Codec = "vp8"
    account_key: str | None = field(default=None, repr=False)
    data_dir: Path | None = None
    """Where the signed audit log goes (``pairux-audit/``); None: no audit log."""
    max_controllers: int = 3
    grant_minutes: int | None = None
    """Grants last this long and are re-confirmed before they lapse; None: until revoked."""


@dataclass(eq=False)
class _Peer:
    id: str
    name: str
    pc: RTCPeerConnection
    link: rtc.ViewerLink
    channel: RTCDataChannel
    control: ControlChannel | None = None
    answered: bool = False
    early_ice: list[dict[str, Any] | None] = field(default_factory=list)


class HostAgent:
    """One host session. :meth:`run` until ``stop`` is set; the rest is for the CLI and tests."""

    def __init__(
        self,
        options: AgentOptions,
        *,
        decide: Decide,
        source: capture.FrameSource | None = None,
        rect: CaptureRect | None = None,
        injector: Injector | None = None,
        clock: Clock | None = None,
        on_room: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.options = options
        self.decide = decide
        self.clock = clock or SystemClock()
        self.source = source or capture.ScreenSource(options.display)
        self.rect = rect
        self.injector = injector
        self.on_room = on_room
        self.fanout = Fanout()
        rungs = ladder.LADDER[: options.max_rung + 1 if options.max_rung is not None else None]
        if options.fps is not None:
            cap = options.fps
            rungs = tuple(dataclasses.replace(r, fps=min(r.fps, cap)) for r in rungs)
        self.media = MediaPipeline(
            self.source,
            self.fanout,
            codec=options.codec,
            rungs=rungs,
            start_rung=options.start_rung,
        )
        self.control: runtime.HostControl | None = None
        self.peers: dict[str, _Peer] = {}
        self.members: dict[str, str] = {}  # connected participant id -> display name
        self.me: str | None = None
        self.room: dict[str, Any] = {}
        self.is_host = False
        self.ice_servers: tuple[rtc.IceServer, ...] = ()
        self.ready = asyncio.Event()
        """Set once the welcome arrived and the control side runs."""
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._granted: set[str] = set()
        self._asked_over_ws: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- the host's own actions ------------------------------------------------------------

    def revoke(self, participant_id: str) -> None:
        """Take control back from one participant (at once: the arbiter stops injecting)."""
        if self.control is not None:
            self.control.grants.revoke(participant_id)

    def emergency_revoke(self) -> None:
        """Every grant ends and everything held remotely is released (SIGUSR1 in the CLI)."""
        if self.control is not None:
            self.control.hub.emergency_revoke()

    # -- the session -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Enter the room, share until ``stop`` is set or the room ends, then leave."""
        headers = {}
        if self.options.account_key:
            headers["Authorization"] = f"Bearer {self.options.account_key}"
        async with httpx.AsyncClient(
            base_url=self.options.server, headers=headers, timeout=15.0
        ) as http:
            admission = await self._enter(http)
        self.room = admission
        self.me = admission["participant"]["id"]
        if self.on_room is not None:
            self.on_room(admission)
        ws_url = _ws_url(self.options.server, admission["ws"])
        # Media and control run for the whole session; the signaling socket may drop (a server
        # restart closes it with 1012) and is opened again with the same token: peers already
        # connected keep streaming meanwhile, since their media never passes the server.
        started: list[asyncio.Task[Any]] = []
        try:
            delay = RECONNECT_FIRST_SECONDS
            while not stop.is_set():
                outcome = await self._signal_once(ws_url, admission["token"], stop, started)
                if outcome in ("stopped", "ended"):
                    break
                if outcome == "refused":  # a token the server no longer takes stays refused
                    if not self.ready.is_set():
                        raise RuntimeError("the server refused the connection")
                    break
                if outcome == "connected":
                    delay = RECONNECT_FIRST_SECONDS  # it had worked: start over
                log.warning("pairux_signaling_lost", retry_in=delay, outcome=outcome)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        finally:
            await self._close_all()
            self.media.stop()
            for task in started:
                task.cancel()
            await asyncio.gather(*started, return_exceptions=True)
            self.media.close()
            if self.control is not None:
                self.control.close()

    async def _signal_once(
        self, ws_url: str, token: str, stop: asyncio.Event, started: list[asyncio.Task[Any]]
    ) -> Literal["stopped", "ended", "refused", "lost", "connected"]:
        """One signaling connection, until it drops ("lost", or "connected" if it had worked),
        the room ends, the server refuses the token, or ``stop`` is set."""
        try:
            async with connect(ws_url, max_size=2**20, open_timeout=15) as ws:
                await ws.send(json.dumps({"type": "hello", "token": token}))
                welcome = json.loads(await ws.recv())
                if welcome.get("type") != "welcome":
                    log.warning("pairux_signaling_refused", code=welcome.get("code"))
                    return "refused"
                if self.control is None:  # the first connection starts the session
                    self._start_control(welcome)
                    assert self.control is not None
                    started.append(self._spawn(self.media.run()))
                    started.append(self._spawn(self.media.adapt(self._links)))
                    started.append(self._spawn(self.control.run()))
                writer = self._spawn(self._write(ws))
                self._welcome(welcome)
                self.ready.set()
                reader = self._spawn(self._read(ws))
                stopping = self._spawn(stop.wait())
                try:
                    await asyncio.wait({reader, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if stopping.done():
                        with contextlib.suppress(Exception):
                            await ws.send(json.dumps({"type": "leave"}))
                        return "stopped"
                    return "ended" if reader.result() == "ended" else "connected"
                finally:
                    for task in (reader, stopping, writer):
                        task.cancel()
                    await asyncio.gather(reader, stopping, writer, return_exceptions=True)
        except (OSError, ConnectionClosed, TimeoutError, json.JSONDecodeError) as exc:
            log.warning("pairux_signaling_failed", error=type(exc).__name__)
            return "lost"

    def _links(self) -> list[rtc.ViewerLink]:
        return [p.link for p in self.peers.values()]

    async def _enter(self, http: httpx.AsyncClient) -> dict[str, Any]:
        if self.options.room_code is None:
            reply = await http.post("/pairux/api/rooms", json={"display_name": self.options.name})
        else:
            reply = await http.post(
                "/pairux/api/rooms/join",
                json={"display_name": self.options.name, "code": self.options.room_code},
            )
        if reply.status_code != 201:
            problem = reply.json() if reply.headers.get("content-type", "").endswith("json") else {}
            raise RuntimeError(
                f"the server refused the room ({reply.status_code}): "
                f"{problem.get('detail') or problem.get('title') or reply.text[:200]}"
            )
        body: dict[str, Any] = reply.json()
        return body

    def _start_control(self, welcome: dict[str, Any]) -> None:
        rect = self.rect or _screen_rect(self.options.display)
        self.control = runtime.build(
            clock=self.clock,
            rect=rect,
            session_id=welcome["room"]["id"],
            display=self.options.display,
            data_dir=self.options.data_dir,
            max_controllers=self.options.max_controllers,
            injector=self.injector,
        )
        if not self.control.start():
            log.warning("pairux_view_only", reason="input cannot be injected on this display")
        self.control.grants.subscribe(self._on_grant_event)

    def _welcome(self, welcome: dict[str, Any]) -> None:
        self.ice_servers = _ice_servers(welcome.get("iceServers", []))
        self.is_host = welcome["you"]["role"] == "host"
        for p in welcome.get("participants", []):
            if p.get("connected"):
                self.members[p["id"]] = p["name"]
        if self.is_host:
            for pid, name in list(self.members.items()):
                if pid not in self.peers:  # after a reconnect, live peers keep streaming
                    self._spawn(self._offer(pid, name))

    # -- signaling -------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        self._outbox.put_nowait(message)

    async def _write(self, ws: ClientConnection) -> None:
        while True:
            message = await self._outbox.get()
            await ws.send(json.dumps(message, separators=(",", ":")))

    async def _read(self, ws: ClientConnection) -> str:
        """Handle the server's messages; "ended" when the room ended, "lost" when the socket
        closed under us."""
        try:
            async for frame in ws:
                message = json.loads(frame)
                if isinstance(message, dict) and not await self._on_message(message):
                    return "ended"
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == CLOSE_ROOM_ENDED:
                return "ended"
            log.warning("pairux_signaling_closed", code=exc.rcvd.code if exc.rcvd else None)
        return "lost"

    async def _on_message(self, m: dict[str, Any]) -> bool:
        kind, sender = m.get("type"), m.get("from")
        if kind == "ping":
            self._send({"type": "pong"})
        elif kind == "presence":
            pid, event = m["id"], m["event"]
            if pid == self.me:
                return True
            if event in ("join", "back"):
                self.members[pid] = m["name"]
                if self.is_host:
                    await self._offer(pid, m["name"])
            else:  # away or leave
                self.members.pop(pid, None)
                await self._close_peer(pid)
        elif kind == "answer" and isinstance(sender, str):
            await self._answer(sender, m["sdp"])
        elif kind == "ice" and isinstance(sender, str):
            await self._ice(sender, m.get("candidate"))
        elif kind == "restart" and isinstance(sender, str) and sender in self.members:
            await self._offer(sender, self.members[sender])
        elif kind == "control-request" and isinstance(sender, str):
            self._asked_over_ws.add(sender)
            if self.control is not None and sender in self.peers:
                self.control.grants.request(sender)
        elif kind == "host":
            became = m.get("participant") == self.me
            if became and not self.is_host:
                self.is_host = True
                for pid, name in list(self.members.items()):
                    await self._offer(pid, name)
            elif not became and self.is_host:
                self.is_host = False
                await self._close_all()
        elif kind == "ice-servers":
            self.ice_servers = _ice_servers(m.get("iceServers", []))
        elif kind == "room-ended":
            return False
        elif kind == "error":
            log.info("pairux_signaling_error", code=m.get("code"))
        return True

    # -- peers -----------------------------------------------------------------------------

    async def _offer(self, pid: str, name: str) -> None:
        """A fresh peer connection to ``pid`` (replacing any older one) and its offer."""
        await self._close_peer(pid)
        pc = rtc.peer_connection(self.ice_servers)
        track = self.fanout.add_viewer(pid)
        link = rtc.ViewerLink(pc, track, self.options.codec, self.fanout.gate)
        channel = pc.createDataChannel("control", ordered=True)
        peer = _Peer(pid, name, pc, link, channel)
        self.peers[pid] = peer

        def opened() -> None:
            if peer.control is None and self.control is not None and self.peers.get(pid) is peer:
                peer.control = self.control.hub.open(pid, name, lambda text: _send(channel, text))

        channel.on("open", opened)
        channel.on("message", lambda data: peer.control.receive(data) if peer.control else None)

        @pc.on("connectionstatechange")
        async def changed() -> None:
            log.info("pairux_peer_state", participant=pid, state=pc.connectionState)
            if pc.connectionState == "connected" and channel.readyState == "open":
                opened()
            if pc.connectionState == "failed" and self.peers.get(pid) is peer:
                await self._close_peer(pid)

        await pc.setLocalDescription(await pc.createOffer())
        # aiortc gathers every candidate before setLocalDescription returns: the SDP has them.
        self._send({"type": "offer", "to": pid, "sdp": pc.localDescription.sdp})

    async def _answer(self, pid: str, sdp: str) -> None:
        peer = self.peers.get(pid)
        if peer is None or peer.answered:
            return
        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        peer.answered = True
        for candidate in peer.early_ice:
            await self._ice(pid, candidate)
        peer.early_ice.clear()

    async def _ice(self, pid: str, candidate: dict[str, Any] | None) -> None:
        peer = self.peers.get(pid)
        if peer is None or candidate is None:
            return
        if not peer.answered:
            peer.early_ice.append(candidate)
            return
        text = str(candidate.get("candidate", ""))
        if not text or ".local " in text:  # end of candidates, or an mDNS name aiortc cannot use
            return
        try:
            parsed = candidate_from_sdp(text.removeprefix("candidate:"))
        except (ValueError, IndexError):
            return
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        with contextlib.suppress(Exception):  # a candidate aiortc cannot use is just skipped
            await peer.pc.addIceCandidate(parsed)

    async def _close_peer(self, pid: str) -> None:
        peer = self.peers.pop(pid, None)
        if peer is None:
            return
        if self.control is not None:
            self.control.hub.close(pid)
        self._granted.discard(pid)
        self.fanout.remove_viewer(pid)
        with contextlib.suppress(Exception):
            await peer.pc.close()

    async def _close_all(self) -> None:
        for pid in list(self.peers):
            await self._close_peer(pid)

    # -- grants ----------------------------------------------------------------------------

    def _on_grant_event(self, event: GrantEvent) -> None:
        pid = event.participant_id
        if event.kind == "requested":
            self._spawn(self._ask(pid))
        elif event.kind == "granted":
            self._granted.add(pid)
            self._send({"type": "control-grant", "participant": pid})
        elif event.kind in ("revoked", "released"):
            if pid in self._granted:
                self._granted.discard(pid)
                self._send({"type": "control-revoke", "participant": pid})
        elif event.kind == "reconfirm":
            self._spawn(self._reconfirm(pid))
        elif event.kind == "denied" and pid in self._asked_over_ws:
            self._send({"type": "control-revoke", "participant": pid})  # the server's "denied"
        if event.kind != "requested":
            self._asked_over_ws.discard(pid)

    async def _ask(self, pid: str) -> None:
        name = self.members.get(pid) or (self.peers[pid].name if pid in self.peers else "")
        allowed = await self.decide(pid, name)
        control = self.control
        if control is None:
            return
        held = control.grants.participant(pid)
        if held is None or held.state is not ControlState.REQUESTED:
            return  # withdrawn, expired or gone meanwhile
        if not allowed:
            control.grants.deny(pid)
            return
        with contextlib.suppress(GrantRefused):
            control.grants.grant(pid, duration=self._grant_duration())

    def _grant_duration(self) -> timedelta | None:
        minutes = self.options.grant_minutes
        return None if minutes is None else timedelta(minutes=minutes)

    async def _reconfirm(self, pid: str) -> None:
        """A timed grant is about to lapse: the host decides again (the same policy as the
        request: a prompt, or all/none); no answer lets it lapse."""
        name = self.members.get(pid) or (self.peers[pid].name if pid in self.peers else "")
        keep = await self.decide(pid, name)
        duration = self._grant_duration()
        if keep and duration is not None and self.control is not None:
            with contextlib.suppress(GrantRefused):
                self.control.grants.extend(pid, duration)

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _send(channel: RTCDataChannel, text: str) -> None:
    if channel.readyState == "open":
        channel.send(text)


def _ws_url(server: str, path: str) -> str:
    base = server.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return base + path


def _ice_servers(raw: list[dict[str, Any]]) -> tuple[rtc.IceServer, ...]:
    servers = []
    for entry in raw:
        urls = entry.get("urls", [])
        urls = [urls] if isinstance(urls, str) else list(urls)
        servers.append(rtc.IceServer(tuple(urls), entry.get("username"), entry.get("credential")))
    return tuple(servers)


def _screen_rect(display: str | None) -> CaptureRect:
    """The shared monitor's rectangle (the one :class:`capture.ScreenSource` grabs)."""
    import mss

    with mss.MSS(display=display) as screen:
        monitor = screen.monitors[1]
        return CaptureRect(monitor["left"], monitor["top"], monitor["width"], monitor["height"])
