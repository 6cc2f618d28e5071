"""Real aiortc peers in one process: a host peer connection per viewer and a receiving peer
connection that decodes what arrives and reads the synthetic pattern's frame numbers."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from dataclasses import dataclass, field

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from keel.pairux.host.media import capture

_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ (\w+)", re.MULTILINE)


@dataclass
class Received:
    """What one viewer decoded: (frame number or None, clock time, width) per frame."""

    name: str
    frames: list[tuple[int | None, float, int]] = field(default_factory=list)
    worst_colour_error: int = 0
    read_pixels: bool = True

    def numbers(self) -> list[int]:
        return [n for n, _, _ in self.frames if n is not None]

    def unreadable(self) -> int:
        return sum(1 for n, _, _ in self.frames if n is None)

    def decoded_between(self, start: float, end: float) -> int:
        return sum(1 for _, t, _ in self.frames if start <= t < end)


def receiving_peer() -> RTCPeerConnection:
    """A viewer's peer connection with no ICE servers at all (aiortc's default is Google's)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def consume(track: MediaStreamTrack, received: Received) -> None:
    """Decode frames from ``track`` until it ends, recording what the pattern says."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        now = time.monotonic()
        if not received.read_pixels:
            received.frames.append((0, now, getattr(frame, "width", 0)))
            continue
        img = frame.to_ndarray(format="rgb24")  # type: ignore[union-attr]
        number = capture.read_counter(img)
        if number is not None:
            received.worst_colour_error = max(
                received.worst_colour_error, capture.colour_error(img)
            )
        received.frames.append((number, now, img.shape[1]))


async def connect(
    host: RTCPeerConnection,
    viewer: RTCPeerConnection,
    received: Received,
    tasks: list[asyncio.Task[None]],
) -> list[tuple[str, str]]:
    """Offer from the host (it always offers), answer from the viewer; the viewer's track
    feeds ``received``. Returns every candidate (address, type) either side put in its SDP."""

    @viewer.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        tasks.append(asyncio.ensure_future(consume(track, received)))

    await host.setLocalDescription(await host.createOffer())
    await viewer.setRemoteDescription(host.localDescription)
    await viewer.setLocalDescription(await viewer.createAnswer())
    await host.setRemoteDescription(viewer.localDescription)
    sdp = host.localDescription.sdp + viewer.localDescription.sdp
    return _CANDIDATE.findall(sdp)


def all_loopback(candidates: list[tuple[str, str]]) -> bool:
    return bool(candidates) and all(ipaddress.ip_address(a).is_loopback for a, _ in candidates)
