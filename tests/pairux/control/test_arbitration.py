"""The arbiter, against a recording injector and a frozen clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keel.core.clock import FrozenClock
from keel.pairux.host.control import keymap
from keel.pairux.host.control.arbitration import Arbiter, CaptureRect
from keel.pairux.host.control.grants import GrantAuthority
from keel.pairux.host.control.injector import RecordingInjector, ScrollAccumulator
from keel.pairux.host.control.messages import (
    InputEvent,
    InputMessage,
    KeyEvent,
    Modifiers,
    MouseButtonEvent,
    MouseMove,
    MouseScroll,
)

MS = timedelta(milliseconds=1)
CTRL, ALT, SHIFT, SUPER = keymap.CONTROL, keymap.ALT, keymap.SHIFT, keymap.SUPER


class Rig:
    def __init__(self, *, controllers: tuple[str, ...] = ("ann", "bob"), **kwargs: object) -> None:
        self.clock = FrozenClock()
        self.grants = GrantAuthority(clock=self.clock)
        self.injector = RecordingInjector(position=(5, 5))
        self.ended: list[tuple[str, int]] = []
        self.arbiter = Arbiter(
            grants=self.grants,
            injector=self.injector,
            clock=self.clock,
            rect=CaptureRect(0, 0, 1000, 500),
            on_grant_end=lambda pid, n: self.ended.append((pid, n)),
            **kwargs,  # type: ignore[arg-type]
        )
        assert self.arbiter.enable()
        self.seq: dict[str, int] = {}
        for pid in (*controllers, "vic"):
            self.grants.join(pid, pid)
        for pid in controllers:
            self.grants.request(pid)
            self.grants.grant(pid)

    def send(self, pid: str, event: InputEvent, *, sequence: int | None = None) -> str:
        if sequence is None:
            sequence = self.seq[pid] = self.seq.get(pid, 0) + 1
        return self.arbiter.submit(pid, InputMessage(timestamp=1, sequence=sequence, event=event))

    def key(self, pid: str, code: str, key: str, action: str = "down", **mods: bool) -> str:
        return self.send(
            pid, KeyEvent(action=action, key=key, code=code, modifiers=Modifiers(**mods))
        )  # type: ignore[arg-type]

    def tap(self, pid: str, char: str) -> list[str]:
        code = f"Key{char.upper()}"
        return [self.key(pid, code, char), self.key(pid, code, char, "up")]

    def typed(self) -> str:
        return "".join(
            chr(c[1]) for c in self.injector.calls if c[0] == "key" and c[2] and c[1] < 0x100
        )  # type: ignore[arg-type, operator]

    def key_calls(self) -> list[tuple[object, ...]]:
        return [c for c in self.injector.calls if c[0] == "key"]


def test_a_viewer_without_a_grant_injects_nothing() -> None:
    rig = Rig()
    assert rig.tap("vic", "a") == ["not_granted", "not_granted"]
    assert (
        rig.send("vic", MouseButtonEvent(action="down", button="left", x=0.5, y=0.5))
        == "not_granted"
    )
    assert rig.injector.calls == []


def test_a_click_lands_on_the_mapped_pixel_and_the_pointer_returns() -> None:
    rig = Rig()
    assert rig.send("ann", MouseMove(x=0.25, y=0.5)) == "moved"
    assert rig.injector.calls == []  # moves are virtual: the cursor is drawn, not injected
    rig.send("ann", MouseButtonEvent(action="down", button="left", x=0.25, y=0.5))
    rig.send("ann", MouseButtonEvent(action="up", button="left", x=0.25, y=0.5))
    assert rig.injector.calls == [
        ("move", 250, 250),
        ("button", "left", True),
        ("move", 250, 250),
        ("button", "left", False),
        ("move", 5, 5),
    ]


@pytest.mark.parametrize(
    ("rect", "point", "pixel"),
    [
        (CaptureRect(0, 0, 1280, 720), (0.0, 0.0), (0, 0)),
        (CaptureRect(0, 0, 1280, 720), (1.0, 1.0), (1279, 719)),
        (CaptureRect(1920, 0, 1280, 720), (0.5, 0.5), (2560, 360)),  # the second monitor
        (CaptureRect(0, 1080, 800, 600), (0.999, 0.001), (799, 1080)),
    ],
)
def test_normalised_points_map_into_the_captured_rectangle(
    rect: CaptureRect, point: tuple[float, float], pixel: tuple[int, int]
) -> None:
    assert rect.to_pixels(*point) == pixel


def test_stale_and_replayed_sequences_are_dropped() -> None:
    rig = Rig()
    assert rig.send("ann", MouseMove(x=0.1, y=0.1), sequence=5) == "moved"
    assert rig.send("ann", MouseMove(x=0.2, y=0.2), sequence=5) == "stale"
    assert rig.send("ann", MouseMove(x=0.2, y=0.2), sequence=4) == "stale"
    assert rig.send("bob", MouseMove(x=0.2, y=0.2), sequence=1) == "moved"  # per controller


def test_more_than_1000_events_a_second_are_dropped() -> None:
    rig = Rig()
    outcomes = [rig.send("ann", MouseMove(x=0.5, y=0.5)) for _ in range(1010)]
    assert outcomes.count("rate_limited") == 10
    rig.clock.advance(10 * MS)
    assert rig.send("ann", MouseMove(x=0.5, y=0.5)) == "moved"


def test_two_typists_never_interleave_and_the_loser_waits_for_a_pause() -> None:
    rig = Rig()
    for a, b in zip("hello", "world", strict=True):
        rig.tap("ann", a)
        rig.tap("bob", b)
        rig.clock.advance(50 * MS)
    assert rig.typed() == "hello"
    # ann has stopped, bob keeps typing: when ann's lock lapses bob is mid-word, still dropped
    rig.clock.advance(900 * MS)
    assert rig.tap("bob", "x") == ["keyboard_busy", "keyboard_busy"]
    rig.clock.advance(200 * MS)
    assert rig.tap("bob", "y") == ["keyboard_busy", "keyboard_busy"]
    rig.clock.advance(1001 * MS)
    for b in "world":
        assert rig.tap("bob", b) == ["injected", "injected"]
    assert rig.typed() == "helloworld"
    assert rig.arbiter.dropped_counts("bob")["keyboard_busy"] > 0


def test_a_held_key_keeps_the_keyboard_however_long_it_is_held() -> None:
    rig = Rig()
    rig.key("ann", "ShiftLeft", "Shift")
    rig.clock.advance(3000 * MS)
    assert rig.key("bob", "KeyA", "a") == "keyboard_busy"


def test_host_input_releases_everything_and_pauses_remote_input_for_500_ms() -> None:
    rig = Rig()
    rig.key("ann", "ShiftLeft", "Shift")
    rig.send("bob", MouseButtonEvent(action="down", button="left", x=0.5, y=0.5))
    rig.injector.calls.clear()
    rig.arbiter.host_input()
    assert sorted(map(str, rig.injector.calls)) == sorted(
        map(str, [("key", keymap.SHIFT, False), ("button", "left", False), ("move", 5, 5)])
    )
    assert rig.arbiter.holding() == {"ann": ([], []), "bob": ([], [])}
    rig.clock.advance(499 * MS)
    assert rig.key("ann", "KeyA", "a") == "host_active"
    assert (
        rig.send("bob", MouseButtonEvent(action="down", button="left", x=0.5, y=0.5))
        == "host_active"
    )
    assert rig.send("bob", MouseMove(x=0.2, y=0.2)) == "moved"  # cursors still move (drawn)
    rig.clock.advance(1 * MS)
    assert rig.key("ann", "KeyA", "a") == "injected"


@pytest.mark.parametrize(
    ("presses", "mods"),
    [
        ([("ControlLeft", "Control"), ("AltLeft", "Alt"), ("Delete", "Delete")], {}),
        ([("Delete", "Delete")], {"ctrl": True, "alt": True}),  # claimed, never pressed
        ([("Delete", "Delete")], {"accel": True, "alt": True}),  # accel is Ctrl here
        ([("MetaLeft", "Meta"), ("KeyL", "l")], {}),
        ([("MetaLeft", "Meta"), ("AltLeft", "Alt"), ("Escape", "Escape")], {}),
        (
            [
                ("ControlLeft", "Control"),
                ("ShiftLeft", "Shift"),
                ("MetaLeft", "Meta"),
                ("KeyQ", "Q"),
            ],
            {},
        ),
    ],
)
def test_blocked_combinations_never_reach_the_display(
    presses: list[tuple[str, str]], mods: dict[str, bool]
) -> None:
    rig = Rig()
    outcomes = [rig.key("ann", code, key, **mods) for code, key in presses]
    assert outcomes[-1] == "blocked"
    last = keymap.keysym_for(*presses[-1])
    assert all(c[1] != last for c in rig.key_calls())


def test_accel_from_a_mac_viewer_is_ctrl_on_x11() -> None:
    rig = Rig()
    rig.key("ann", "MetaLeft", "Meta", meta=True, accel=True)
    rig.key("ann", "KeyC", "c", meta=True, accel=True)
    rig.key("ann", "KeyC", "c", "up", meta=True, accel=True)
    rig.key("ann", "MetaLeft", "Meta", "up")
    assert rig.key_calls() == [
        ("key", CTRL, True),
        ("key", ord("c"), True),
        ("key", ord("c"), False),
        ("key", CTRL, False),
    ]


def test_claimed_modifiers_are_pressed_around_the_key_only() -> None:
    rig = Rig()
    rig.key("ann", "KeyV", "v", accel=True, shift=True)
    rig.key("ann", "KeyV", "v", "up")
    assert rig.key_calls() == [
        ("key", CTRL, True),
        ("key", SHIFT, True),
        ("key", ord("v"), True),
        ("key", ord("v"), False),
        ("key", SHIFT, False),
        ("key", CTRL, False),
    ]


def test_the_watchdog_releases_what_is_held_5_s_without_activity() -> None:
    rig = Rig()
    rig.key("ann", "KeyA", "a")
    rig.send("bob", MouseButtonEvent(action="down", button="left", x=0.5, y=0.5))
    rig.clock.advance(4000 * MS)
    rig.key("ann", "KeyA", "a")  # auto-repeat: still being held on purpose
    rig.send("bob", MouseMove(x=0.6, y=0.6))  # dragging: still being held on purpose
    rig.clock.advance(4999 * MS)
    rig.arbiter.tick()
    assert rig.arbiter.holding() == {"ann": (["KeyA"], []), "bob": ([], ["left"])}
    rig.clock.advance(1 * MS)
    rig.arbiter.tick()
    assert rig.arbiter.holding() == {"ann": ([], []), "bob": ([], [])}
    assert rig.injector.calls[-3:] == [
        ("key", ord("a"), False),
        ("button", "left", False),
        ("move", 5, 5),
    ]


def test_revoke_releases_what_the_controller_holds_and_counts_its_events() -> None:
    rig = Rig()
    rig.key("ann", "ShiftLeft", "Shift")
    rig.tap("ann", "a")
    rig.grants.revoke("ann")
    assert rig.key_calls()[-1] == ("key", SHIFT, False)
    assert rig.ended == [("ann", 3)]
    assert rig.tap("ann", "b") == ["not_granted", "not_granted"]


def test_emergency_revoke_releases_everything_everyone_holds() -> None:
    rig = Rig()
    rig.key("ann", "ControlLeft", "Control")
    rig.send("bob", MouseButtonEvent(action="down", button="right", x=0.5, y=0.5))
    rig.arbiter.emergency_revoke()
    assert ("key", CTRL, False) in rig.injector.calls
    assert ("button", "right", False) in rig.injector.calls
    assert rig.grants.controllers() == []


def test_another_controllers_press_waits_while_one_drags() -> None:
    rig = Rig()
    rig.send("ann", MouseButtonEvent(action="down", button="left", x=0.1, y=0.1))
    assert (
        rig.send("bob", MouseButtonEvent(action="down", button="left", x=0.9, y=0.9))
        == "pointer_busy"
    )
    assert rig.send("ann", MouseMove(x=0.2, y=0.2)) == "injected"  # the drag follows ann
    assert rig.send("bob", MouseMove(x=0.8, y=0.8)) == "moved"  # bob's cursor is only drawn
    assert {c.participant_id: (c.x, c.y) for c in rig.arbiter.cursors()} == {
        "ann": (0.2, 0.2),
        "bob": (0.8, 0.8),
    }


def test_scrolling_turns_deltas_into_notches_by_delta_mode() -> None:
    rig = Rig()
    rig.send("ann", MouseMove(x=0.5, y=0.5))
    assert rig.send("ann", MouseScroll(delta_y=40)) == "accumulated"
    assert rig.send("ann", MouseScroll(delta_y=60)) == "injected"
    rig.send("ann", MouseScroll(delta_y=-3, delta_x=6, delta_mode=1))
    rig.send("ann", MouseScroll(delta_y=1, delta_mode=2))
    scrolls = [c for c in rig.injector.calls if c[0] == "scroll"]
    assert scrolls == [("scroll", 0, 1), ("scroll", 2, -1), ("scroll", 0, 10)]


def test_the_scroll_accumulator_caps_one_event() -> None:
    assert ScrollAccumulator().add(0, 1e5, 0) == (0, 10)


def test_nothing_is_injected_when_the_injector_cannot_inject() -> None:
    clock = FrozenClock()
    grants = GrantAuthority(clock=clock)
    injector = RecordingInjector(can_inject=False)
    arbiter = Arbiter(grants=grants, injector=injector, clock=clock, rect=CaptureRect(0, 0, 10, 10))
    assert not arbiter.enable()
    grants.join("ann", "Ann")
    grants.request("ann")
    grants.grant("ann")
    assert (
        arbiter.submit("ann", InputMessage(timestamp=1, sequence=1, event=MouseMove(x=0, y=0)))
        == "not_granted"
    )
