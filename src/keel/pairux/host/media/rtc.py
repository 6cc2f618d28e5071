"""The narrow, typed seam to aiortc: a peer connection that never reaches Google's STUN server,
a viewer's sender pinned to our codec, and what its RTCP says (keyframe requests, REMB, RTT and
loss) turned into our own values.

aiortc answers a PLI/FIR by flagging its own encoder, which the packet path never uses, and feeds
REMB to that encoder's bitrate clamp; neither reaches us through its public API. ``ViewerLink``
therefore wraps the sender's two RTCP hooks on the instance (``_handle_rtcp_packet`` to read REMB,
``_send_keyframe`` to route PLI/FIR to the shared ``KeyframeGate``). Both are checked at import so
an aiortc upgrade that renames them fails loudly, not silently.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
)
from aiortc.rtp import RTCP_PSFB_APP, AnyRtcpPacket, RtcpPsfbPacket, unpack_remb_fci
from aiortc.stats import RTCOutboundRtpStreamStats, RTCRemoteInboundRtpStreamStats

from keel.pairux.host.media.encoder import MIME_TYPES, Codec
from keel.pairux.host.media.fanout import KeyframeGate, ViewerTrack
from keel.pairux.host.media.ladder import Conditions

CONGESTED = 0.85  # REMB below this share of our send rate: the receiver says slow down

for _hook in ("_handle_rtcp_packet", "_send_keyframe"):
    if not callable(getattr(RTCRtpSender, _hook, None)):  # pragma: no cover - aiortc upgrade
        raise ImportError(f"aiortc.RTCRtpSender.{_hook} is gone: review keel.pairux.host.media.rtc")


@dataclass(frozen=True)
class IceServer:
    """A STUN/TURN server the room hands out (TURN with time-limited credentials)."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


def peer_connection(ice_servers: Sequence[IceServer] = ()) -> RTCPeerConnection:
    """A peer connection using exactly ``ice_servers`` (none: host candidates only). aiortc's
    default configuration would query stun.l.google.com; this never does."""
    servers = [
        RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
        for s in ice_servers
    ]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))


class ViewerLink:
    """One viewer's sender on the host: its track, codec pin and RTCP taps."""

    def __init__(
        self, pc: RTCPeerConnection, track: ViewerTrack, codec: Codec, gate: KeyframeGate
    ) -> None:
        self.track = track
        self.gate = gate
        self.remb_bps: int | None = None  # the receiver's latest estimate, raw
        self.keyframe_requests = 0
        self._sent: tuple[int, float] | None = None  # (bytes sent, clock) at the last report
        transceiver = pc.addTransceiver(track, direction="sendonly")
        wanted = {MIME_TYPES[codec].lower(), "video/rtx"}
        codecs = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in wanted])
        self.sender: RTCRtpSender = transceiver.sender
        original: Callable[[AnyRtcpPacket], Awaitable[None]] = self.sender._handle_rtcp_packet

        async def handle_rtcp(packet: AnyRtcpPacket) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    pass
                else:
                    if self.sender._ssrc in ssrcs:
                        self.remb_bps = bitrate
            await original(packet)

        def keyframe_requested() -> None:
            self.keyframe_requests += 1
            self.gate.request("pli")

        # Instance attributes shadow the methods aiortc's transport calls for this sender.
        self.sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]
        self.sender._send_keyframe = keyframe_requested  # type: ignore[method-assign]

    async def conditions(self) -> Conditions:
        """This viewer's latest receiver report: RTT and loss from RTCP RR; a bitrate limit only
        when its REMB is below what we actually send. A delay-based estimate grows with the
        incoming rate (libwebrtc and aiortc cap it near 1.5x of it), so REMB under a rung's
        nominal bitrate on a quiet screen means "you send little", not "the link is full"."""
        rtt_ms, loss, sent_bytes = 0.0, 0.0, 0
        report = await self.sender.getStats()
        for stats in report.values():
            if isinstance(stats, RTCRemoteInboundRtpStreamStats):
                if stats.roundTripTime is not None:
                    rtt_ms = float(stats.roundTripTime) * 1000
                loss = float(stats.fractionLost) / 256  # RTCP's fraction lost is 8-bit fixed
            elif isinstance(stats, RTCOutboundRtpStreamStats):
                sent_bytes = stats.bytesSent
        now = time.monotonic()
        limit: int | None = None
        if self._sent is not None and self.remb_bps is not None and now > self._sent[1]:
            sent_bps = 8 * (sent_bytes - self._sent[0]) / (now - self._sent[1])
            if self.remb_bps < CONGESTED * sent_bps:
                limit = self.remb_bps
        self._sent = (sent_bytes, now)
        return Conditions(rtt_ms=rtt_ms, loss=loss, available_bps=limit)
