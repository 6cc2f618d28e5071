"""The control channel's wire format: strict, wire-compatible with PairUX, and unbreakable."""

from __future__ import annotations

import json
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.pairux.host.control import messages as m

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
stamp = st.floats(min_value=0.0, max_value=1e13, allow_nan=False)
seq = st.integers(min_value=0, max_value=2**53 - 1)
pid = st.text(min_size=1, max_size=64)
button = st.sampled_from(["left", "right", "middle"])
modifiers = st.builds(
    m.Modifiers,
    ctrl=st.booleans(),
    alt=st.booleans(),
    shift=st.booleans(),
    meta=st.booleans(),
    accel=st.booleans(),
)
events = st.one_of(
    st.builds(m.MouseMove, x=unit, y=unit),
    st.builds(
        m.MouseButtonEvent, action=st.sampled_from(["down", "up"]), button=button, x=unit, y=unit
    ),
    st.builds(
        m.MouseScroll,
        x=st.none() | unit,
        y=st.none() | unit,
        delta_x=st.floats(-1e5, 1e5),
        delta_y=st.floats(-1e5, 1e5),
        delta_mode=st.sampled_from([0, 1, 2]),
    ),
    st.builds(
        m.KeyEvent,
        action=st.sampled_from(["down", "up"]),
        key=st.text(min_size=1, max_size=32),
        code=st.text(max_size=32),
        modifiers=modifiers,
    ),
)
from_viewer = st.one_of(
    st.builds(m.InputMessage, timestamp=stamp, sequence=seq, event=events),
    st.builds(m.ControlRequest, participant_id=st.none() | pid, timestamp=st.none() | stamp),
    st.builds(m.ControlRelease, participant_id=st.none() | pid, timestamp=st.none() | stamp),
    st.builds(
        m.CursorMessage, participant_id=st.none() | pid, x=unit, y=unit, visible=st.booleans()
    ),
    st.builds(m.Ping, timestamp=st.none() | stamp),
    st.builds(m.Pong, timestamp=st.none() | stamp),
)
from_host = st.one_of(
    st.builds(m.ControlGrant, timestamp=st.none() | stamp, expires_at=st.none() | stamp),
    st.builds(m.ControlRevoke, reason=st.sampled_from(["host", "expired", "emergency"])),
    st.builds(m.ControlDenied, reason=st.sampled_from(["host", "timeout", "full"])),
    st.builds(
        m.Cursors,
        participants=st.lists(
            st.builds(m.ParticipantCursor, id=pid, name=st.text(max_size=64), x=unit, y=unit),
            max_size=5,
        ),
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)


@given(st.binary(max_size=20_000))
@settings(max_examples=400)
def test_any_bytes_are_parsed_or_rejected_never_raised(data: bytes) -> None:
    assert isinstance(m.parse_from_viewer(data), (m.Rejected, *get_args(m.ViewerMessage)))
    assert isinstance(m.parse_from_host(data), (m.Rejected, *get_args(m.HostMessage)))


@given(st.text(max_size=5_000))
def test_any_text_even_lone_surrogates_is_parsed_or_rejected(text: str) -> None:
    m.parse_from_viewer(text)
    m.parse_from_host(text)


@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["input", "cursor", "control-request", "ping", "cursors"])},
        optional={
            "timestamp": json_values,
            "sequence": json_values,
            "event": json_values,
            "x": json_values,
            "y": json_values,
            "participants": json_values,
        },
    )
)
@settings(max_examples=400)
def test_near_miss_json_objects_are_parsed_or_rejected(value: dict[str, object]) -> None:
    text = json.dumps(value, allow_nan=True)
    m.parse_from_viewer(text)
    m.parse_from_host(text)


@given(from_viewer)
@settings(max_examples=300)
def test_viewer_messages_survive_a_round_trip(message: m.ViewerMessage) -> None:
    assert m.parse_from_viewer(m.encode(message)) == message


@given(from_host)
def test_host_messages_survive_a_round_trip(message: m.HostMessage) -> None:
    assert m.parse_from_host(m.encode(message)) == message


def test_pairux_shaped_input_parses_with_its_field_names() -> None:
    wire = (
        '{"type":"input","timestamp":1733500000000,"sequence":7,"event":{"type":"mouse",'
        '"action":"scroll","x":0.5,"y":0.25,"deltaX":0,"deltaY":120,"deltaMode":0}}'
    )
    parsed = m.parse_from_viewer(wire)
    assert isinstance(parsed, m.InputMessage)
    assert isinstance(parsed.event, m.MouseScroll)
    assert parsed.event.delta_y == 120.0
    assert '"deltaY":120.0' in m.encode(parsed)


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (
            '{"type":"input","timestamp":1,"sequence":1,"event":{"type":"mouse","action":"move",'
            '"x":1.5,"y":0}}',
            "invalid",
        ),
        (
            '{"type":"input","timestamp":1,"sequence":1,"event":{"type":"mouse","action":"move",'
            '"x":NaN,"y":0}}',
            "invalid",
        ),
        (
            '{"type":"input","timestamp":1,"sequence":1,"event":{"type":"mouse","action":"move",'
            '"x":"0.5","y":0}}',
            "invalid",
        ),
        (
            '{"type":"input","timestamp":1,"sequence":1,"event":{"type":"mouse","action":"click",'
            '"button":"left","x":0.5,"y":0.5}}',
            "invalid",
        ),
        (
            '{"type":"input","timestamp":1,"sequence":-1,"event":{"type":"keyboard",'
            '"action":"down","key":"a","code":"KeyA"}}',
            "invalid",
        ),
        (
            '{"type":"input","timestamp":1,"sequence":1,"event":{"type":"keyboard",'
            '"action":"down","key":"' + "a" * 33 + '","code":"KeyA"}}',
            "invalid",
        ),
        (
            '{"type":"input","timestamp":1,"sequence":1,"event":{"type":"keyboard",'
            '"action":"down","key":"","code":"KeyA"}}',
            "invalid",
        ),
        ('{"type":"control-request","admin":true}', "invalid"),
        ('{"type":"control-grant"}', "unknown_type"),
        ('{"type":"kick"}', "unknown_type"),
        ("[1,2]", "invalid"),
        ("{", "not_json"),
        ('{"type":"ping","pad":"' + "x" * 17_000 + '"}', "too_large"),
    ],
)
def test_bad_messages_are_rejected_with_a_stable_code(wire: str, code: str) -> None:
    result = m.parse_from_viewer(wire)
    assert isinstance(result, m.Rejected)
    assert result.code == code


def test_a_viewer_cannot_send_host_messages_and_a_host_cannot_send_input() -> None:
    assert isinstance(m.parse_from_viewer('{"type":"control-grant"}'), m.Rejected)
    assert isinstance(m.parse_from_host('{"type":"control-request"}'), m.Rejected)
