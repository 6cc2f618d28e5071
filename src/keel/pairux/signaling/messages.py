"""The signaling wire format: every message is a JSON object with a ``type``.

Client → server (validated strictly: unknown fields, wrong types and unknown types are refused
with an ``error`` frame; the connection stays open):

==================  ==============================================  ===========================
type                fields                                          who
==================  ==============================================  ===========================
hello               token                                           first message, everyone
offer / answer      to, sdp                                         to or from the host
ice                 to, candidate {candidate, sdpMid, ...} | null   to or from the host
restart             to                                              asks a peer for ICE restart
control-request     –                                               a viewer, to the host
control-grant       participant                                     the host only
control-revoke      participant                                     the host; a controller for
                                                                    itself
host-transfer       participant                                     the host only
stats               iceGatheringMs, candidateType, fps, width,      anyone
                    height, rttMs, packetLoss, inputLatencyMs
pong / leave        –                                               anyone
==================  ==============================================  ===========================

Server → client: ``welcome``, the relayed ``offer|answer|ice|restart`` with ``from`` set by
the server (a sender cannot name another), ``presence`` (join, away, back, leave), ``role``,
``host``, ``host-away``, ``control-request`` (to the host), ``topology``, ``livekit``,
``ice-servers``, ``ping``, ``room-ended`` and ``error {code, message}``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

ParticipantId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
_SDP_MAX = 15_000  # an SDP with every codec and candidate fits in 10 KiB


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Hello(_Message):
    type: Literal["hello"]
    token: Annotated[str, Field(max_length=200)]


class IceCandidate(_Message):
    candidate: Annotated[str, Field(max_length=2048)]
    sdpMid: Annotated[str, Field(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=1024)] | None = None
    usernameFragment: Annotated[str, Field(max_length=256)] | None = None


class Offer(_Message):
    type: Literal["offer"]
    to: ParticipantId
    sdp: Annotated[str, Field(min_length=1, max_length=_SDP_MAX)]


class Answer(_Message):
    type: Literal["answer"]
    to: ParticipantId
    sdp: Annotated[str, Field(min_length=1, max_length=_SDP_MAX)]


class Ice(_Message):
    type: Literal["ice"]
    to: ParticipantId
    candidate: IceCandidate | None  # null: end of candidates


class Restart(_Message):
    type: Literal["restart"]
    to: ParticipantId


class ControlRequest(_Message):
    type: Literal["control-request"]


class ControlGrant(_Message):
    type: Literal["control-grant"]
    participant: ParticipantId


class ControlRevoke(_Message):
    type: Literal["control-revoke"]
    participant: ParticipantId


class HostTransfer(_Message):
    type: Literal["host-transfer"]
    participant: ParticipantId


_Ms = Annotated[float, Field(ge=0, le=600_000, allow_inf_nan=False)]


class Stats(_Message):
    type: Literal["stats"]
    iceGatheringMs: _Ms | None = None
    candidateType: Literal["host", "srflx", "prflx", "relay"] | None = None
    fps: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] | None = None
    width: Annotated[int, Field(ge=1, le=16_384)] | None = None
    height: Annotated[int, Field(ge=1, le=16_384)] | None = None
    rttMs: _Ms | None = None
    packetLoss: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    inputLatencyMs: _Ms | None = None


class Pong(_Message):
    type: Literal["pong"]


class Leave(_Message):
    type: Literal["leave"]


Inbound = Annotated[
    Hello
    | Offer
    | Answer
    | Ice
    | Restart
    | ControlRequest
    | ControlGrant
    | ControlRevoke
    | HostTransfer
    | Stats
    | Pong
    | Leave,
    Field(discriminator="type"),
]
_INBOUND: TypeAdapter[Inbound] = TypeAdapter(Inbound)
TYPES = frozenset(
    {
        *("hello", "offer", "answer", "ice", "restart", "control-request", "control-grant"),
        *("control-revoke", "host-transfer", "stats", "pong", "leave"),
    }
)


class BadMessage(Exception):
    """A frame that is not a valid message; ``str()`` says why, for the error frame."""


def parse(text: str) -> Inbound:
    """The message in ``text``; BadMessage with a one-line reason otherwise."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadMessage("not JSON") from exc
    if not isinstance(raw, dict):
        raise BadMessage("a message is a JSON object with a type")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise BadMessage("the message has no type")
    if kind not in TYPES:
        raise BadMessage(f"unknown message type {kind[:40]!r}")
    try:
        return _INBOUND.validate_python(raw)
    except ValidationError as exc:
        raise BadMessage(_reason(exc)) from exc


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"][1:])  # [0] is the union member
    if first["type"] == "extra_forbidden":
        return f"unknown field {where!r}"
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
