"""TURN and STUN servers for a participant, with coturn REST-style time-limited credentials.

coturn (``use-auth-secret``, ``static-auth-secret=<secret>``) accepts any username of the form
``<expiry unix seconds>:<anything>`` whose password is ``base64(HMAC-SHA1(secret, username))``
and whose expiry is still ahead. So the server hands each participant a credential of its own
that dies by itself; the original handed every client one static TURN user.

The TTL defaults to one hour: a credential copied out of a browser (devtools, a HAR file, a
log) opens the relay for an hour, not a day (Screego's 24 h). Long sessions are not cut: the
signaling hub pushes fresh ``iceServers`` before the old ones expire, and every reconnect's
``welcome`` carries new ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any


def credential(secret: bytes, username: str) -> str:
    """coturn's password for ``username``: base64 of HMAC-SHA1 keyed by the shared secret."""
    mac = hmac.new(secret, username.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@dataclass(frozen=True)
class TurnConfig:
    host: str  # empty: no STUN/TURN at all (a LAN or loopback-only deployment)
    port: int
    tls_port: int
    tls: bool
    secret: bytes
    ttl_seconds: int

    def __repr__(self) -> str:
        return f"TurnConfig(host={self.host!r}, port={self.port}, ttl={self.ttl_seconds})"

    def _host(self) -> str:
        return f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host


def ice_servers(config: TurnConfig, participant_id: str, *, now: int) -> list[dict[str, Any]]:
    """The ``RTCIceServer`` list for ``participant_id`` at ``now`` (unix seconds): STUN, then
    TURN over UDP, over TCP (survives NAT rebinding and UDP-hostile networks) and, when coturn
    has a certificate, over TLS on 5349 (looks like HTTPS to middleboxes)."""
    if not config.host:
        return []
    host = config._host()
    username = f"{now + config.ttl_seconds}:{participant_id}"
    urls = [
        f"turn:{host}:{config.port}?transport=udp",
        f"turn:{host}:{config.port}?transport=tcp",
    ]
    if config.tls:
        urls.append(f"turns:{host}:{config.tls_port}?transport=tcp")
    return [
        {"urls": [f"stun:{host}:{config.port}"]},
        {"urls": urls, "username": username, "credential": credential(config.secret, username)},
    ]
