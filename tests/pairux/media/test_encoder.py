from __future__ import annotations

import av
import pytest

from keel.pairux.host.media import capture, encoder


def _frame(source: capture.SyntheticSource, index: int) -> av.VideoFrame:
    frame = source.grab(index)
    frame.pts, frame.time_base = index * 6000, encoder.TIME_BASE
    return frame


@pytest.mark.parametrize(("codec", "decoder_name"), [("vp8", "libvpx"), ("h264", "h264")])
def test_packets_carry_pts_time_base_and_keyframe_flags(
    codec: encoder.Codec, decoder_name: str
) -> None:
    source = capture.SyntheticSource(640, 360)
    enc = encoder.VideoEncoder(encoder.EncoderSettings(640, 360, 15, 800_000, codec=codec))
    decoder = av.CodecContext.create(decoder_name, "r")
    packets = []
    for index in range(12):
        out = enc.encode(_frame(source, index), keyframe=index == 8)
        assert len(out) == 1  # no look-ahead: one packet per frame, at once
        packets.extend(out)
    assert [p.pts for p in packets] == [i * 6000 for i in range(12)]
    assert all(p.time_base == encoder.TIME_BASE for p in packets)
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 8]
    assert (enc.frames_encoded, enc.keyframes_encoded, enc.opens) == (12, 2, 1)
    # A decoder that starts at the forced keyframe reads every later frame.
    late = av.CodecContext.create(decoder_name, "r")
    numbers = [
        capture.read_counter(f.to_ndarray(format="rgb24"))
        for p in packets[8:]
        for f in late.decode(p)
    ]
    assert numbers == [8, 9, 10, 11]
    assert len([f for p in packets for f in decoder.decode(p)]) == 12


def test_a_new_size_or_bitrate_reopens_the_encoder_with_a_keyframe() -> None:
    source = capture.SyntheticSource(640, 360)
    settings = encoder.EncoderSettings(640, 360, 15, 800_000)
    enc = encoder.VideoEncoder(settings)
    enc.encode(_frame(source, 0))
    assert not enc.encode(_frame(source, 1))[0].is_keyframe
    enc.configure(settings)  # unchanged: the same codec
    assert not enc.encode(_frame(source, 2))[0].is_keyframe
    enc.configure(settings.scaled(320, 180))
    packet = enc.encode(_frame(source, 3))[0]
    assert packet.is_keyframe
    assert enc.opens == 2
    frames = av.CodecContext.create("libvpx", "r").decode(packet)
    assert (frames[0].width, frames[0].height) == (320, 180)


def test_encoder_settings_refuse_odd_sizes_and_silly_rates() -> None:
    with pytest.raises(ValueError, match="even"):
        encoder.EncoderSettings(641, 360, 15, 800_000)
    with pytest.raises(ValueError, match="fps"):
        encoder.EncoderSettings(640, 360, 0, 800_000)
    with pytest.raises(ValueError, match="bitrate"):
        encoder.EncoderSettings(640, 360, 15, 1000)
