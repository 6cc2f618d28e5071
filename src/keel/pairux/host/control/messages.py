"""The ``control`` data channel, as typed values: PairUX's wire format (reference §1.3-1.4) plus
what several controllers need (``control-denied``, ``cursors``).

Every message is one JSON object of at most 16 KiB with a ``type``. Parsing is strict: unknown
types and fields, coordinates outside 0-1 or not finite, strings where numbers belong, and
``click``/``dblclick``/``press`` actions (the viewer sends only down/up: a click doubled every
click in the original) are rejected. Nothing a peer sends makes the parser raise: the result
is a message or a :class:`Rejected`.

``participantId`` is accepted for compatibility but never trusted: who sent a message is the
peer connection it arrived on (:mod:`keel.pairux.host.control.channel`).

>>> parse_from_viewer(b'{"type":"control-request"}')
ControlRequest(type='control-request', participant_id=None, timestamp=None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

MAX_MESSAGE_BYTES: Final = 16 * 1024
_T = TypeVar("_T")

__all__ = [
    "MAX_MESSAGE_BYTES",
    "ControlDenied",
    "ControlGrant",
    "ControlRelease",
    "ControlRequest",
    "ControlRevoke",
    "CursorMessage",
    "Cursors",
    "HostMessage",
    "InputEvent",
    "InputMessage",
    "KeyEvent",
    "Modifiers",
    "MouseButtonEvent",
    "MouseMove",
    "MouseScroll",
    "ParticipantCursor",
    "Ping",
    "Pong",
    "Rejected",
    "ViewerMessage",
    "encode",
    "parse_from_host",
    "parse_from_viewer",
]

Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
"""A coordinate normalised against the shared surface: 0 is the left/top edge, 1 the other."""
MillisSinceEpoch = Annotated[float, Field(ge=0.0, le=1e14, allow_inf_nan=False)]
Sequence = Annotated[int, Field(ge=0, le=2**53 - 1)]
ScrollDelta = Annotated[float, Field(ge=-1e5, le=1e5, allow_inf_nan=False)]
ParticipantId = Annotated[str, Field(min_length=1, max_length=64)]
Button = Literal["left", "right", "middle"]
RevokeReason = Literal["host", "expired", "emergency", "released", "disconnected"]
DenyReason = Literal["host", "timeout", "cooldown", "full", "not-allowed"]


class _Wire(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, populate_by_name=True, serialize_by_alias=True
    )


# -- input events (inside ``input.event``) -----------------------------------------------------


class MouseMove(_Wire):
    type: Literal["mouse"] = "mouse"
    action: Literal["move"] = "move"
    x: Unit
    y: Unit


class MouseButtonEvent(_Wire):
    type: Literal["mouse"] = "mouse"
    action: Literal["down", "up"]
    button: Button
    x: Unit
    y: Unit


class MouseScroll(_Wire):
    """A wheel or trackpad scroll; DOM convention (positive ``deltaY`` scrolls down) in units
    of ``deltaMode``: 0 pixels, 1 lines, 2 pages."""

    type: Literal["mouse"] = "mouse"
    action: Literal["scroll"] = "scroll"
    x: Unit | None = None
    y: Unit | None = None
    delta_x: ScrollDelta = Field(default=0.0, alias="deltaX")
    delta_y: ScrollDelta = Field(default=0.0, alias="deltaY")
    delta_mode: Literal[0, 1, 2] = Field(default=0, alias="deltaMode")


class Modifiers(_Wire):
    """The modifier state the viewer saw; ``accel`` is "the platform shortcut key" (Cmd on a
    Mac viewer, Ctrl elsewhere) and becomes Ctrl on an X11 host."""

    ctrl: bool = False
    alt: bool = False
    shift: bool = False
    meta: bool = False
    accel: bool = False


class KeyEvent(_Wire):
    """A key going down or up: ``code`` is the physical key (DOM ``KeyboardEvent.code``),
    ``key`` what it typed on the viewer's layout."""

    type: Literal["keyboard"] = "keyboard"
    action: Literal["down", "up"]
    key: Annotated[str, Field(min_length=1, max_length=32)]
    code: Annotated[str, Field(max_length=32)] = ""
    modifiers: Modifiers = Modifiers()


MouseEvent = Annotated[MouseMove | MouseButtonEvent | MouseScroll, Field(discriminator="action")]
InputEvent = Annotated[MouseEvent | KeyEvent, Field(discriminator="type")]


# -- viewer -> host ------------------------------------------------------------------------------


class InputMessage(_Wire):
    type: Literal["input"] = "input"
    timestamp: MillisSinceEpoch
    sequence: Sequence
    event: InputEvent


class ControlRequest(_Wire):
    type: Literal["control-request"] = "control-request"
    participant_id: ParticipantId | None = Field(default=None, alias="participantId")
    timestamp: MillisSinceEpoch | None = None


class ControlRelease(_Wire):
    type: Literal["control-release"] = "control-release"
    participant_id: ParticipantId | None = Field(default=None, alias="participantId")
    timestamp: MillisSinceEpoch | None = None


class CursorMessage(_Wire):
    """Where a participant's pointer is over the shared surface (~60/s); drawn, never injected."""

    type: Literal["cursor"] = "cursor"
    participant_id: ParticipantId | None = Field(default=None, alias="participantId")
    x: Unit
    y: Unit
    visible: bool = True


class Ping(_Wire):
    type: Literal["ping"] = "ping"
    timestamp: MillisSinceEpoch | None = None


class Pong(_Wire):
    type: Literal["pong"] = "pong"
    timestamp: MillisSinceEpoch | None = None


# -- host -> viewer ------------------------------------------------------------------------------


class ControlGrant(_Wire):
    """Control granted; ``expires_at`` (ms since the epoch) when the host timed the grant."""

    type: Literal["control-grant"] = "control-grant"
    participant_id: ParticipantId | None = Field(default=None, alias="participantId")
    timestamp: MillisSinceEpoch | None = None
    expires_at: MillisSinceEpoch | None = None


class ControlRevoke(_Wire):
    type: Literal["control-revoke"] = "control-revoke"
    participant_id: ParticipantId | None = Field(default=None, alias="participantId")
    timestamp: MillisSinceEpoch | None = None
    reason: RevokeReason


class ControlDenied(_Wire):
    type: Literal["control-denied"] = "control-denied"
    participant_id: ParticipantId | None = Field(default=None, alias="participantId")
    timestamp: MillisSinceEpoch | None = None
    reason: DenyReason = "host"


class ParticipantCursor(_Wire):
    id: ParticipantId
    name: Annotated[str, Field(max_length=64)]
    x: Unit
    y: Unit


class Cursors(_Wire):
    """Every participant's pointer, so each viewer can draw all of them with their names."""

    type: Literal["cursors"] = "cursors"
    participants: Annotated[list[ParticipantCursor], Field(max_length=64)]


ViewerMessage = InputMessage | ControlRequest | ControlRelease | CursorMessage | Ping | Pong
HostMessage = ControlGrant | ControlRevoke | ControlDenied | Cursors | Ping | Pong

_FROM_VIEWER: TypeAdapter[ViewerMessage] = TypeAdapter(
    Annotated[ViewerMessage, Field(discriminator="type")]
)
_FROM_HOST: TypeAdapter[HostMessage] = TypeAdapter(
    Annotated[HostMessage, Field(discriminator="type")]
)


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message was refused: ``code`` is stable (``too_large``, ``not_json``,
    ``unknown_type``, ``invalid``); ``detail`` is for logs, never echoed to peers verbatim."""

    code: str
    detail: str


def parse_from_viewer(data: bytes | str) -> ViewerMessage | Rejected:
    """One message a viewer sent on ``control``, or why it was refused. Never raises."""
    return _parse(_FROM_VIEWER, data)


def parse_from_host(data: bytes | str) -> HostMessage | Rejected:
    """One message the host sent (what a viewer parses), or why it was refused. Never raises."""
    return _parse(_FROM_HOST, data)


def encode(message: ViewerMessage | HostMessage) -> str:
    """The wire form: compact JSON with the wire's field names, unset optionals left out."""
    return message.model_dump_json(exclude_none=True)


def _parse(adapter: TypeAdapter[_T], data: bytes | str) -> _T | Rejected:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejected("too_large", f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        return _rejection(exc)
    except (ValueError, RecursionError) as exc:  # belt and braces: pydantic raises only the above
        return Rejected("invalid", type(exc).__name__)


def _rejection(exc: ValidationError) -> Rejected:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"type": "invalid", "loc": (), "msg": str(exc)}
    kind = str(first["type"])
    where = ".".join(str(part) for part in first["loc"])
    if kind == "json_invalid" or kind == "json_type":
        return Rejected("not_json", str(first["msg"]))
    if kind == "union_tag_invalid" and len(first["loc"]) <= 1:
        return Rejected("unknown_type", str(first["msg"]))
    if kind in {"union_tag_not_found", "model_attributes_type"} and len(first["loc"]) == 0:
        return Rejected("invalid", "not an object with a type")
    return Rejected("invalid", f"{where}: {first['msg']}" if where else str(first["msg"]))
