"""The rooms API over HTTP on SQLite and PostgreSQL: every endpoint, and its bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest

from keel.pairux import tokens
from keel.pairux.bootstrap import Pairux
from tests.pairux.conftest import Server, serving, settings

ROOMS = "/pairux/api/rooms"
JOIN = "/pairux/api/rooms/join"


def problem(reply: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    if code is not None:
        assert body["code"] == code, body
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_guest_creates_a_room_and_another_joins_by_code_and_by_invite(
    server: Server,
) -> None:
    created = await server.create("Hana")
    room = created["room"]
    assert tokens.CODE.match(room["code"])
    assert created["participant"]["role"] == "host"
    assert created["participant"]["guest"] is True
    assert created["token"].startswith("pxp_")
    assert "#invite=" in created["invite"]["url"]  # a fragment: never sent to a server
    assert room["code"] not in created["invite"]["url"]
    typed = room["code"].lower()[:3] + "-" + room["code"].lower()[3:]
    by_code = await server.join(typed, "Vic")
    assert by_code["participant"]["role"] == "viewer"
    assert "code" not in by_code["room"]
    by_invite = await server.http.post(
        JOIN, json={"display_name": "Ines", "invite": created["invite"]["token"]}
    )
    assert by_invite.status_code == 201
    looked = await server.http.get(f"{ROOMS}/{room['id']}", headers=bearer(created["token"]))
    assert looked.status_code == 200
    body = looked.json()
    assert body["room"]["code"] == room["code"]
    assert [p["name"] for p in body["participants"]] == ["Hana", "Vic", "Ines"]
    assert [p["role"] for p in body["participants"]] == ["host", "viewer", "viewer"]
    assert body["room"]["topology"] == "p2p"
    as_viewer = await server.http.get(f"{ROOMS}/{room['id']}", headers=bearer(by_code["token"]))
    assert "code" not in as_viewer.json()["room"]


async def test_an_account_hosts_and_joins_under_its_name(server: Server) -> None:
    wired: Pairux = server.product.app.state.pairux
    _account, key = await wired.store.create_account("Ada")
    created = await server.http.post(ROOMS, json={"display_name": "Ada"}, headers=bearer(key))
    assert created.status_code == 201
    assert created.json()["participant"]["guest"] is False
    joined = await server.http.post(
        JOIN,
        json={"display_name": "Ada", "code": created.json()["room"]["code"]},
        headers=bearer(key),
    )
    assert joined.json()["participant"]["guest"] is False
    unknown = await server.http.post(
        ROOMS, json={"display_name": "x"}, headers=bearer(tokens.new_account_key())
    )
    problem(unknown, 401, "invalid_account_key")


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({}, {}, 400),
        ({"display_name": ""}, {}, 400),
        ({"display_name": "   "}, {}, 400),
        ({"display_name": "\x00"}, {}, 400),
        ({"display_name": "x" * 65}, {}, 400),
        ({"display_name": 5}, {}, 400),
        ({"display_name": "a", "role": "host"}, {}, 400),
        ("not json", {}, 400),
        ([1], {}, 400),
        ({"display_name": "a"}, {"Authorization": "Basic abc"}, 401),
        ({"display_name": "a"}, {"Authorization": "Bearer"}, 401),
        ({"display_name": "a"}, {"Authorization": "Bearer pxp_" + "a" * 43}, 401),
    ],
)
async def test_create_refuses_bad_input_with_a_problem(
    server: Server, body: Any, headers: dict[str, str], status: int
) -> None:
    if isinstance(body, str):
        reply = await server.http.post(
            ROOMS, content=body, headers={**headers, "content-type": "application/json"}
        )
    else:
        reply = await server.http.post(ROOMS, json=body, headers=headers)
    problem(reply, status)


async def test_join_refuses_bad_input_unknown_codes_and_forged_invites(server: Server) -> None:
    created = await server.create()
    code, invite = created["room"]["code"], created["invite"]["token"]
    for body in (
        {"display_name": "a"},
        {"display_name": "a", "code": code, "invite": invite},
        {"display_name": "", "code": code},
        {"display_name": "a", "code": 123456},
        {"display_name": "a", "code": "x" * 21},
        {"display_name": "a", "code": code, "extra": 1},
    ):
        problem(await server.http.post(JOIN, json=body), 400)
    wrong = "".join("A" if c != "A" else "B" for c in code)
    problem(
        await server.http.post(JOIN, json={"display_name": "a", "code": wrong}), 404, "unknown_code"
    )
    problem(
        await server.http.post(JOIN, json={"display_name": "a", "code": "0OI1!!"}),
        404,
        "unknown_code",
    )
    forged = invite[:-2] + ("AA" if invite[-2:] != "AA" else "BB")
    problem(
        await server.http.post(JOIN, json={"display_name": "a", "invite": forged}),
        404,
        "invalid_invite",
    )


async def test_only_the_host_regenerates_the_code_and_the_old_one_dies(server: Server) -> None:
    created = await server.create()
    room_id, old = created["room"]["id"], created["room"]["code"]
    viewer = await server.join(old)
    problem(
        await server.http.post(f"{ROOMS}/{room_id}/code", headers=bearer(viewer["token"])),
        403,
        "not_host",
    )
    problem(await server.http.post(f"{ROOMS}/{room_id}/code"), 401, "invalid_token")
    fresh = await server.http.post(f"{ROOMS}/{room_id}/code", headers=bearer(created["token"]))
    assert fresh.status_code == 200
    new = fresh.json()["code"]
    assert new != old
    assert tokens.CODE.match(new)
    problem(
        await server.http.post(JOIN, json={"display_name": "a", "code": old}), 404, "unknown_code"
    )
    await server.join(new)
    invite = await server.http.post(f"{ROOMS}/{room_id}/invites", headers=bearer(created["token"]))
    assert invite.status_code == 201
    assert "#invite=" in invite.json()["url"]


async def test_get_needs_a_token_of_that_room(server: Server) -> None:
    first, second = await server.create(), await server.create()
    room_id = first["room"]["id"]
    problem(await server.http.get(f"{ROOMS}/{room_id}"), 401, "invalid_token")
    problem(await server.http.get(f"{ROOMS}/{room_id}", headers=bearer("nope")), 401)
    other = await server.http.get(f"{ROOMS}/{room_id}", headers=bearer(second["token"]))
    problem(other, 404, "room_not_found")
    problem(await server.http.get(f"{ROOMS}/not-a-room", headers=bearer(first["token"])), 400)
    in_url = await server.http.get(f"{ROOMS}/{room_id}?token={first['token']}")
    problem(in_url, 401, "invalid_token")  # a token in a URL is never read


async def test_ending_a_room_is_the_hosts_and_kills_codes_and_tokens(server: Server) -> None:
    created = await server.create()
    room_id, code = created["room"]["id"], created["room"]["code"]
    viewer = await server.join(code)
    problem(await server.http.delete(f"{ROOMS}/{room_id}", headers=bearer(viewer["token"])), 403)
    ended = await server.http.delete(f"{ROOMS}/{room_id}", headers=bearer(created["token"]))
    assert ended.status_code == 204
    problem(await server.http.get(f"{ROOMS}/{room_id}", headers=bearer(created["token"])), 401)
    problem(await server.http.post(JOIN, json={"display_name": "a", "code": code}), 404)
    invite = created["invite"]["token"]
    problem(
        await server.http.post(JOIN, json={"display_name": "a", "invite": invite}),
        404,
        "invalid_invite",
    )


async def test_failed_code_joins_lock_the_address_out_even_for_a_right_code(
    tmp_path: Path,
) -> None:
    async with serving(settings(join_failures_per_ip=3), tmp_path) as server:
        created = await server.create()
        for _ in range(3):  # the limit: three failures a window
            reply = await server.http.post(JOIN, json={"display_name": "a", "code": "ZZZZZZ"})
            problem(reply, 404, "unknown_code")
        locked = await server.http.post(JOIN, json={"display_name": "a", "code": "ZZZZZZ"})
        assert problem(locked, 429, "joins_locked")["retry_after"] >= 1
        right = await server.http.post(
            JOIN, json={"display_name": "a", "code": created["room"]["code"]}
        )
        problem(right, 429, "joins_locked")
        invite = created["invite"]["token"]  # an invite cannot be guessed: not locked
        assert (
            await server.http.post(JOIN, json={"display_name": "a", "invite": invite})
        ).status_code == 201


async def test_a_full_p2p_room_refuses_with_409(tmp_path: Path) -> None:
    async with serving(settings(p2p_max_viewers=2, sfu_threshold_viewers=2), tmp_path) as server:
        created = await server.create()
        code = created["room"]["code"]
        await server.join(code)
        await server.join(code)
        full = await server.http.post(JOIN, json={"display_name": "c", "code": code})
        assert "no SFU" in problem(full, 409, "room_full")["detail"]


async def test_with_livekit_a_room_moves_to_the_sfu_with_per_role_tokens(tmp_path: Path) -> None:
    secret = "livekit-secret-livekit-secret-32"
    config = settings(
        sfu_threshold_viewers=1,
        livekit_url="ws://127.0.0.1:7880",
        livekit_api_key="devkey",
        livekit_api_secret=secret,
    )
    async with serving(config, tmp_path) as server:
        created = await server.create()
        host = await server.peer(created)
        first = await server.join(created["room"]["code"])
        assert first["room"]["topology"] == "p2p"
        second = await server.join(created["room"]["code"])
        assert second["room"]["topology"] == "sfu"
        viewer = await server.peer(second)
        assert viewer.welcome["room"]["topology"] == "sfu"
        claims = jwt.decode(
            viewer.welcome["livekit"]["token"], secret, algorithms=["HS256"], audience=None
        )
        assert claims["sub"] == second["participant"]["id"]
        grant = claims["video"]
        assert grant["room"] == f"pairux-{created['room']['id']}"
        assert grant["roomJoin"] is True
        assert not grant.get("canPublish")
        assert not grant.get("canPublishData")
        seen = await host.settle()
        moved = [m for m in seen if m["type"] == "topology"]
        assert moved == [{"type": "topology", "topology": "sfu"}]
        host_token = next(m for m in seen if m["type"] == "livekit")["token"]
        host_grant = jwt.decode(host_token, secret, algorithms=["HS256"])["video"]
        assert host_grant["canPublish"] is True
        assert host_grant["canPublishData"] is True
