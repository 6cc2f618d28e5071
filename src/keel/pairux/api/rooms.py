"""Rooms over HTTP: create, join (by code or invite link), look, regenerate the code, end.

Every answer that admits someone carries its participant token once; the token then travels
in the ``Authorization`` header (HTTP) or the first WebSocket message, never in a URL.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from keel.pairux import metrics, rooms, tokens
from keel.pairux.api import deps
from keel.pairux.errors import InvalidInvite, NotHost, RoomEnded, RoomFull, UnknownCode
from keel.pairux.rooms import Participant, Role, Room, Status
from keel.pairux.store import Admission

router = APIRouter(tags=["rooms"])
RoomId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The room's id")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CreateRoom(_Body):
    display_name: Annotated[str, Field(min_length=1, max_length=200)]


class JoinRoom(_Body):
    display_name: Annotated[str, Field(min_length=1, max_length=200)]
    code: Annotated[str | None, Field(max_length=20, description="The 6-character join code")] = (
        None
    )
    invite: Annotated[
        str | None, Field(max_length=200, description="The invite token from an invite link")
    ] = None

    @model_validator(mode="after")
    def _one_way_in(self) -> Self:
        if (self.code is None) == (self.invite is None):
            raise ValueError("send exactly one of code and invite")
        return self


def _participant(p: Participant, *, connected: bool | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": p.id,
        "name": p.display_name,
        "role": p.role.value,
        "guest": p.is_guest,
    }
    if connected is not None:
        view["connected"] = connected
    return view


def _room(room: Room, *, host: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": room.id,
        "status": room.status.value,
        "topology": room.topology.value,
        "hostId": room.host_id,
    }
    if host:
        view["code"] = room.code
    return view


def _invite(request: Request, room_id: str) -> dict[str, Any]:
    wired = deps.pairux(request)
    expires_at = int(wired.clock.now().timestamp()) + wired.settings.invite_ttl_seconds
    token = wired.keys.invite(room_id, expires_at)
    # In the fragment, which browsers never send: the invite stays out of server logs.
    url = f"{wired.settings.public_url.rstrip('/')}/pairux/join#invite={token}"
    return {"url": url, "token": token, "expiresAt": expires_at}


def _admitted(admission: Admission) -> dict[str, Any]:
    host = admission.participant.role is Role.HOST
    return {
        "room": _room(admission.room, host=host),
        "participant": _participant(admission.participant),
        "token": admission.token,
        "ws": "/pairux/ws",
    }


@router.post(
    "/rooms",
    status_code=201,
    responses=deps.errors(401, 429),
    dependencies=[Depends(deps.limit_room_creation)],
)
async def create_room(request: Request, body: CreateRoom) -> dict[str, Any]:
    """Create a room; the caller becomes its host. Send an account key as the bearer to host
    as that account, or nothing to host as a guest. Returns the room with its join code, an
    invite link and the host's participant token (shown once)."""
    wired = deps.pairux(request)
    account = await deps.account(request)
    name = rooms.clean_display_name(body.display_name, max_length=wired.settings.display_name_max)
    admission = await wired.store.create_room(name, account.id if account else None)
    metrics.ROOMS_CREATED.inc()
    return {**_admitted(admission), "invite": _invite(request, admission.room.id)}


@router.post("/rooms/join", status_code=201, responses=deps.errors(401, 404, 409, 410, 429))
async def join_room(request: Request, body: JoinRoom) -> dict[str, Any]:
    """Join a live room as a viewer, by its join code or an invite token, with a display name
    (an account key as the bearer joins as that account). Failed code joins are limited per
    address and overall. Returns the participant token (shown once)."""
    wired = deps.pairux(request)
    account = await deps.account(request)
    name = rooms.clean_display_name(body.display_name, max_length=wired.settings.display_name_max)
    if body.invite is not None:
        room_id = wired.keys.open_invite(body.invite, now=int(wired.clock.now().timestamp()))
        room = await wired.store.room(room_id)
        if room is None or room.status is not Status.LIVE:
            raise InvalidInvite()
        via = "invite"
    else:
        assert body.code is not None
        guard, client = deps.guard(request), deps.client_id(request)
        guard.check(client)
        code = tokens.normalise_code(body.code)
        found = await wired.store.live_room_by_code(code) if tokens.CODE.match(code) else None
        if found is None:
            await guard.failed(client)
            raise UnknownCode()
        room, via = found, "code"
    try:
        admission = await wired.store.join(room.id, name, account.id if account else None)
    except RoomFull:
        metrics.ROOMS_FULL.inc()
        raise
    except RoomEnded as exc:
        raise (InvalidInvite() if via == "invite" else UnknownCode()) from exc
    metrics.JOINS.labels(via).inc()
    await wired.hub.admitted(admission.room, admission.participant)
    return _admitted(admission)


@router.get("/rooms/{room_id}", responses=deps.errors(401, 404))
async def get_room(request: Request, room_id: RoomId) -> dict[str, Any]:
    """The room as its participants see it: topology, host, everyone present with their role
    and whether they are connected. Needs a participant token of this room."""
    wired = deps.pairux(request)
    me, room = await deps.participant(request, room_id)
    connected = wired.hub.connected(room_id)
    present = await wired.store.present(room_id)
    return {
        "room": _room(room, host=me.role is Role.HOST),
        "you": _participant(me, connected=me.id in connected),
        "participants": [_participant(p, connected=p.id in connected) for p in present],
    }


async def _host(request: Request, room_id: str) -> Room:
    me, room = await deps.participant(request, room_id)
    if me.role is not Role.HOST:
        raise NotHost()
    return room


@router.post("/rooms/{room_id}/code", responses=deps.errors(401, 403, 404, 410))
async def regenerate_code(request: Request, room_id: RoomId) -> dict[str, str]:
    """A new join code for the room (host only); the old code stops working at once."""
    await _host(request, room_id)
    return {"code": await deps.pairux(request).store.regenerate_code(room_id)}


@router.post("/rooms/{room_id}/invites", status_code=201, responses=deps.errors(401, 403, 404))
async def new_invite(request: Request, room_id: RoomId) -> dict[str, Any]:
    """A fresh invite link for the room (host only)."""
    await _host(request, room_id)
    return _invite(request, room_id)


@router.delete("/rooms/{room_id}", status_code=204, responses=deps.errors(401, 403, 404))
async def end_room(request: Request, room_id: RoomId) -> Response:
    """End the room (host only): everyone is disconnected, the code and tokens stop working."""
    await _host(request, room_id)
    wired = deps.pairux(request)
    await wired.store.end_room(room_id)
    await wired.hub.end_room(room_id)
    return Response(status_code=204)
