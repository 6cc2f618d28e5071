"""Ten viewers, a slow one and a late joiner watch one host over real WebRTC on loopback.

Run by ``test_peers.py`` inside a loopback-only network namespace (``netns.run_isolated``); it
refuses to run anywhere else. Prints one JSON line of facts for the test to assert on.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import aiortc.codecs.h264
import aiortc.codecs.vpx
from prometheus_client import REGISTRY

from keel.pairux.host.media import capture, fanout, ladder, pipeline, rtc
from keel.pairux.host.media.encoder import EncodedPacket
from tests.pairux.media import netns, peers


def _count_calls(owner: type, name: str, counts: dict[str, int]) -> None:
    original: Callable[..., Any] = getattr(owner, name)
    key = f"{owner.__name__}.{name}"
    counts[key] = 0

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return original(*args, **kwargs)

    setattr(owner, name, counted)


async def _wait_for(check: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def scenario(args: argparse.Namespace) -> dict[str, Any]:
    calls: dict[str, int] = {}
    for codec_class in (aiortc.codecs.vpx.Vp8Encoder, aiortc.codecs.h264.H264Encoder):
        _count_calls(codec_class, "encode", calls)  # must stay 0: nobody encodes twice
        _count_calls(codec_class, "pack", calls)
    encoded_before = (
        REGISTRY.get_sample_value("pairux_frames_encoded_total", {"codec": args.codec}) or 0.0
    )
    hub = fanout.Fanout(max_packets=args.queue)
    media = pipeline.MediaPipeline(
        capture.SyntheticSource(args.width, args.height), hub, codec=args.codec, start_rung=2
    )
    t_start = time.monotonic()
    runner = asyncio.create_task(media.run())
    tasks: list[asyncio.Task[None]] = []
    pcs: list[Any] = []
    received: dict[str, peers.Received] = {}
    tracks: dict[str, fanout.ViewerTrack] = {}
    candidates: list[tuple[str, str]] = []
    links: list[rtc.ViewerLink] = []

    async def join(name: str) -> None:
        host_pc, viewer_pc = rtc.peer_connection(), peers.receiving_peer()
        pcs.extend([host_pc, viewer_pc])
        track = hub.add_viewer(name)
        tracks[name] = track
        links.append(rtc.ViewerLink(host_pc, track, args.codec, hub.gate))
        received[name] = peers.Received(name)
        candidates.extend(await peers.connect(host_pc, viewer_pc, received[name], tasks))

    unstalled = asyncio.Event()
    names = [f"v{i}" for i in range(args.viewers)]
    for name in [*names, "slow"]:
        await join(name)
    slow_track = tracks["slow"]
    slow_recv = slow_track.recv

    async def stalled_recv() -> EncodedPacket:  # the slow viewer's sender stops reading
        await unstalled.wait()
        return await slow_recv()

    started = await _wait_for(lambda: all(r.frames for r in received.values()), 20)
    t_connected = time.monotonic()
    await asyncio.sleep(1.0)
    slow_track.recv = stalled_recv  # type: ignore[method-assign]
    t_stall = time.monotonic()
    await asyncio.sleep(args.stall)
    t_unstall = time.monotonic()
    slow_high_water = slow_track.high_water
    unstalled.set()
    keyframes_before_late = media.encoder.keyframes_encoded if media.encoder else 0
    await join("late")
    late_ok = await _wait_for(lambda: len(received["late"].frames) >= 5, 10)
    await asyncio.sleep(1.0)
    for link in links:  # two reports a second apart: the second has a send rate to compare
        await link.conditions()
    await asyncio.sleep(1.0)
    reports = [await link.conditions() for link in links]  # RTCP RR + REMB, as the ladder sees
    t_end = time.monotonic()
    media.stop()
    await runner
    await asyncio.gather(*(pc.close() for pc in pcs))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    media.close()
    encoded_after = (
        REGISTRY.get_sample_value("pairux_frames_encoded_total", {"codec": args.codec}) or 0.0
    )

    def viewer(name: str) -> dict[str, Any]:
        r, track = received[name], tracks[name]
        numbers = r.numbers()
        return {
            "decoded": len(r.frames),
            "unreadable": r.unreadable(),
            "in_order": numbers == sorted(numbers),
            "first": numbers[0] if numbers else None,
            "last": numbers[-1] if numbers else None,
            "worst_colour_error": r.worst_colour_error,
            "during_stall": r.decoded_between(t_stall, t_unstall),
            "after_stall": r.decoded_between(t_unstall, t_end),
            "after_stall_first": next(
                (n for n, t, _ in r.frames if n is not None and t >= t_unstall), None
            ),
            "first_packet_keyframe": track.first_packet_keyframe,
            "overflows": track.overflows,
            "dropped": track.dropped,
            "high_water": track.high_water,
        }

    return {
        "started": started,
        "connect_s": round(t_connected - t_start, 3),
        "stall_s": round(t_unstall - t_stall, 3),
        "frames_captured": media.frames_captured,
        "frames_encoded": media.frames_encoded,
        "frames_encoded_metric": encoded_after - encoded_before,
        "keyframes_encoded": media.encoder.keyframes_encoded if media.encoder else 0,
        "keyframes_before_late": keyframes_before_late,
        "slow_high_water_during_stall": slow_high_water,
        "late_ok": late_ok,
        "aiortc_calls": calls,
        "candidates": sorted(set(candidates)),
        "all_candidates_loopback": peers.all_loopback(candidates),
        "viewers": {name: viewer(name) for name in received},
        "reports_with_remb": sum(1 for link in links if link.remb_bps is not None),
        "reports": len(reports),
        "worst_report": dataclasses.asdict(ladder.worst(reports)),
        "queue": args.queue,
        "fps": media.rung.fps,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--codec", choices=["vp8", "h264"], default="vp8")
    parser.add_argument("--stall", type=float, default=2.0)
    parser.add_argument("--queue", type=int, default=8)
    args = parser.parse_args()
    if not netns.only_loopback():
        sys.exit("refusing to run: not in a loopback-only network namespace")
    print(json.dumps(asyncio.run(scenario(args))))


if __name__ == "__main__":
    main()
