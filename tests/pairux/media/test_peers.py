"""Real WebRTC between aiortc peers, in a network namespace that has only loopback."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import need_service
from tests.pairux.media import netns

pytestmark = pytest.mark.slow


def _run(*args: str) -> Any:
    if not netns.available():
        need_service("a network namespace (unshare -n)")
    command = netns.python_command("tests.pairux.media.peer_scenario", *args)
    return netns.run_isolated(command, timeout=180)


@pytest.fixture(scope="module")
def ten_viewers() -> Any:
    return _run("--viewers", "10", "--width", "640", "--height", "360", "--stall", "2")


def test_ten_viewers_decode_the_pattern_from_one_encode_per_frame(ten_viewers: Any) -> None:
    r = ten_viewers
    assert r["started"]
    assert r["frames_captured"] >= 60
    assert r["frames_encoded"] == r["frames_captured"]  # once per frame, not x12
    assert r["frames_encoded_metric"] == r["frames_encoded"]
    # aiortc's senders only packetized our packets; none of them encoded a frame.
    assert r["aiortc_calls"]["Vp8Encoder.encode"] == 0
    assert r["aiortc_calls"]["Vp8Encoder.pack"] >= 10 * 50
    for name in [f"v{i}" for i in range(10)]:
        v = r["viewers"][name]
        assert v["decoded"] >= r["frames_captured"] - 15, name
        assert v["unreadable"] == 0, name
        assert v["in_order"], name
        assert v["worst_colour_error"] <= 16, name
        assert v["first_packet_keyframe"], name


def test_ice_stayed_on_loopback(ten_viewers: Any) -> None:
    assert ten_viewers["all_candidates_loopback"], ten_viewers["candidates"]


def test_a_stalled_viewer_neither_stalls_the_others_nor_grows_memory(ten_viewers: Any) -> None:
    r = ten_viewers
    fps, stall = r["fps"], r["stall_s"]
    slow = r["viewers"]["slow"]
    assert slow["during_stall"] <= 2
    assert r["slow_high_water_during_stall"] <= r["queue"]
    assert slow["overflows"] >= 1
    for name in [f"v{i}" for i in range(10)]:
        assert r["viewers"][name]["during_stall"] >= fps * stall * 0.8, name
    # Once its sender reads again it drains at most a queue of old frames, then is live.
    assert slow["after_stall"] >= fps * 0.5
    assert slow["last"] >= r["viewers"]["v0"]["last"] - 2
    assert slow["unreadable"] == 0


def test_a_late_joiner_starts_at_a_keyframe_and_decodes(ten_viewers: Any) -> None:
    r = ten_viewers
    late = r["viewers"]["late"]
    assert r["late_ok"]
    assert late["first_packet_keyframe"]
    assert late["unreadable"] == 0
    assert late["decoded"] >= 5
    assert r["keyframes_encoded"] > r["keyframes_before_late"]


def test_receiver_reports_reach_the_ladder_through_the_rtcp_taps(ten_viewers: Any) -> None:
    r = ten_viewers
    assert r["reports_with_remb"] >= r["reports"] - 1  # REMB read off each sender's RTCP
    worst = r["worst_report"]
    assert 0 < worst["rtt_ms"] < 200  # from RTCP RR on loopback
    assert worst["loss"] < 0.05


def test_h264_packets_also_reach_aiortc_viewers_unencoded() -> None:
    r = _run("--viewers", "2", "--codec", "h264", "--width", "640", "--height", "360")
    assert r["frames_encoded"] == r["frames_captured"]
    assert r["aiortc_calls"]["H264Encoder.encode"] == 0
    assert r["aiortc_calls"]["H264Encoder.pack"] > 0
    for v in r["viewers"].values():
        assert v["unreadable"] == 0
        assert v["decoded"] >= 5
