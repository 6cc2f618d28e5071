"""Hand every encoded packet to every viewer, each through a bounded queue of its own.

Each viewer gets a ``ViewerTrack``, an aiortc ``MediaStreamTrack`` whose ``recv()`` returns
``av.Packet``s, so its ``RTCRtpSender`` packetizes and never encodes. A viewer whose sender falls
behind (a slow link, a stalled task) overflows its queue: the queue is emptied, the viewer skips
to the next keyframe and asks for one, and nobody else waits or buffers for it.

Keyframes are shared: one encoder serves everyone, so a viewer joining, a queue overflowing or
any viewer's PLI/FIR asks the ``KeyframeGate``, which grants at most one forced keyframe per
``min_interval_s`` however many ask (the cost of encoding once: one viewer's loss is a keyframe
for all, rate-limited so a lossy viewer cannot turn the stream into keyframes).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from prometheus_client import Counter, Gauge

from keel.pairux.host.media.encoder import EncodedPacket

PACKETS_DROPPED = Counter(
    "pairux_viewer_packets_dropped_total", "Packets a slow viewer skipped", ["reason"]
)
KEYFRAME_REQUESTS = Counter(
    "pairux_keyframe_requests_total", "Keyframe requests (granted or merged)", ["reason"]
)
VIEWERS = Gauge("pairux_fanout_viewers", "Viewers the host fans packets out to")


class KeyframeGate:
    """Merges keyframe requests: ``request`` marks one pending, ``take`` grants it at most once
    per ``min_interval_s`` (a request inside the interval waits, it is not lost)."""

    def __init__(
        self, min_interval_s: float = 0.5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._pending = False
        self._last: float | None = None
        self.granted = 0

    def request(self, reason: str) -> None:
        """Ask for a keyframe soon (``reason``: join, overflow, pli, ...; a metric label)."""
        KEYFRAME_REQUESTS.labels(reason).inc()
        self._pending = True

    def take(self) -> bool:
        """True if the frame about to be encoded must be a keyframe (consumes the request)."""
        if not self._pending:
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self.min_interval_s:
            return False
        self._pending = False
        self._last = now
        self.granted += 1
        return True

    def keyframe_sent(self) -> None:
        """The encoder made a keyframe on its own (opened, periodic): it answers requests too."""
        self._pending = False
        self._last = self._clock()


class ViewerTrack(MediaStreamTrack):
    """One viewer's video: a bounded queue of shared packets, read by its aiortc sender."""

    kind = "video"

    def __init__(self, name: str, gate: KeyframeGate, max_packets: int = 8) -> None:
        super().__init__()
        self.name = name
        self._gate = gate
        self._queue: deque[EncodedPacket] = deque()
        self._max = max_packets
        self._ready = asyncio.Event()
        self._need_keyframe = True  # a viewer starts at a keyframe
        self.packets_in = 0
        self.packets_out = 0
        self.dropped = 0
        self.overflows = 0
        self.high_water = 0
        self.first_packet_keyframe: bool | None = None

    def offer(self, packet: EncodedPacket) -> None:
        """Queue ``packet`` for this viewer without ever waiting; called on the event loop."""
        if self.readyState != "live":
            return
        if self._need_keyframe:
            if not packet.is_keyframe:
                self.dropped += 1
                PACKETS_DROPPED.labels("await_keyframe").inc()
                return
            self._need_keyframe = False
        if len(self._queue) >= self._max:
            # Too far behind: everything queued is stale, and a frame that depends on a dropped
            # one would decode as garbage, so restart this viewer at the next keyframe.
            self.overflows += 1
            self.dropped += len(self._queue) + 1
            PACKETS_DROPPED.labels("overflow").inc(len(self._queue) + 1)
            self._queue.clear()
            self._need_keyframe = not packet.is_keyframe
            if self._need_keyframe:
                self._gate.request("overflow")
                return
        self._queue.append(packet)
        self.packets_in += 1
        self.high_water = max(self.high_water, len(self._queue))
        self._ready.set()

    async def recv(self) -> EncodedPacket:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        packet = self._queue.popleft()
        self.packets_out += 1
        if self.first_packet_keyframe is None:
            self.first_packet_keyframe = packet.is_keyframe
        return packet

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        self._ready.set()  # wake a waiting recv() so it raises


class Fanout:
    """The set of viewer tracks; ``publish`` gives each the same packets, in order."""

    def __init__(self, gate: KeyframeGate | None = None, max_packets: int = 8) -> None:
        self.gate = gate or KeyframeGate()
        self.max_packets = max_packets
        self._viewers: dict[str, ViewerTrack] = {}

    def add_viewer(self, name: str) -> ViewerTrack:
        """A new track for viewer ``name`` (replacing an older one); forces a keyframe soon."""
        self.remove_viewer(name)
        track = ViewerTrack(name, self.gate, self.max_packets)
        self._viewers[name] = track
        VIEWERS.set(len(self._viewers))
        self.gate.request("join")
        return track

    def remove_viewer(self, name: str) -> None:
        track = self._viewers.pop(name, None)
        if track is not None:
            track.stop()
            VIEWERS.set(len(self._viewers))

    def viewers(self) -> list[ViewerTrack]:
        return list(self._viewers.values())

    def publish(self, packets: list[EncodedPacket]) -> None:
        """Hand each packet to every live viewer (a stopped track is forgotten)."""
        for name, track in list(self._viewers.items()):
            if track.readyState != "live":
                del self._viewers[name]
                VIEWERS.set(len(self._viewers))
                continue
            for packet in packets:
                track.offer(packet)
