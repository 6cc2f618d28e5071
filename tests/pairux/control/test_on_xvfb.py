"""Remote control on a real X server: Xvfb, XTest injection, an XRecord host-input listener and
a Tk app that logs what reaches it. Viewers are ``control`` channels fed JSON, as the data
channel will feed them."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from keel.core.clock import SystemClock
from keel.pairux.host.control.arbitration import Arbiter, CaptureRect
from keel.pairux.host.control.channel import ControlChannel, ControlHub
from keel.pairux.host.control.grants import GrantAuthority
from keel.pairux.host.control.hostinput import HostInputListener
from keel.pairux.host.control.injector import EchoFilter, XTestInjector
from tests.pairux.control.conftest import HEIGHT, WIDTH, InputLog

pytestmark = pytest.mark.slow


class Viewer:
    def __init__(self, channel: ControlChannel) -> None:
        self.channel = channel
        self.sequence = 0
        self.outcomes: list[str | None] = []

    def input(self, event: dict[str, Any]) -> str | None:
        self.sequence += 1
        message = {"type": "input", "timestamp": time.time() * 1000, "sequence": self.sequence}
        outcome = self.channel.receive(json.dumps({**message, "event": event}))
        self.outcomes.append(outcome)
        return outcome

    def button(self, action: str, x: float, y: float, button: str = "left") -> str | None:
        return self.input({"type": "mouse", "action": action, "button": button, "x": x, "y": y})

    def click(self, x: float, y: float) -> None:
        self.button("down", x, y)
        self.button("up", x, y)

    def key(self, action: str, code: str, key: str, **modifiers: bool) -> str | None:
        event = {"type": "keyboard", "action": action, "key": key, "code": code}
        return self.input({**event, "modifiers": modifiers})

    def type(self, word: str, pause_s: float = 0.0) -> None:
        for char in word:
            self.key("down", f"Key{char.upper()}", char)
            self.key("up", f"Key{char.upper()}", char)
            time.sleep(pause_s)


@dataclass
class Host:
    hub: ControlHub
    arbiter: Arbiter
    grants: GrantAuthority
    echoes: EchoFilter
    display: str

    def viewer(self, pid: str, *, granted: bool = True) -> Viewer:
        viewer = Viewer(self.hub.open(pid, pid.title(), lambda _: None))
        if granted:
            viewer.channel.receive('{"type":"control-request"}')
            self.grants.grant(pid)
        return viewer


@pytest.fixture
def host(xvfb: str, input_log: InputLog) -> Iterator[Host]:
    clock = SystemClock()
    echoes = EchoFilter()
    grants = GrantAuthority(clock=clock)
    arbiter = Arbiter(
        grants=grants,
        injector=XTestInjector(xvfb, echoes=echoes),
        clock=clock,
        rect=CaptureRect(0, 0, WIDTH, HEIGHT),
    )
    assert arbiter.enable()
    yield Host(ControlHub(grants=grants, arbiter=arbiter), arbiter, grants, echoes, xvfb)
    arbiter.close()


def pointer(display: str) -> str:
    where = subprocess.run(
        ["xdotool", "getmouselocation"],
        env={"DISPLAY": display},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return " ".join(where.split()[:2])


def test_the_injector_says_so_when_it_cannot_inject() -> None:
    assert not XTestInjector(None).enable()
    assert not XTestInjector(":4999").enable()


def test_before_a_grant_nothing_reaches_the_app(host: Host, input_log: InputLog) -> None:
    viewer = host.viewer("vic", granted=False)
    viewer.click(0.5, 0.5)
    viewer.type("hi")
    viewer.channel.receive('{"type":"control-request"}')  # asked, not yet answered
    viewer.click(0.5, 0.5)
    assert set(viewer.outcomes) == {"not_granted"}
    assert input_log.settle(0.3) == []


def test_after_the_grant_clicks_and_typing_arrive_at_the_right_pixels(
    host: Host, input_log: InputLog
) -> None:
    viewer = host.viewer("ann")
    before = pointer(host.display)
    viewer.click(0.25, 0.5)
    viewer.button("down", 0.75, 0.1, "right")
    viewer.button("up", 0.75, 0.1, "right")
    viewer.type("hi")
    viewer.key("down", "ShiftLeft", "Shift", shift=True)
    viewer.key("down", "Digit1", "!", shift=True)
    viewer.key("up", "Digit1", "!", shift=True)
    viewer.key("up", "ShiftLeft", "Shift")
    events = input_log.settle()
    presses = [(e["num"], e["x"], e["y"]) for e in events if e["ev"] == "button_down"]
    assert presses == [(1, 320, 360), (3, 960, 72)]
    assert input_log.typed() == "hi!"
    assert pointer(host.display) == before  # borrowed for the clicks, then given back


def test_a_revoke_stops_injection_within_100_ms(host: Host, input_log: InputLog) -> None:
    viewer = host.viewer("ann")
    stop = threading.Event()

    def keep_typing() -> None:
        while not stop.is_set():
            viewer.type("a")
            time.sleep(0.002)

    typist = threading.Thread(target=keep_typing)
    typist.start()
    time.sleep(0.3)
    revoked_at = time.monotonic()
    host.grants.revoke("ann")
    revoke_took = time.monotonic() - revoked_at
    time.sleep(0.3)
    stop.set()
    typist.join()
    presses = [e["t"] for e in input_log.settle() if e["ev"] == "key_down"]
    assert len(presses) > 20  # it was typing before
    last_after_revoke = max(presses) - revoked_at
    took_ms, last_ms = revoke_took * 1000, last_after_revoke * 1000
    print(f"revoke returned in {took_ms:.2f} ms; the last key arrived {last_ms:.2f} ms after")
    assert last_after_revoke < 0.1
    assert viewer.outcomes[-1] == "not_granted"
    releases = [e for e in input_log.seen if e["ev"] == "key_up"]
    assert len(releases) == len(presses)  # nothing left held


def test_two_typists_at_once_never_interleave(host: Host, input_log: InputLog) -> None:
    ann, bob = host.viewer("ann"), host.viewer("bob")
    start = threading.Barrier(2)

    def typist(viewer: Viewer, word: str) -> None:
        start.wait()
        viewer.type(word, pause_s=0.02)

    threads = [
        threading.Thread(target=typist, args=(ann, "hello")),
        threading.Thread(target=typist, args=(bob, "world")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first = input_log.typed()
    assert first in ("hello", "world")  # one whole word; not a letter of the other
    loser = bob if first == "hello" else ann
    time.sleep(1.1)  # the loser pauses, then types again
    loser.type("world" if loser is bob else "hello", pause_s=0.02)
    assert input_log.typed() in ("helloworld", "worldhello")


def test_the_hosts_own_input_preempts_every_controller(host: Host, input_log: InputLog) -> None:
    ann, bob = host.viewer("ann"), host.viewer("bob")
    reported = threading.Event()

    def on_host_input() -> None:
        host.arbiter.host_input()
        reported.set()

    listener = HostInputListener(host.display, echoes=host.echoes, on_input=on_host_input)
    assert listener.start()
    try:
        ann.key("down", "ShiftLeft", "Shift", shift=True)
        bob.button("down", 0.5, 0.5)
        ann.type("ab")
        time.sleep(0.2)
        assert listener.seen == 0  # our own injections are not the host's hands
        # the host's hands: XTest from another connection, as a physical device would appear
        subprocess.run(
            ["xdotool", "mousemove", "700", "400"], env={"DISPLAY": host.display}, check=True
        )
        assert reported.wait(1.0)
        events = input_log.settle()
        assert ("key_up", "Shift_L") in [(e["ev"], e["keysym"]) for e in events]
        assert [e["num"] for e in events if e["ev"] == "button_up"] == [1]
        assert ann.key("down", "KeyC", "c") == "host_active"
        assert bob.button("down", 0.1, 0.1) == "host_active"
        assert input_log.settle(0.3)[-1]["ev"] == "button_up"  # nothing new arrived
        time.sleep(0.5)
        bob.click(0.1, 0.1)
        assert input_log.settle()[-1]["ev"] == "button_up"
        assert [e["x"] for e in input_log.seen if e["ev"] == "button_down"] == [640, 128]
    finally:
        listener.stop()


def test_the_emergency_revoke_releases_a_held_key(host: Host, input_log: InputLog) -> None:
    ann = host.viewer("ann")
    ann.key("down", "ShiftLeft", "Shift", shift=True)
    ann.key("down", "KeyA", "A", shift=True)  # held: auto-repeat would follow
    assert input_log.keysyms("key_down") == ["Shift_L", "A"]
    host.hub.emergency_revoke()
    assert sorted(input_log.keysyms("key_up")) == ["A", "Shift_L"]
    assert ann.key("down", "KeyB", "b") == "not_granted"


@pytest.mark.parametrize(
    ("keys", "never"),
    [
        ([("ControlLeft", "Control"), ("AltLeft", "Alt"), ("Delete", "Delete")], "Delete"),
        ([("MetaLeft", "Meta"), ("KeyL", "l")], "l"),
        ([("MetaLeft", "Meta"), ("AltLeft", "Alt"), ("Escape", "Escape")], "Escape"),
        (
            [
                ("ControlLeft", "Control"),
                ("ShiftLeft", "Shift"),
                ("MetaLeft", "Meta"),
                ("KeyQ", "q"),
            ],
            "Q",
        ),
    ],
)
def test_blocked_combinations_never_reach_the_app(
    host: Host, input_log: InputLog, keys: list[tuple[str, str]], never: str
) -> None:
    ann = host.viewer("ann")
    for code, key in keys:
        ann.key("down", code, key)
    for code, key in reversed(keys):
        ann.key("up", code, key)
    assert ann.outcomes[len(keys) - 1] == "blocked"
    seen = input_log.keysyms("key_down")
    assert len(seen) == len(keys) - 1
    assert never not in seen
    assert never.lower() not in seen
