from __future__ import annotations

import shutil
from collections.abc import Iterator

import av
import numpy as np
import pytest

from keel.pairux.host.media import capture, encoder
from tests.conftest import need_service
from tests.pairux.control.conftest import run_xvfb


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (640, 360), (320, 180)])
def test_synthetic_frames_carry_their_number_and_colours(width: int, height: int) -> None:
    source = capture.SyntheticSource(width, height)
    for index in (0, 1, 2, 255, 4097, 65535, 65536 + 7):
        img = source.grab(index).to_ndarray(format="rgb24")
        assert capture.read_counter(img) == index % 65536
        assert capture.colour_error(img) == 0


def test_a_picture_that_is_not_the_pattern_reads_as_nothing() -> None:
    assert capture.read_counter(np.zeros((360, 640, 3), dtype=np.uint8)) is None
    assert capture.read_counter(np.full((360, 640, 3), 255, dtype=np.uint8)) is None


def test_the_pattern_still_reads_after_vp8_at_half_scale() -> None:
    source = capture.SyntheticSource(1280, 720)
    enc = encoder.VideoEncoder(encoder.EncoderSettings(640, 360, 15, 400_000))
    decoder = av.CodecContext.create("libvpx", "r")
    read = []
    for index in range(20):
        frame = source.grab(index)
        frame.pts, frame.time_base = index * 6000, encoder.TIME_BASE
        for packet in enc.encode(frame):
            for decoded in decoder.decode(packet):
                img = decoded.to_ndarray(format="rgb24")
                assert (decoded.width, decoded.height) == (640, 360)
                assert capture.colour_error(img) <= 24
                read.append(capture.read_counter(img))
    assert read == list(range(20))


@pytest.fixture
def xvfb_display() -> Iterator[str]:
    if shutil.which("Xvfb") is None:
        need_service("Xvfb (Debian package xvfb)")
    with run_xvfb(640, 480) as display:
        yield display


def test_screen_source_grabs_the_x_display(xvfb_display: str) -> None:
    source = capture.ScreenSource(display=xvfb_display)
    try:
        frame = source.grab(0)
        assert (frame.width, frame.height) == (640, 480)
        img = frame.to_ndarray(format="rgb24")
        assert int(img.max()) == 0  # -br: a black root window
    finally:
        source.close()
    source.close()  # idempotent


def test_screen_source_without_a_display_raises_capture_error() -> None:
    source = capture.ScreenSource(display=":4242")
    with pytest.raises(capture.CaptureError):
        source.grab(0)
