"""A viewer's control channel on the host, end to end without a network."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from keel.core.clock import FrozenClock
from keel.pairux.host.control import messages
from keel.pairux.host.control.arbitration import Arbiter, CaptureRect
from keel.pairux.host.control.channel import ControlHub
from keel.pairux.host.control.grants import GrantAuthority
from keel.pairux.host.control.injector import RecordingInjector


def hub() -> tuple[ControlHub, RecordingInjector, dict[str, list[messages.HostMessage]]]:
    clock = FrozenClock()
    grants = GrantAuthority(clock=clock)
    injector = RecordingInjector()
    arbiter = Arbiter(
        grants=grants, injector=injector, clock=clock, rect=CaptureRect(0, 0, 100, 100)
    )
    arbiter.enable()
    outbox: dict[str, list[messages.HostMessage]] = {}
    control = ControlHub(grants=grants, arbiter=arbiter)
    for pid in ("ann", "bob"):
        box = outbox.setdefault(pid, [])

        def send(text: str, box: list[messages.HostMessage] = box) -> None:
            parsed = messages.parse_from_host(text)
            assert not isinstance(parsed, messages.Rejected)
            box.append(parsed)

        control.open(pid, pid.title(), send)
    return control, injector, outbox


def click(seq: int) -> str:
    event = {"type": "mouse", "action": "down", "button": "left", "x": 0.5, "y": 0.5}
    return json.dumps({"type": "input", "timestamp": 1, "sequence": seq, "event": event})


def test_request_grant_input_release_round_trip() -> None:
    control, injector, outbox = hub()
    ann = control.open(
        "ann", "Ann", lambda text: outbox["ann"].append(messages.parse_from_host(text))
    )  # type: ignore[arg-type]
    assert ann.receive(click(1)) == "not_granted"
    ann.receive('{"type":"control-request","participantId":"bob"}')  # the id inside is ignored
    assert [p.id for p in control.grants.pending()] == ["ann"]
    control.grants.grant("ann")
    assert isinstance(outbox["ann"][-1], messages.ControlGrant)
    assert ann.receive(click(2)) == "injected"
    ann.receive('{"type":"control-release"}')
    assert outbox["ann"][-1] == messages.ControlRevoke(
        timestamp=outbox["ann"][-1].timestamp, reason="released"
    )  # type: ignore[union-attr]
    assert injector.calls[-2:] == [("button", "left", False), ("move", 0, 0)]
    assert outbox["bob"] == []


def test_ping_is_answered_and_cursors_are_shared_with_names() -> None:
    control, _, outbox = hub()
    control._channels["ann"].receive('{"type":"ping","timestamp":12}')
    assert outbox["ann"] == [messages.Pong(timestamp=12)]
    control._channels["bob"].receive('{"type":"cursor","x":0.25,"y":0.75,"visible":true}')
    assert control.cursors().participants == [
        messages.ParticipantCursor(id="bob", name="Bob", x=0.25, y=0.75)
    ]
    control.close("bob")
    assert control.cursors().participants == []


def test_a_denied_request_is_told_to_the_viewer() -> None:
    control, _, outbox = hub()
    control._channels["bob"].receive('{"type":"control-request"}')
    control.grants.deny("bob")
    assert isinstance(outbox["bob"][-1], messages.ControlDenied)


@given(
    st.lists(
        st.binary(max_size=300)
        | st.sampled_from(
            [click(1), click(2), '{"type":"control-request"}', '{"type":"control-release"}']
        ),
        max_size=30,
    )
)
@settings(max_examples=200, deadline=None)
def test_fuzzed_channel_traffic_never_injects_without_the_hosts_grant(
    frames: list[bytes | str],
) -> None:
    control, injector, _ = hub()
    for frame in frames:
        control._channels["ann"].receive(frame)
    assert injector.calls == []
