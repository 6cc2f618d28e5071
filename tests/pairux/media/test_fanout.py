from __future__ import annotations

import asyncio

import av
import pytest
from aiortc.mediastreams import MediaStreamError

from keel.pairux.host.media import fanout


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _packet(number: int, key: bool = False) -> av.Packet:
    packet = av.Packet(number.to_bytes(4, "big"))
    packet.is_keyframe = key
    return packet


def _numbers(packets: list[av.Packet]) -> list[int]:
    return [int.from_bytes(bytes(p), "big") for p in packets]


def test_keyframe_requests_merge_and_wait_out_the_interval() -> None:
    clock = FakeClock()
    gate = fanout.KeyframeGate(min_interval_s=0.5, clock=clock)
    assert not gate.take()
    for _ in range(10):  # ten viewers' PLIs at once
        gate.request("pli")
    assert gate.take()
    assert not gate.take()
    gate.request("pli")
    clock.now += 0.2
    assert not gate.take()  # too soon after the last one: it waits, it is not lost
    clock.now += 0.3
    assert gate.take()
    assert gate.granted == 2
    gate.request("join")
    gate.keyframe_sent()  # the encoder made one on its own: that answers the request
    clock.now += 1
    assert not gate.take()


async def test_every_viewer_gets_every_packet_in_order_from_a_keyframe() -> None:
    hub = fanout.Fanout(max_packets=8)
    tracks = [hub.add_viewer(f"v{i}") for i in range(3)]
    hub.publish([_packet(0)])  # before any keyframe: nobody can decode it
    hub.publish([_packet(1, key=True)])
    for n in range(2, 6):
        hub.publish([_packet(n)])
    for track in tracks:
        got = [await track.recv() for _ in range(5)]
        assert _numbers(got) == [1, 2, 3, 4, 5]
        assert track.first_packet_keyframe is True
    assert hub.gate.take()  # the joins asked for a keyframe


async def test_a_slow_viewer_skips_to_the_next_keyframe_and_never_holds_more_than_its_bound() -> (
    None
):
    clock = FakeClock()
    hub = fanout.Fanout(fanout.KeyframeGate(clock=clock), max_packets=4)
    fast, slow = hub.add_viewer("fast"), hub.add_viewer("slow")
    hub.gate.take()
    fast_got: list[av.Packet] = []
    hub.publish([_packet(0, key=True)])
    for n in range(1, 20):
        hub.publish([_packet(n)])
        fast_got.append(await fast.recv())
        assert len(slow._queue) <= 4
    fast_got.append(await fast.recv())
    assert sorted(_numbers(fast_got)) == list(range(20))
    assert slow.overflows == 1
    assert slow.dropped >= 16
    clock.now += 1
    assert hub.gate.take()  # the overflow asked for a keyframe
    hub.publish([_packet(20), _packet(21, key=True), _packet(22)])
    assert _numbers([await slow.recv(), await slow.recv()]) == [21, 22]


async def test_a_removed_viewer_stops_and_wakes_its_sender() -> None:
    hub = fanout.Fanout()
    track = hub.add_viewer("v")
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    hub.remove_viewer("v")
    with pytest.raises(MediaStreamError):
        await waiting
    hub.publish([_packet(0, key=True)])
    assert hub.viewers() == []


async def test_rejoining_under_the_same_name_replaces_the_old_track() -> None:
    hub = fanout.Fanout()
    old = hub.add_viewer("v")
    new = hub.add_viewer("v")
    assert old.readyState == "ended"
    assert hub.viewers() == [new]
