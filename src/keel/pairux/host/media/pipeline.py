"""The host's media loop: grab a frame on the clock, encode it once, fan the packets out, and
move along the quality ladder as receiver reports come in.

Grabbing and encoding run on one worker thread (mss's X connection lives there, and libvpx must
not block the event loop that carries every viewer's RTP); publishing to the viewers' queues
happens back on the loop. A tick that comes too late is skipped, not queued, so the stream stays
live when the machine cannot keep up (``frames_skipped`` says how often).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import Counter, Gauge

from keel.pairux.host.media import ladder
from keel.pairux.host.media.capture import FrameSource
from keel.pairux.host.media.encoder import (
    TIME_BASE,
    Codec,
    EncodedPacket,
    EncoderSettings,
    VideoEncoder,
)
from keel.pairux.host.media.fanout import Fanout
from keel.pairux.host.media.rtc import ViewerLink

FRAMES_CAPTURED = Counter("pairux_frames_captured_total", "Frames the host grabbed")
FRAMES_SKIPPED = Counter("pairux_frames_skipped_total", "Capture ticks skipped (host too slow)")
RUNG = Gauge("pairux_quality_rung", "Current quality ladder rung (0 = lowest)")
RUNG_CHANGES = Counter("pairux_quality_rung_changes_total", "Ladder moves", ["direction"])
_LATENCY_WINDOW = 512


def _even(value: float) -> int:
    return max(2, int(value) & ~1)


class MediaPipeline:
    """Capture → one encoder → fan-out, paced at the current rung's frame rate."""

    def __init__(
        self,
        source: FrameSource,
        fanout: Fanout,
        *,
        codec: Codec = "vp8",
        rungs: Sequence[ladder.Rung] = ladder.LADDER,
        start_rung: int = 2,
        threads: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.fanout = fanout
        self.codec: Codec = codec
        self.rungs = tuple(rungs)
        self.state = ladder.LadderState(min(start_rung, len(self.rungs) - 1))
        self.threads = threads
        self.encoder: VideoEncoder | None = None
        self.frames_captured = 0
        self.frames_skipped = 0
        self.frames_idle = 0  # ticks with no viewer: nothing grabbed or encoded
        self.capture_times: dict[int, float] = {}  # frame index -> clock() at grab (oracle)
        self._clock = clock
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pairux-media")
        self._stopping = asyncio.Event()
        self._last_pts = -1
        RUNG.set(self.state.rung)

    @property
    def rung(self) -> ladder.Rung:
        return self.rungs[self.state.rung]

    @property
    def frames_encoded(self) -> int:
        return 0 if self.encoder is None else self.encoder.frames_encoded

    def report(self, conditions: ladder.Conditions) -> ladder.Rung:
        """Feed one (worst-viewer) receiver report to the ladder; the new rung applies from the
        next frame (a resolution or bitrate change re-opens the encoder: a keyframe)."""
        before = self.state.rung
        self.state = ladder.decide(self.state, conditions, ladder=self.rungs)
        if self.state.rung != before:
            RUNG_CHANGES.labels("up" if self.state.rung > before else "down").inc()
            RUNG.set(self.state.rung)
        return self.rung

    async def adapt(
        self, links: Callable[[], Sequence[ViewerLink]], interval_s: float = 1.0
    ) -> None:
        """Poll every viewer's receiver report each ``interval_s`` and apply the worst; runs
        until ``stop()``."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_s)
            current = links()
            if current and not self._stopping.is_set():
                reports = await asyncio.gather(*(link.conditions() for link in current))
                self.report(ladder.worst(reports))

    async def run(self) -> None:
        """Capture, encode and publish until ``stop()``; the source is closed on the way out."""
        loop = asyncio.get_running_loop()
        start = self._clock()
        next_tick = start
        index = 0
        try:
            while not self._stopping.is_set():
                delay = next_tick - self._clock()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), delay)
                    if self._stopping.is_set():
                        break
                rung = self.rung
                if not self.fanout.viewers():
                    # Nobody watches: no grab, no encode (the host's CPU is its own). The next
                    # viewer's join asks for a keyframe, so the first frame it gets decodes.
                    self.frames_idle += 1
                    next_tick = max(next_tick + 1 / rung.fps, self._clock())
                    continue
                keyframe = self.fanout.gate.take()
                packets = await loop.run_in_executor(
                    self._worker, self._grab_and_encode, index, start, rung, keyframe
                )
                if any(p.is_keyframe for p in packets) and not keyframe:
                    self.fanout.gate.keyframe_sent()  # encoder opened or periodic keyframe
                self.fanout.publish(packets)
                index += 1
                next_tick += 1 / rung.fps
                now = self._clock()
                if next_tick < now:  # behind: drop the ticks we missed instead of bursting
                    missed = int((now - next_tick) * rung.fps) + 1
                    self.frames_skipped += missed
                    FRAMES_SKIPPED.inc(missed)
                    next_tick += missed / rung.fps
        finally:
            await loop.run_in_executor(self._worker, self.source.close)

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        self.stop()
        self._worker.shutdown(wait=False, cancel_futures=True)

    def _grab_and_encode(
        self, index: int, start: float, rung: ladder.Rung, keyframe: bool
    ) -> list[EncodedPacket]:
        now = self._clock()
        frame = self.source.grab(index)
        settings = EncoderSettings(
            width=_even(frame.width * rung.scale),
            height=_even(frame.height * rung.scale),
            fps=rung.fps,
            bitrate_bps=rung.bitrate_bps,
            codec=self.codec,
            threads=self.threads,
        )
        pts = max(round((now - start) / TIME_BASE), self._last_pts + 1)
        self._last_pts = pts
        frame.pts, frame.time_base = pts, TIME_BASE
        self.frames_captured += 1
        FRAMES_CAPTURED.inc()
        self.capture_times[index] = now
        self.capture_times.pop(index - _LATENCY_WINDOW, None)
        if self.encoder is None:
            self.encoder = VideoEncoder(settings)
        else:
            self.encoder.configure(settings)
        return self.encoder.encode(frame, keyframe=keyframe)
