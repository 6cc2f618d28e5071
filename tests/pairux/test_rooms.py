"""The room rules: capacity per topology, who grants, who succeeds the host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keel.core.errors import BadRequest
from keel.pairux import rooms
from keel.pairux.errors import NotHost, RoomFull
from keel.pairux.rooms import Capacity, Participant, Role, Topology

P2P_ONLY = Capacity(3, 25, 10, 200, sfu_available=False)
WITH_SFU = Capacity(3, 25, 10, 200, sfu_available=True)
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def person(pid: str, role: Role, *, account: str | None = None, minute: int = 0) -> Participant:
    return Participant(pid, "r", pid, role, account, T0 + timedelta(minutes=minute))


def test_without_an_sfu_p2p_takes_25_viewers_then_refuses() -> None:
    assert rooms.admit(Topology.P2P, 24, P2P_ONLY) is Topology.P2P
    with pytest.raises(RoomFull, match="no SFU"):
        rooms.admit(Topology.P2P, 25, P2P_ONLY)


def test_with_an_sfu_a_room_moves_past_the_threshold_and_stays() -> None:
    assert rooms.admit(Topology.P2P, 9, WITH_SFU) is Topology.P2P
    assert rooms.admit(Topology.P2P, 10, WITH_SFU) is Topology.SFU
    assert rooms.admit(Topology.SFU, 0, WITH_SFU) is Topology.SFU
    with pytest.raises(RoomFull):
        rooms.admit(Topology.SFU, 200, WITH_SFU)


def test_only_the_host_grants_and_only_to_a_viewer_within_the_limit() -> None:
    host, viewer = person("h", Role.HOST), person("v", Role.VIEWER)
    controller = person("c", Role.CONTROLLER)
    rooms.check_grant(host, viewer, 2, 3)
    with pytest.raises(NotHost):
        rooms.check_grant(controller, viewer, 0, 3)
    with pytest.raises(NotHost):
        rooms.check_grant(viewer, viewer, 0, 3)  # nobody grants themselves
    with pytest.raises(rooms.GrantRefused):
        rooms.check_grant(host, viewer, 3, 3)
    with pytest.raises(rooms.GrantRefused):
        rooms.check_grant(host, controller, 0, 3)


def test_the_host_revokes_anyone_and_a_controller_only_itself() -> None:
    host, controller = person("h", Role.HOST), person("c", Role.CONTROLLER)
    other = person("d", Role.CONTROLLER)
    rooms.check_revoke(host, controller)
    rooms.check_revoke(controller, controller)
    with pytest.raises(NotHost):
        rooms.check_revoke(controller, other)


def test_an_account_succeeds_before_a_guest_then_the_earliest() -> None:
    guest = person("g", Role.VIEWER, minute=0)
    late_account = person("b", Role.VIEWER, account="acc", minute=5)
    early_account = person("a", Role.CONTROLLER, account="acc", minute=3)
    assert rooms.successor([guest, late_account, early_account]) == early_account
    assert rooms.successor([guest]) == guest
    assert rooms.successor([]) is None


@pytest.mark.parametrize("name", ["", "   ", "\x00\x07", "x" * 65])
def test_display_names_must_have_something_printable_and_fit(name: str) -> None:
    with pytest.raises(BadRequest):
        rooms.clean_display_name(name, max_length=64)


def test_display_names_lose_control_characters() -> None:
    assert rooms.clean_display_name("  Ana\x1b[31m \n", max_length=64) == "Ana[31m"
