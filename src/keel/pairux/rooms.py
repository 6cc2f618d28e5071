"""Rooms, participants and roles: the rules, with no storage and no web in them.

A room has one host, up to ``max_controllers`` controllers and viewers up to its topology's
capacity. The server *records* roles; it never decides a grant. The host agent decides who may
control its machine and reports it (``control-grant``/``control-revoke``); the server relays
that decision and refuses anyone else's (Jitsi's JSA-2020-0001: a remote side must never be
able to start control). The one change the server makes on its own is taking control *away*:
when the host changes, every controller becomes a viewer again, since the new host granted
nothing yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from keel.core.errors import BadRequest
from keel.pairux.errors import NotHost, RoomFull


class Role(StrEnum):
    HOST = "host"
    CONTROLLER = "controller"
    VIEWER = "viewer"


class Topology(StrEnum):
    P2P = "p2p"  # the host sends to every viewer (encode once, fan out)
    SFU = "sfu"  # LiveKit forwards the host's one upload


class Status(StrEnum):
    LIVE = "live"
    ENDED = "ended"


@dataclass(frozen=True)
class Room:
    id: str
    code: str | None
    status: Status
    topology: Topology
    host_id: str | None
    created_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Participant:
    id: str
    room_id: str
    display_name: str
    role: Role
    account_id: str | None
    joined_at: datetime
    left_at: datetime | None = None

    @property
    def is_guest(self) -> bool:
        return self.account_id is None


@dataclass(frozen=True)
class Capacity:
    """How many a room takes: controllers, and viewers (controllers included) per topology."""

    max_controllers: int
    p2p_max_viewers: int
    sfu_threshold_viewers: int
    sfu_max_viewers: int
    sfu_available: bool


def admit(topology: Topology, viewers: int, capacity: Capacity) -> Topology:
    """The room's topology once one more viewer joins a room of ``viewers`` (host excluded);
    RoomFull when it cannot take them. Without an SFU, P2P takes up to ``p2p_max_viewers``;
    with one, a room moves to it past ``sfu_threshold_viewers`` and stays there."""
    after = viewers + 1
    if topology is Topology.SFU:
        if after > capacity.sfu_max_viewers:
            raise RoomFull(f"The room is full ({capacity.sfu_max_viewers} viewers)")
        return Topology.SFU
    if capacity.sfu_available:
        if after <= capacity.sfu_threshold_viewers:
            return Topology.P2P
        if after <= capacity.sfu_max_viewers:
            return Topology.SFU
        raise RoomFull(f"The room is full ({capacity.sfu_max_viewers} viewers)")
    if after > capacity.p2p_max_viewers:
        raise RoomFull(
            f"The room is full: a peer-to-peer room takes {capacity.p2p_max_viewers} viewers "
            "and this server has no SFU configured"
        )
    return Topology.P2P


class GrantRefused(BadRequest):
    """The host's grant or revoke cannot apply to that participant."""

    code = "grant_refused"


def check_grant(actor: Participant, target: Participant, controllers: int, limit: int) -> None:
    """Whether ``actor`` may record a grant of control to ``target`` in a room that has
    ``controllers`` controllers. Only the host may; only a viewer can become a controller."""
    if actor.role is not Role.HOST:
        raise NotHost("Only the host grants control")
    if target.role is not Role.VIEWER:
        raise GrantRefused(f"The participant is the {target.role.value}, not a viewer")
    if controllers >= limit:
        raise GrantRefused(f"The room already has {limit} controllers")


def check_revoke(actor: Participant, target: Participant) -> None:
    """Whether ``actor`` may take control from ``target``: the host from anyone, a controller
    from itself (giving it back)."""
    if actor.role is not Role.HOST and actor.id != target.id:
        raise NotHost("Only the host revokes another participant's control")
    if target.role is not Role.CONTROLLER:
        raise GrantRefused("The participant has no control to revoke")


def successor(candidates: Sequence[Participant]) -> Participant | None:
    """Who takes over from a host that is gone: an account holder before a guest (a guest's
    name is unverified), then whoever joined first; None when nobody is left."""
    ranked = sorted(candidates, key=lambda p: (p.is_guest, p.joined_at, p.id))
    return ranked[0] if ranked else None


def clean_display_name(value: str, *, max_length: int) -> str:
    """A display name with surrounding space and control characters gone; BadRequest when
    nothing is left or it is longer than ``max_length``."""
    name = "".join(ch for ch in value if ch.isprintable()).strip()
    if not name:
        raise BadRequest("display_name must not be empty")
    if len(name) > max_length:
        raise BadRequest(f"display_name is longer than {max_length} characters")
    return name
