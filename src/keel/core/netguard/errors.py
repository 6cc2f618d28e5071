"""The refusals: a destination that is not allowed, or a host that does not resolve."""

from __future__ import annotations

from keel.core.errors import Forbidden


class BlockedDestination(Forbidden):
    """The outbound destination is not allowed."""

    code = "destination_blocked"
    title = "Destination blocked"

    def __init__(self, host: str, reason: str) -> None:
        # Only the host is named: a full URL could carry secrets in its query string.
        self.host = host
        self.reason = reason
        super().__init__(f"destination {host!r} is not allowed: {reason}", host=host)


class UnresolvableHost(BlockedDestination):
    """The destination host name does not resolve.

    ``transient`` is True when the resolver failed (timeout, server failure) rather than
    answering that the name does not exist: such a failure may heal, so the connection layer
    reports it as an ordinary ``httpx.ConnectError`` instead of a refusal.
    """

    code = "destination_unresolvable"
    title = "Destination unresolvable"

    def __init__(self, host: str, reason: str, *, transient: bool = False) -> None:
        super().__init__(host, reason)
        self.transient = transient
