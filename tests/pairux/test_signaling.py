"""Signaling over real WebSockets (uvicorn on 127.0.0.1): routing stays inside a room, presence,
reconnects, host grace and transfer, host-decided roles, limits."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from keel.pairux.signaling import hub
from tests.pairux.conftest import Peer, Server, serving, settings


async def room_of(server: Server, viewers: int = 1) -> tuple[dict[str, Any], Peer, list[Peer]]:
    created = await server.create("Host")
    host = await server.peer(created)
    peers = []
    for n in range(viewers):
        peers.append(await server.peer(await server.join(created["room"]["code"], f"V{n}")))
    await host.settle()
    for peer in peers:
        await peer.settle()
    return created, host, peers


async def test_the_welcome_carries_identity_roster_and_fresh_turn_credentials(
    sqlite_server: Server,
) -> None:
    _created, host, (viewer,) = await room_of(sqlite_server)
    welcome = viewer.welcome
    assert welcome["you"]["role"] == "viewer"
    assert welcome["room"]["hostId"] == host.id
    assert "code" not in welcome["room"]
    assert host.welcome["room"]["code"]
    assert [p["id"] for p in welcome["participants"]] == [host.id]
    stun, relay = welcome["iceServers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    assert relay["username"].endswith(":" + viewer.id)
    assert relay["urls"] == [
        "turn:127.0.0.1:3478?transport=udp",
        "turn:127.0.0.1:3478?transport=tcp",
    ]


async def test_messages_go_only_to_their_target(sqlite_server: Server) -> None:
    _created, host, (v1, v2) = await room_of(sqlite_server, viewers=2)
    await host.send({"type": "offer", "to": v1.id, "sdp": "v=0 offer"})
    assert await v1.expect("offer") == {"type": "offer", "sdp": "v=0 offer", "from": host.id}
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
    await v1.send({"type": "ice", "to": host.id, "candidate": candidate})
    got = await host.expect("ice")
    assert got["from"] == v1.id
    assert got["candidate"]["candidate"] == candidate["candidate"]
    await v1.send({"type": "ice", "to": host.id, "candidate": None})  # end of candidates
    assert (await host.expect("ice"))["candidate"] is None
    await v1.send({"type": "restart", "to": host.id})
    assert await host.expect("restart") == {"type": "restart", "from": v1.id}
    assert await v2.settle() == []
    # Viewers reach the host, not each other; nobody reaches themselves.
    await v1.send({"type": "offer", "to": v2.id, "sdp": "x"})
    assert (await v1.expect("error"))["code"] == "peer_not_allowed"
    await host.send({"type": "offer", "to": host.id, "sdp": "x"})
    assert (await host.expect("error"))["code"] == "unknown_peer"
    assert await v2.settle() == []


async def test_two_rooms_never_see_each_others_messages(sqlite_server: Server) -> None:
    _a, host_a, (viewer_a,) = await room_of(sqlite_server)
    _b, host_b, (viewer_b,) = await room_of(sqlite_server)
    for sender, stranger in ((viewer_a, host_b), (host_a, viewer_b), (host_b, viewer_a)):
        await sender.send({"type": "offer", "to": stranger.id, "sdp": "x"})
        assert (await sender.expect("error"))["code"] == "unknown_peer"
        await sender.send({"type": "control-grant", "participant": stranger.id})
        assert (await sender.expect("error"))["code"] in ("unknown_participant", "not_host")
    await viewer_a.send({"type": "offer", "to": host_a.id, "sdp": "x", "from": host_b.id})
    error = await viewer_a.expect("error")
    assert error["code"] == "invalid_message"
    assert "from" in error["message"]
    for peer in (host_a, host_b, viewer_b):
        assert await peer.settle() == []


async def test_presence_join_away_back_and_leave(server: Server) -> None:
    created, host, () = await room_of(server, viewers=0)
    joined = await server.join(created["room"]["code"], "Vic")
    viewer = await server.peer(joined)
    assert (await host.expect("presence"))["event"] == "join"
    await viewer.ws.close()
    away = await host.expect("presence")
    assert (away["event"], away["id"], away["connected"]) == ("away", viewer.id, False)
    again = await server.peer(joined)  # the same token within the grace period
    assert again.welcome["you"]["id"] == viewer.id
    assert (await host.expect("presence"))["event"] == "back"
    await again.send({"type": "leave"})
    assert await again.closed_with() == 1000
    assert (await host.expect("presence"))["event"] == "leave"
    gone = await sqlite_peer_refused(server, joined["token"])
    assert gone == hub.CLOSE_UNAUTHENTICATED


async def sqlite_peer_refused(server: Server, token: str) -> int | None:
    peer = await server.connect()
    await peer.send({"type": "hello", "token": token})
    error = await peer.expect("error")
    assert error["code"] == "invalid_token"
    return await peer.closed_with()


async def test_a_newer_connection_replaces_the_older(sqlite_server: Server) -> None:
    created, host, () = await room_of(sqlite_server, viewers=0)
    joined = await sqlite_server.join(created["room"]["code"])
    first = await sqlite_server.peer(joined)
    second = await sqlite_server.peer(joined)
    assert await first.closed_with() == hub.CLOSE_REPLACED
    await host.send({"type": "offer", "to": second.id, "sdp": "x"})
    assert (await second.expect("offer"))["from"] == host.id


async def test_past_the_grace_period_a_participant_is_gone(tmp_path: Path) -> None:
    async with serving(settings(reconnect_grace_seconds=0.2), tmp_path) as server:
        created, host, (viewer,) = await room_of(server)
        await viewer.ws.close()
        assert (await host.expect("presence"))["event"] == "away"
        assert (await host.expect("presence", wait=5))["event"] == "leave"
        assert await sqlite_peer_refused(server, viewer.token) == hub.CLOSE_UNAUTHENTICATED
        looked = await server.http.get(
            f"/pairux/api/rooms/{created['room']['id']}",
            headers={"Authorization": f"Bearer {created['token']}"},
        )
        assert [p["id"] for p in looked.json()["participants"]] == [host.id]


async def test_hello_comes_first_with_a_valid_token(tmp_path: Path) -> None:
    async with serving(settings(hello_timeout_seconds=0.3), tmp_path) as server:
        for first in ({"type": "offer", "to": "a" * 32, "sdp": "x"}, "garbage", {"type": "hello"}):
            peer = await server.connect()
            await peer.send(first)
            assert (await peer.expect("error"))["code"] in ("hello_expected", "invalid_message")
            assert await peer.closed_with() == hub.CLOSE_UNAUTHENTICATED
        silent = await server.connect()
        assert (await silent.expect("error"))["code"] == "hello_timeout"
        assert await silent.closed_with() == hub.CLOSE_UNAUTHENTICATED
        assert await sqlite_peer_refused(server, "pxp_" + "x" * 43) == hub.CLOSE_UNAUTHENTICATED


async def test_only_the_host_grants_control_and_the_server_relays_it(server: Server) -> None:
    created, host, (v1, v2) = await room_of(server, viewers=2)
    # A viewer cannot make itself (or anyone) a controller.
    await v1.send({"type": "control-grant", "participant": v1.id})
    assert (await v1.expect("error"))["code"] == "not_host"
    assert await host.settle() == []
    await v1.send({"type": "control-request"})
    request = await host.expect("control-request")
    assert request == {"type": "control-request", "from": v1.id, "name": "V0"}
    assert await v2.settle() == []
    await host.send({"type": "control-grant", "participant": v1.id})
    role = {"type": "role", "participant": v1.id, "role": "controller", "by": host.id}
    for peer in (host, v1, v2):
        assert await peer.expect("role") == role
    # A controller cannot take another's control; it can give its own back.
    await host.send({"type": "control-grant", "participant": v2.id})
    for peer in (host, v1, v2):
        await peer.expect("role")
    await v1.send({"type": "control-revoke", "participant": v2.id})
    assert (await v1.expect("error"))["code"] == "not_host"
    await v1.send({"type": "control-revoke", "participant": v1.id})
    assert (await v2.expect("role"))["role"] == "viewer"
    await v1.settle()
    await v1.send({"type": "control-request"})
    await host.settle()
    await host.send({"type": "control-revoke", "participant": v1.id})  # deny the request
    assert (await v1.expect("control-denied"))["by"] == host.id
    looked = await server.http.get(
        f"/pairux/api/rooms/{created['room']['id']}",
        headers={"Authorization": f"Bearer {created['token']}"},
    )
    roles = {p["id"]: p["role"] for p in looked.json()["participants"]}
    assert roles == {host.id: "host", v1.id: "viewer", v2.id: "controller"}


async def test_the_controller_limit_holds(tmp_path: Path) -> None:
    async with serving(settings(max_controllers=1), tmp_path) as server:
        _created, host, (v1, v2) = await room_of(server, viewers=2)
        await host.send({"type": "control-grant", "participant": v1.id})
        await host.expect("role")
        await host.send({"type": "control-grant", "participant": v2.id})
        assert (await host.expect("error"))["code"] == "grant_refused"


async def test_the_host_hands_the_room_over_and_controllers_lose_control(server: Server) -> None:
    _created, host, (v1, v2) = await room_of(server, viewers=2)
    await host.send({"type": "control-grant", "participant": v1.id})
    for peer in (host, v1, v2):
        await peer.expect("role")
    await v1.send({"type": "host-transfer", "participant": v1.id})
    assert (await v1.expect("error"))["code"] == "not_host"
    await host.send({"type": "host-transfer", "participant": v2.id})
    for peer in (host, v1, v2):
        moved = await peer.expect("host")
        assert moved["participant"] == v2.id
        demoted = {m["participant"] for m in await peer.settle() if m["type"] == "role"}
        assert demoted == {host.id, v1.id}
    await v2.send({"type": "offer", "to": v1.id, "sdp": "x"})  # v2 is the host now
    assert (await v1.expect("offer"))["from"] == v2.id


async def test_a_host_away_past_its_grace_passes_the_room_on(tmp_path: Path) -> None:
    async with serving(settings(host_grace_seconds=0.3), tmp_path) as server:
        _created, host, (v1, v2) = await room_of(server, viewers=2)
        await host.ws.close()
        assert (await v1.expect("presence"))["event"] == "away"
        assert (await v1.expect("host-away"))["graceSeconds"] == 0.3
        seen = []
        while not any(m["type"] == "host" for m in seen):
            seen.append(await v1.recv(wait=5))
        assert seen[-1] == {"type": "host", "participant": v1.id, "reason": "host-grace"}
        await v1.send({"type": "offer", "to": v2.id, "sdp": "x"})
        assert (await v2.until("offer"))["from"] == v1.id


async def test_a_sender_past_its_limits_gets_errors_then_4429(tmp_path: Path) -> None:
    config = settings(messages_per_second=1, message_burst=5, rate_limit_strikes=3)
    async with serving(config, tmp_path) as server:
        _created, host, (viewer,) = await room_of(server)
        for _ in range(12):
            await viewer.send({"type": "pong"})
        codes = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                codes.append((await viewer.expect("error"))["code"])
        assert codes == ["rate_limited"] * 3
        assert viewer.ws.close_code == hub.CLOSE_RATE_LIMITED
        assert (await host.expect("presence"))["event"] == "away"


async def test_oversized_and_malformed_frames_get_an_error_and_the_socket_stays(
    sqlite_server: Server,
) -> None:
    _created, host, (viewer,) = await room_of(sqlite_server)
    await viewer.send({"type": "offer", "to": host.id, "sdp": "x" * 17_000})
    assert (await viewer.expect("error"))["code"] == "too_large"
    for bad, hint in (
        ("{", "not JSON"),
        ("[]", "JSON object"),
        ('{"type": 5}', "no type"),
        ('{"type": "teleport"}', "unknown message type"),
        ('{"type": "offer", "to": "x", "sdp": "v"}', "to"),
        ('{"type": "stats", "fps": "30"}', "fps"),
        ('{"type": "stats", "packetLoss": 2}', "packetLoss"),
    ):
        await viewer.send(bad)
        error = await viewer.expect("error")
        assert error["code"] == "invalid_message", error
        assert hint in error["message"], error
    await viewer.ws.send(b"\x00binary")
    assert (await viewer.expect("error"))["code"] == "invalid_message"
    await viewer.send({"type": "offer", "to": host.id, "sdp": "still here"})
    assert (await host.expect("offer"))["sdp"] == "still here"


async def test_a_silent_connection_is_pinged_then_closed(tmp_path: Path) -> None:
    config = settings(heartbeat_interval_seconds=0.1, heartbeat_timeout_seconds=0.4)
    async with serving(config, tmp_path) as server:
        created = await server.create()
        peer = await server.peer(created)
        raw = await asyncio.wait_for(peer.ws.recv(), 2)
        assert '"ping"' in str(raw)
        assert await peer.closed_with() == hub.CLOSE_HEARTBEAT


async def test_quality_reports_become_metrics(sqlite_server: Server) -> None:
    _created, _host, (viewer,) = await room_of(sqlite_server)
    report = {
        "type": "stats",
        "iceGatheringMs": 120,
        "candidateType": "relay",
        "fps": 29.5,
        "width": 1280,
        "height": 720,
        "rttMs": 35,
        "packetLoss": 0.01,
        "inputLatencyMs": 18,
    }
    before = await metric(sqlite_server, 'pairux_selected_candidates_total{type="relay"}')
    await viewer.send(report)
    await viewer.send(report)  # the same pair again: counted once
    assert await viewer.settle() == []
    after = await metric(sqlite_server, 'pairux_selected_candidates_total{type="relay"}')
    assert after == before + 1
    text = (await sqlite_server.http.get("/metrics")).text
    for name in (
        "pairux_ice_gathering_seconds_count",
        "pairux_viewer_fps_count",
        "pairux_rtt_seconds_count",
        "pairux_packet_loss_ratio_count",
        "pairux_input_latency_seconds_count",
        "pairux_rooms_active",
        'pairux_connections{role="viewer"}',
    ):
        assert name in text, name


async def metric(server: Server, sample: str) -> float:
    for line in (await server.http.get("/metrics")).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


async def test_ending_the_room_disconnects_everyone(sqlite_server: Server) -> None:
    created, host, (viewer,) = await room_of(sqlite_server)
    reply = await sqlite_server.http.delete(
        f"/pairux/api/rooms/{created['room']['id']}",
        headers={"Authorization": f"Bearer {created['token']}"},
    )
    assert reply.status_code == 204
    for peer in (host, viewer):
        assert (await peer.expect("room-ended"))["type"] == "room-ended"
        assert await peer.closed_with() == hub.CLOSE_ROOM_ENDED


async def test_readyz_shows_the_hub(sqlite_server: Server) -> None:
    await room_of(sqlite_server)
    ready = (await sqlite_server.http.get("/readyz")).json()
    assert ready["checks"] == {"pairux": True}
    assert ready["detail"]["pairux"]["connections"] == 2
