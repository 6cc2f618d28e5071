"""PairUX host: frames/s and host CPU at 720p for 1, 5 and 10 viewers, encode-once fan-out
(keel.pairux.host.media) against aiortc's default path (a plain frame track per peer through
MediaRelay, so every RTCRtpSender runs its own VP8 encoder), in the same run.

Everything runs in a loopback-only network namespace (the script re-executes itself under
``unshare -n``; see tests/pairux/media/netns.py). The host is this process; the viewers are
real aiortc peers in a child process, so "host CPU" is this process's CPU time alone.

    PYTHONPATH=src:. .venv/bin/python bench/pairux_fanout.py              # ~1 min
    PYTHONPATH=src:. .venv/bin/python bench/pairux_fanout.py --viewers 1,5 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import multiprocessing
import multiprocessing.connection
import platform
import sys
import time
from typing import Any

import aiortc.codecs.vpx
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.stats import RTCOutboundRtpStreamStats
from tests.pairux.media import netns, peers

from keel.pairux.host.media import capture, fanout, ladder, pipeline, rtc

WIDTH, HEIGHT, FPS = 1280, 720, 15
# Ours at 720p/15 fps, 1.8 Mbps; aiortc's path starts at 500 kbps and follows REMB up to its
# 1.5 Mbps clamp, so the kbps column shows what each actually sent.
RUNG = ladder.Rung("bench", 1.0, FPS, 1_800_000, max_loss=1.0, max_rtt_ms=float("inf"))


# --- viewers (child process) ------------------------------------------------------------


def viewers_main(conn: multiprocessing.connection.Connection) -> None:
    asyncio.run(_viewers(conn))


async def _viewers(conn: multiprocessing.connection.Connection) -> None:
    loop = asyncio.get_running_loop()
    pcs: dict[str, RTCPeerConnection] = {}
    counts: dict[str, int] = {}
    tasks: list[asyncio.Task[None]] = []

    async def count(name: str, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            counts[name] += 1

    while True:
        message = await loop.run_in_executor(None, conn.recv)
        kind = message[0]
        if kind == "offer":
            _, name, sdp, sdp_type = message
            pc = peers.receiving_peer()
            pcs[name], counts[name] = pc, 0

            def on_track(track: MediaStreamTrack, name: str = name) -> None:
                tasks.append(asyncio.ensure_future(count(name, track)))

            pc.on("track", on_track)
            await pc.setRemoteDescription(RTCSessionDescription(sdp, sdp_type))
            await pc.setLocalDescription(await pc.createAnswer())
            conn.send(("answer", pc.localDescription.sdp, pc.localDescription.type))
        elif kind == "counts":
            conn.send(dict(counts))
        elif kind == "close":
            await asyncio.gather(*(pc.close() for pc in pcs.values()))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            pcs.clear()
            counts.clear()
            tasks.clear()
            conn.send("closed")
        else:
            return


class Viewers:
    """The host's end of the pipe to the viewer process."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=viewers_main, args=(child,), daemon=True)
        self.proc.start()

    async def ask(self, *message: Any) -> Any:
        self.conn.send(message)
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    async def connect(self, name: str, host: RTCPeerConnection) -> None:
        await host.setLocalDescription(await host.createOffer())
        _, sdp, sdp_type = await self.ask("offer", name, host.localDescription.sdp, "offer")
        await host.setRemoteDescription(RTCSessionDescription(sdp, sdp_type))

    def stop(self) -> None:
        self.conn.send(("quit",))
        self.proc.join(10)


# --- host contenders --------------------------------------------------------------------


class PatternTrack(MediaStreamTrack):
    """aiortc's default shape: a track whose recv() paces itself and returns frames."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.source = capture.SyntheticSource(WIDTH, HEIGHT)
        self.index = 0
        self.start: float | None = None

    async def recv(self) -> Any:
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.index / FPS
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        # Converted once here: aiortc's encoders would each reformat the one shared frame from
        # their executor threads at once, and PyAV's per-frame reformatter is not thread-safe
        # (this bench segfaulted at 5 viewers before). It also spares the baseline N conversions.
        frame = self.source.grab(self.index).reformat(format="yuv420p")
        frame.pts = round((time.monotonic() - self.start) * 90000)
        frame.time_base = fractions.Fraction(1, 90000)
        self.index += 1
        return frame


ENCODES = {"n": 0}


def _count_aiortc_encodes() -> None:
    original = aiortc.codecs.vpx.Vp8Encoder.encode

    def counted(self: Any, frame: Any, force_keyframe: bool = False) -> Any:
        ENCODES["n"] += 1
        return original(self, frame, force_keyframe)

    aiortc.codecs.vpx.Vp8Encoder.encode = counted  # type: ignore[method-assign]


async def _bytes_sent(senders: list[RTCRtpSender]) -> int:
    total = 0
    for sender in senders:
        for stats in (await sender.getStats()).values():
            if isinstance(stats, RTCOutboundRtpStreamStats):
                total += stats.bytesSent
    return total


async def measure(contender: str, n: int, viewers: Viewers, seconds: float) -> dict[str, Any]:
    hosts: list[RTCPeerConnection] = []
    senders: list[RTCRtpSender] = []
    runner: asyncio.Task[None] | None = None
    media: pipeline.MediaPipeline | None = None
    relay_source: PatternTrack | None = None
    if contender == "encode-once":
        hub = fanout.Fanout()
        media = pipeline.MediaPipeline(capture.SyntheticSource(WIDTH, HEIGHT), hub, rungs=[RUNG])
        runner = asyncio.create_task(media.run())
        for i in range(n):
            host = rtc.peer_connection()
            link = rtc.ViewerLink(host, hub.add_viewer(f"v{i}"), "vp8", hub.gate)
            senders.append(link.sender)
            hosts.append(host)
            await viewers.connect(f"v{i}", host)
    else:
        relay, relay_source = MediaRelay(), PatternTrack()
        for i in range(n):
            host = rtc.peer_connection()
            senders.append(host.addTrack(relay.subscribe(relay_source)))
            hosts.append(host)
            await viewers.connect(f"v{i}", host)

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # every viewer decoding (the answer is another process's)
        if min((await viewers.ask("counts")).values()) > 0:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # warm-up: rate control and REMB settle

    def encodes() -> int:
        return media.frames_encoded if media is not None else ENCODES["n"]

    counts0, bytes0, enc0 = await viewers.ask("counts"), await _bytes_sent(senders), encodes()
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, wall1 = time.process_time(), time.monotonic()
    counts1, bytes1, enc1 = await viewers.ask("counts"), await _bytes_sent(senders), encodes()

    if media is not None and runner is not None:
        media.stop()
        await runner
        media.close()
    if relay_source is not None:
        relay_source.stop()
    await asyncio.gather(*(h.close() for h in hosts))
    await viewers.ask("close")

    wall = wall1 - wall0
    fps = [(counts1[k] - counts0[k]) / wall for k in counts1]
    return {
        "contender": contender,
        "viewers": n,
        "fps_mean": sum(fps) / len(fps),
        "fps_min": min(fps),
        "host_cpu_pct": 100 * (cpu1 - cpu0) / wall,
        "encodes_per_s": (enc1 - enc0) / wall,
        "kbps_per_viewer": 8 * (bytes1 - bytes0) / wall / 1000 / n,
    }


async def run(viewer_counts: list[int], seconds: float) -> list[dict[str, Any]]:
    _count_aiortc_encodes()
    viewers = Viewers()
    rows = []
    try:
        for n in viewer_counts:
            for contender in ("encode-once", "per-viewer"):
                print(f"{contender} x{n} ...", file=sys.stderr, flush=True)
                rows.append(await measure(contender, n, viewers, seconds))
    finally:
        viewers.stop()
    return rows


# --- report -----------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| viewers | contender | frames/s per viewer (mean / min) | host CPU (% of one core) "
        "| encodes/s | kbit/s per viewer |",
        "|--:|:--|--:|--:|--:|--:|",
    ]
    by_n: dict[int, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_n.setdefault(r["viewers"], {})[r["contender"]] = r
        out.append(
            f"| {r['viewers']} | {r['contender']} | {r['fps_mean']:.1f} / {r['fps_min']:.1f} "
            f"| {r['host_cpu_pct']:.0f} | {r['encodes_per_s']:.1f} | {r['kbps_per_viewer']:.0f} |"
        )
    for n, pair in by_n.items():
        if len(pair) == 2:
            a, b = pair["encode-once"], pair["per-viewer"]
            out.append(
                f"| {n} | **encode-once / per-viewer** | **×{a['fps_mean'] / b['fps_mean']:.2f}** "
                f"| **×{a['host_cpu_pct'] / b['host_cpu_pct']:.2f}** "
                f"| ×{a['encodes_per_s'] / b['encodes_per_s']:.2f} | |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", default="1,5,10", help="comma-separated viewer counts")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring window per cell")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(v) for v in args.viewers.split(",")]
    if args.inside:
        if not netns.only_loopback():
            sys.exit("refusing to run: not in a loopback-only network namespace")
        print(json.dumps(asyncio.run(run(counts, args.seconds))))
        return
    command = [sys.executable, __file__, "--inside", "--viewers", args.viewers]
    command += ["--seconds", str(args.seconds)]
    rows = netns.run_isolated(command, timeout=900, stream_stderr=True)
    print(f"{WIDTH}x{HEIGHT} at {FPS} fps, VP8, {args.seconds:g} s windows; {platform.node()}")
    print(f"Python {platform.python_version()}, aiortc {aiortc.__version__}, {_cpu()}\n")
    print(table(rows))


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return f"{len(names)} x {names[0]}"
    except (OSError, IndexError):
        return platform.machine()


if __name__ == "__main__":
    main()
