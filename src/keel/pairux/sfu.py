"""LiveKit access tokens for rooms past the P2P threshold (only when LiveKit is configured).

The token is a JWT signed with the LiveKit API secret (``livekit-api``); LiveKit enforces its
grants. One LiveKit room per pairux room (``pairux-<room id>``), the participant id as the
identity, and grants by role: the host publishes the screen (and its data), a controller
subscribes and publishes data (its input, to the host), a viewer only subscribes. A role change
sends the participant a fresh token; the grant itself stays the host agent's decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from livekit import api as livekit

from keel.pairux.rooms import Role


@dataclass(frozen=True)
class LiveKitConfig:
    url: str
    api_key: str
    api_secret: str
    ttl_seconds: int

    def __repr__(self) -> str:
        return f"LiveKitConfig(url={self.url!r}, api_key={self.api_key!r})"


def room_name(room_id: str) -> str:
    return f"pairux-{room_id}"


def grants(room_id: str, role: Role) -> livekit.VideoGrants:
    """What ``role`` may do in the LiveKit room of ``room_id``."""
    host = role is Role.HOST
    return livekit.VideoGrants(
        room_join=True,
        room=room_name(room_id),
        can_subscribe=True,
        can_publish=host,
        can_publish_data=role in (Role.HOST, Role.CONTROLLER),
        can_publish_sources=["screen_share", "screen_share_audio", "microphone"] if host else [],
        can_update_own_metadata=False,
    )


def access_token(
    config: LiveKitConfig, *, room_id: str, participant_id: str, name: str, role: Role
) -> str:
    """A signed LiveKit access token (JWT) for one participant in its role."""
    return (
        livekit.AccessToken(config.api_key, config.api_secret)
        .with_identity(participant_id)
        .with_name(name)
        .with_metadata(role.value)
        .with_ttl(timedelta(seconds=config.ttl_seconds))
        .with_grants(grants(room_id, role))
        .to_jwt()
    )
