"""One video encoder for every viewer: frames in, ``av.Packet``s out.

aiortc encodes once per peer and caps VP8 at 1.5 Mbps (``codecs/vpx.py``). We encode here, once,
with our own rate settings, and hand the packets to aiortc, whose sender only packetizes a packet
(``RTCRtpSender`` calls ``encoder.pack`` for anything that is not a ``Frame``; ``pack`` reads the
packet's bytes, ``pts`` and ``time_base`` and nothing else, so one packet serves every viewer).

Codec: VP8 by default. Every WebRTC browser decodes it, aiortc offers it first, and its packetizer
takes a whole VP8 frame. H.264 (libx264, which PyAV's wheel carries) is available as ``h264``:
aiortc packetizes Annex-B NAL units and libx264 repeats SPS/PPS before each IDR, so a late viewer
can start at any keyframe; it is the cheaper encoder at 720p, but the packets only play where
the viewer negotiated H.264 (``rtc.add_viewer`` pins the codec), x264 is GPL, and some browsers
ship without it. Any settings change re-creates the codec, so the next packet is a keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Literal, TypeAlias

import av
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType
from prometheus_client import Counter

Codec = Literal["vp8", "h264"]
EncodedPacket: TypeAlias = "av.Packet[Any]"  # what the encoder emits (no demuxer stream)
TIME_BASE = Fraction(1, 90000)  # RTP's video clock; frames and packets carry pts in it
MIME_TYPES: dict[Codec, str] = {"vp8": "video/VP8", "h264": "video/H264"}

FRAMES_ENCODED = Counter(
    "pairux_frames_encoded_total", "Frames the host encoded (once for all viewers)", ["codec"]
)
KEYFRAMES_ENCODED = Counter(
    "pairux_keyframes_encoded_total", "Keyframes the host encoded", ["codec"]
)
ENCODER_OPENS = Counter(
    "pairux_encoder_opens_total", "Encoders opened (start, resolution or bitrate change)", ["codec"]
)


@dataclass(frozen=True)
class EncoderSettings:
    """What the encoder produces: output size in pixels (even), frame rate and target bitrate."""

    width: int
    height: int
    fps: int
    bitrate_bps: int
    codec: Codec = "vp8"
    threads: int = 1
    keyframe_interval_s: float = 10.0  # a periodic keyframe even if nobody asks (lost PLIs)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise ValueError(f"encoder size must be even, got {self.width}x{self.height}")
        if not 1 <= self.fps <= 60 or self.bitrate_bps < 50_000:
            raise ValueError("fps must be 1-60 and the bitrate at least 50 kbps")

    def scaled(self, width: int, height: int) -> EncoderSettings:
        return replace(self, width=width, height=height)


class VideoEncoder:
    """A PyAV encoder that counts its work. Not thread-safe: one caller (the pipeline's worker)."""

    def __init__(self, settings: EncoderSettings) -> None:
        self.settings = settings
        self._context: VideoCodecContext | None = None
        self.frames_encoded = 0
        self.keyframes_encoded = 0
        self.opens = 0

    def configure(self, settings: EncoderSettings) -> None:
        """Use ``settings`` from the next frame on; any change re-opens the codec (a keyframe)."""
        if settings != self.settings:
            self.settings = settings
            self.close()

    def encode(self, frame: av.VideoFrame, keyframe: bool = False) -> list[EncodedPacket]:
        """Encode ``frame`` (pts in 1/90000) into packets with pts, time_base and keyframe flag
        set; scales and converts to yuv420p as needed. Raises ``av.FFmpegError`` on failure."""
        settings = self.settings
        if (frame.width, frame.height) != (settings.width, settings.height) or (
            frame.format.name != "yuv420p"
        ):
            pts, time_base = frame.pts, frame.time_base
            frame = frame.reformat(width=settings.width, height=settings.height, format="yuv420p")
            frame.pts, frame.time_base = pts, time_base
        if self._context is None:
            self._context = self._open(settings)
            keyframe = True
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        packets = list(self._context.encode(frame))
        for packet in packets:
            packet.time_base = TIME_BASE
            if packet.is_keyframe:
                self.keyframes_encoded += 1
                KEYFRAMES_ENCODED.labels(settings.codec).inc()
        self.frames_encoded += 1
        FRAMES_ENCODED.labels(settings.codec).inc()
        return packets

    def close(self) -> None:
        self._context = None

    def _open(self, settings: EncoderSettings) -> VideoCodecContext:
        name = "libvpx" if settings.codec == "vp8" else "libx264"
        context = av.CodecContext.create(name, "w")
        assert isinstance(context, VideoCodecContext)
        context.width = settings.width
        context.height = settings.height
        context.pix_fmt = "yuv420p"
        context.time_base = TIME_BASE
        context.framerate = Fraction(settings.fps, 1)
        context.bit_rate = settings.bitrate_bps
        context.gop_size = max(1, round(settings.keyframe_interval_s * settings.fps))
        context.thread_count = settings.threads
        rate = str(settings.bitrate_bps)
        if settings.codec == "vp8":
            context.qmin, context.qmax = 4, 56
            context.options = {
                "deadline": "realtime",
                "cpu-used": "8",  # fastest realtime speed that still keeps text legible
                "lag-in-frames": "0",  # a packet per frame, now: no look-ahead latency
                "screen-content-mode": "1",
                "static-thresh": "1",
                "noise-sensitivity": "0",
                # CBR around our target (minrate = maxrate), a one-second buffer.
                "minrate": rate,
                "maxrate": rate,
                "bufsize": rate,
                "undershoot-pct": "95",
                "overshoot-pct": "15",
            }
        else:
            context.profile = "Constrained Baseline"
            context.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "level": "31",  # 42e01f, the profile-level-id aiortc offers
                "maxrate": rate,
                "bufsize": rate,
            }
        context.open()
        self.opens += 1
        ENCODER_OPENS.labels(settings.codec).inc()
        return context
