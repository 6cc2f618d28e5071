"""The grant authority: local to the host, timed, revocable, never more than the maximum."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from keel.core.clock import FrozenClock
from keel.pairux.host.control import messages
from keel.pairux.host.control.arbitration import Arbiter, CaptureRect
from keel.pairux.host.control.grants import ControlState, GrantAuthority, GrantEvent, GrantRefused
from keel.pairux.host.control.injector import RecordingInjector

S = timedelta(seconds=1)


def authority(**kwargs: object) -> tuple[GrantAuthority, FrozenClock, list[GrantEvent]]:
    clock = FrozenClock()
    grants = GrantAuthority(clock=clock, **kwargs)  # type: ignore[arg-type]
    seen: list[GrantEvent] = []
    grants.subscribe(seen.append)
    for pid in ("ann", "bob", "cat", "dan"):
        grants.join(pid, pid.title())
    return grants, clock, seen


def test_a_request_prompts_the_host_and_lapses_unanswered_after_30_s() -> None:
    grants, clock, seen = authority()
    [event] = grants.request("ann")
    assert event.kind == "requested"
    assert event.expires_at == clock.now() + 30 * S
    assert [p.id for p in grants.pending()] == ["ann"]
    clock.advance(30 * S)
    assert grants.pending() == []
    [lapsed] = grants.tick()
    assert (lapsed.kind, lapsed.reason) == ("denied", "timeout")
    with pytest.raises(GrantRefused, match="no_request"):
        grants.grant("ann")
    assert [e.kind for e in seen] == ["requested", "denied"]


def test_nobody_is_granted_without_asking_and_the_host_saying_yes() -> None:
    grants, _, _ = authority()
    with pytest.raises(GrantRefused):
        grants.grant("ann")
    grants.request("ann")
    assert not grants.is_granted("ann")
    grants.grant("ann")
    assert grants.is_granted("ann")


def test_a_denied_viewer_must_wait_before_asking_again() -> None:
    grants, clock, _ = authority()
    grants.request("ann")
    grants.deny("ann")
    [event] = grants.request("ann")
    assert (event.kind, event.reason) == ("denied", "cooldown")
    clock.advance(10 * S)
    assert grants.request("ann")[0].kind == "requested"


def test_three_controllers_at_most_then_the_fourth_is_refused() -> None:
    grants, _, _ = authority()
    for pid in ("ann", "bob", "cat"):
        grants.request(pid)
        grants.grant(pid)
    [event] = grants.request("dan")
    assert (event.kind, event.reason) == ("denied", "full")
    grants.release("bob")
    grants.request("dan")
    grants.grant("dan")
    assert {p.id for p in grants.controllers()} == {"ann", "cat", "dan"}


def test_a_timed_grant_asks_to_be_reconfirmed_then_lapses_unless_extended() -> None:
    grants, clock, _ = authority(reconfirm_lead=60 * S)
    grants.request("ann")
    grants.grant("ann", duration=600 * S)
    clock.advance(539 * S)
    assert grants.tick() == []
    clock.advance(1 * S)
    [ask] = grants.tick()
    assert ask.kind == "reconfirm"
    grants.extend("ann", 600 * S)
    clock.advance(599 * S)
    assert grants.is_granted("ann")
    clock.advance(1 * S)
    assert not grants.is_granted("ann")  # before any tick: expiry is judged at the instant
    [lapsed] = grants.tick()
    assert (lapsed.kind, lapsed.reason) == ("revoked", "expired")


def test_emergency_revoke_ends_every_grant_and_every_prompt() -> None:
    grants, _, _ = authority()
    for pid in ("ann", "bob"):
        grants.request(pid)
        grants.grant(pid)
    grants.request("cat")
    events = grants.emergency_revoke()
    assert {(e.participant_id, e.reason) for e in events} == {
        ("ann", "emergency"),
        ("bob", "emergency"),
        ("cat", "emergency"),
    }
    assert grants.controllers() == []
    assert grants.pending() == []


def test_leaving_ends_the_grant_and_control_can_be_disabled_outright() -> None:
    grants, _, _ = authority()
    grants.request("ann")
    grants.grant("ann")
    [event] = grants.leave("ann")
    assert (event.kind, event.reason) == ("revoked", "disconnected")
    grants.allow_control = False
    assert grants.request("bob")[0].reason == "not-allowed"
    assert grants.participant("bob").state is ControlState.VIEW_ONLY  # type: ignore[union-attr]


PIDS = ("ann", "bob", "cat", "dan", "eve")


class GrantsAndInput(RuleBasedStateMachine):
    """Random requests, answers, revokes, releases, expiries and input: the invariants hold at
    every step."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock()
        self.grants = GrantAuthority(clock=self.clock, max_controllers=3)
        self.injector = RecordingInjector()
        self.arbiter = Arbiter(
            grants=self.grants,
            injector=self.injector,
            clock=self.clock,
            rect=CaptureRect(0, 0, 1280, 720),
        )
        self.arbiter.enable()
        self.seq = dict.fromkeys(PIDS, 0)
        # the model: who is granted, until when (None = open-ended)
        self.granted: dict[str, datetime | None] = {}
        for pid in PIDS:
            self.grants.join(pid, pid)

    def model_granted(self, pid: str) -> bool:
        if pid not in self.granted:
            return False
        until = self.granted[pid]
        return until is None or self.clock.now() < until

    def prune(self) -> None:
        self.granted = {p: u for p, u in self.granted.items() if self.model_granted(p)}

    @rule(pid=st.sampled_from(PIDS))
    def request(self, pid: str) -> None:
        self.grants.request(pid)

    @rule(pid=st.sampled_from(PIDS), minutes=st.none() | st.integers(1, 30))
    def grant(self, pid: str, minutes: int | None) -> None:
        self.prune()
        try:
            self.grants.grant(pid, duration=timedelta(minutes=minutes) if minutes else None)
        except GrantRefused:
            return
        assert len(self.granted) < 3
        self.granted[pid] = self.clock.now() + timedelta(minutes=minutes) if minutes else None

    @rule(pid=st.sampled_from(PIDS))
    def deny(self, pid: str) -> None:
        self.grants.deny(pid)

    @rule(pid=st.sampled_from(PIDS))
    def revoke(self, pid: str) -> None:
        self.grants.revoke(pid)
        self.granted.pop(pid, None)
        assert not self.grants.is_granted(pid)
        assert self.arbiter.holding().get(pid, ([], []))[0] == []
        assert self.arbiter.holding().get(pid, ([], []))[1] == []

    @rule(pid=st.sampled_from(PIDS))
    def release(self, pid: str) -> None:
        self.grants.release(pid)
        self.granted.pop(pid, None)

    @rule()
    def emergency(self) -> None:
        self.arbiter.emergency_revoke()
        self.granted.clear()
        assert all(
            keys == [] and buttons == [] for keys, buttons in self.arbiter.holding().values()
        )

    @rule(seconds=st.sampled_from([0.001, 0.3, 1.0, 29.0, 61.0, 600.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    @rule()
    def tick(self) -> None:
        self.arbiter.tick()
        self.prune()

    @rule(
        pid=st.sampled_from(PIDS),
        event=st.sampled_from(
            [
                messages.KeyEvent(action="down", key="a", code="KeyA"),
                messages.KeyEvent(action="up", key="a", code="KeyA"),
                messages.MouseButtonEvent(action="down", button="left", x=0.5, y=0.5),
                messages.MouseButtonEvent(action="up", button="left", x=0.5, y=0.5),
                messages.MouseMove(x=0.1, y=0.9),
            ]
        ),
        replay=st.booleans(),
    )
    def input(self, pid: str, event: messages.InputEvent, replay: bool) -> None:
        if not replay:
            self.seq[pid] += 1
        before = len(self.injector.calls)
        outcome = self.arbiter.submit(
            pid, messages.InputMessage(timestamp=1, sequence=self.seq[pid], event=event)
        )
        if not self.model_granted(pid):
            assert outcome == "not_granted"
            assert len(self.injector.calls) == before
        if outcome == "injected":
            assert self.grants.is_granted(pid)

    @invariant()
    def never_more_than_the_maximum(self) -> None:
        assert len(self.grants.controllers()) <= 3

    @invariant()
    def the_authority_agrees_with_the_model(self) -> None:
        for pid in PIDS:
            assert self.grants.is_granted(pid) == self.model_granted(pid), pid


GrantsAndInput.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_grants_and_input = GrantsAndInput.TestCase
