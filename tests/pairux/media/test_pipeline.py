from __future__ import annotations

import asyncio
import time

import av
from prometheus_client import REGISTRY

from keel.pairux.host.media import capture, fanout, ladder, pipeline
from keel.pairux.host.media.fanout import ViewerTrack


def _encoded_total() -> float:
    return REGISTRY.get_sample_value("pairux_frames_encoded_total", {"codec": "vp8"}) or 0.0


async def _watch(track: ViewerTrack, seen: list[tuple[int | None, int, int]]) -> None:
    decoder = av.CodecContext.create("libvpx", "r")
    while True:
        packet = await track.recv()
        for frame in decoder.decode(packet):
            img = frame.to_ndarray(format="rgb24")
            seen.append((capture.read_counter(img), frame.width, frame.height))


async def test_three_viewers_one_encode_per_frame_and_the_ladder_rescales_for_all() -> None:
    before = _encoded_total()
    hub = fanout.Fanout()
    media = pipeline.MediaPipeline(capture.SyntheticSource(640, 360), hub, start_rung=2)
    seen: list[list[tuple[int | None, int, int]]] = [[], [], []]
    watchers = [asyncio.create_task(_watch(hub.add_viewer(f"v{i}"), seen[i])) for i in range(3)]
    runner = asyncio.create_task(media.run())
    await asyncio.sleep(1.0)
    bad = ladder.Conditions(rtt_ms=900, loss=0.3, available_bps=300_000)
    assert media.report(bad).name == "low"
    await asyncio.sleep(1.0)
    media.stop()
    await runner
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    media.close()

    assert media.frames_captured > 15
    assert media.frames_encoded == media.frames_captured  # not x3
    assert _encoded_total() - before == media.frames_encoded
    assert media.encoder is not None
    assert media.encoder.opens == 2
    for frames in seen:
        numbers = [n for n, _, _ in frames]
        assert None not in numbers
        assert numbers == sorted(numbers)
        assert len(numbers) >= media.frames_captured - 2
        sizes = [(w, h) for _, w, h in frames]
        assert sizes[0] == (640, 360)
        assert sizes[-1] == (320, 180)
        assert sizes == sorted(sizes, reverse=True)  # one switch, never back


async def test_a_late_tick_is_skipped_not_queued() -> None:
    class SlowSource(capture.SyntheticSource):
        def grab(self, index: int) -> av.VideoFrame:
            if index == 3:
                time.sleep(0.5)  # a stalled grab: 7 ticks at 15 fps
            return super().grab(index)

    hub = fanout.Fanout()
    hub.add_viewer("v")  # someone watches: frames are grabbed
    media = pipeline.MediaPipeline(SlowSource(320, 180), hub, start_rung=2)
    runner = asyncio.create_task(media.run())
    await asyncio.sleep(1.2)
    media.stop()
    await runner
    media.close()
    assert media.frames_skipped >= 5
    assert media.frames_encoded == media.frames_captured
    assert 10 <= media.frames_captured + media.frames_skipped <= 20


async def test_nothing_is_grabbed_or_encoded_while_nobody_watches() -> None:
    hub = fanout.Fanout()
    media = pipeline.MediaPipeline(capture.SyntheticSource(320, 180), hub, start_rung=2)
    runner = asyncio.create_task(media.run())
    try:
        await asyncio.sleep(0.4)
        assert (media.frames_captured, media.frames_encoded) == (0, 0)
        assert media.frames_idle > 0
        track = hub.add_viewer("v")
        first = await asyncio.wait_for(track.recv(), 5)
        assert first.is_keyframe  # the first frame a joining viewer gets decodes
        assert media.frames_encoded >= 1
        hub.remove_viewer("v")
        await asyncio.sleep(0.2)
        encoded = media.frames_encoded
        await asyncio.sleep(0.4)
        assert media.frames_encoded == encoded  # idle again
    finally:
        media.stop()
        await runner
        media.close()
