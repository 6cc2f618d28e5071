"""Hypothesis throws random frames at the signaling socket from a viewer: JSON of any shape,
garbage, oversized frames, unknown types, forged ``from``, targets in another room, grants and
transfers it may not make. Nothing crashes, every bad frame gets an error and the socket stays
open, nothing reaches another room, and no role changes without the host."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.pairux.bootstrap import Pairux
from keel.pairux.rooms import Role
from keel.pairux.signaling.messages import TYPES
from tests.pairux import conftest
from tests.pairux.conftest import Peer, Server


@dataclass
class Rooms:
    server: Server
    host_a: Peer
    attacker: Peer
    bystander: Peer
    host_b: Peer
    viewer_b: Peer


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[Rooms]:
    config = conftest.settings(messages_per_second=10_000, message_burst=10_000)
    config = config.model_copy(update={"bytes_per_second": 2**30, "byte_burst": 2**30})
    async with conftest.serving(config, tmp_path) as server:
        a = await server.create("A")
        b = await server.create("B")
        host_a, host_b = await server.peer(a), await server.peer(b)
        attacker = await server.peer(await server.join(a["room"]["code"], "Mallory"))
        bystander = await server.peer(await server.join(a["room"]["code"], "Bob"))
        viewer_b = await server.peer(await server.join(b["room"]["code"], "Carol"))
        for peer in (host_a, host_b, attacker, bystander, viewer_b):
            await peer.settle()
        yield Rooms(server, host_a, attacker, bystander, host_b, viewer_b)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
target = st.integers(min_value=0, max_value=6)  # an index into the participants, or junk
fields = {
    "to": target,
    "participant": target,
    "from": target,
    "sdp": st.text(max_size=40) | st.just("v=0"),
    "candidate": st.none()
    | st.fixed_dictionaries(
        {"candidate": st.text(max_size=30)}, optional={"sdpMid": st.text(max_size=4)}
    )
    | json_values,
    "token": st.text(max_size=50),
    "fps": json_values,
    "candidateType": st.sampled_from(["host", "srflx", "relay", "tcp", ""]) | json_values,
    "packetLoss": st.floats() | st.integers(),
    "extra": json_values,
}
message = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(TYPES - {"leave"})) | st.text(max_size=12)},
    optional=fields,
)
frame = (
    message.map(lambda m: ("message", m))
    | json_values.map(lambda v: ("raw", json.dumps(v)))
    | st.text(max_size=60).map(lambda t: ("raw", t))
    | st.just(("raw", json.dumps({"type": "offer", "to": "0" * 32, "sdp": "x" * 20_000})))
)


def resolve(value: Any, ids: list[str]) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(ids):
        return ids[value]
    return value


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(frame, min_size=1, max_size=6))
async def test_fuzzed_signaling_stays_in_its_room_and_changes_no_role(
    rooms: Rooms, frames: list[tuple[str, Any]]
) -> None:
    r = rooms
    ids = [r.host_a.id, r.attacker.id, r.bystander.id, r.host_b.id, r.viewer_b.id, "a" * 32]
    wired: Pairux = r.server.product.app.state.pairux
    roles_before = {
        pid: m.participant.role
        for live in wired.hub.rooms.values()
        for pid, m in live.members.items()
    }
    for kind, payload in frames:
        if kind == "message":
            payload = {key: resolve(value, ids) for key, value in payload.items()}
            await r.attacker.send(json.dumps(payload))
        else:
            await r.attacker.send(payload)
    # The attacker's socket is still open and answered everything it sent.
    replies = await r.attacker.settle()
    assert all(m["type"] == "error" for m in replies), replies
    # Nothing reached room B or the other viewer of room A.
    assert await r.host_b.settle() == []
    assert await r.viewer_b.settle() == []
    assert await r.bystander.settle() == []
    # The host heard only what a viewer may send it, stamped with the attacker's id.
    for got in await r.host_a.settle():
        assert got["type"] in ("offer", "answer", "ice", "restart", "control-request"), got
        assert got["from"] == r.attacker.id
    roles_after = {
        pid: m.participant.role
        for live in wired.hub.rooms.values()
        for pid, m in live.members.items()
    }
    assert roles_after == roles_before
    assert roles_after[r.attacker.id] is Role.VIEWER
