"""What every scraper answers: swarm counts per info hash, and the Protocol they implement."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from keel.bittorrented.torrent.values import MAX_PEERS


@dataclass(frozen=True, slots=True)
class SwarmCounts:
    """One source's view of a swarm: peers with the whole torrent (``seeders``), peers
    without it (``leechers``) and, where the source keeps it, completed downloads ever."""

    seeders: int
    leechers: int
    downloaded: int | None = None

    def __post_init__(self) -> None:
        for count in (self.seeders, self.leechers):
            if not 0 <= count <= MAX_PEERS:
                raise ValueError(f"seeders and leechers must be in [0, {MAX_PEERS}]")
        if self.downloaded is not None and self.downloaded < 0:
            raise ValueError("downloaded must be >= 0")


def plausible(seeders: int, leechers: int, downloaded: int | None = None) -> SwarmCounts | None:
    """Counts a remote party reported, or None when they cannot be true (negative, or past
    what a column holds): a lying or broken tracker makes the swarm unknown, not an error."""
    try:
        return SwarmCounts(seeders, leechers, downloaded)
    except ValueError:
        return None


class Outcome(enum.StrEnum):
    """How one scrape exchange (one packet or request, up to ~74 hashes) ended."""

    OK = "ok"
    TIMEOUT = "timeout"  # no (valid) answer within the time budget
    UNREACHABLE = "unreachable"  # DNS failure, connection or port refused
    REFUSED = "refused"  # the destination is private/loopback and that is not allowed
    FAILED = "failed"  # the tracker answered with an error (UDP action 3, failure reason)
    MALFORMED = "malformed"  # the answer did not parse
    CIRCUIT_OPEN = "circuit_open"  # the breaker short-circuited the call


class Scraper(Protocol):
    """Something that reports swarm sizes: a tracker, or the DHT."""

    @property
    def transport(self) -> str:
        """``udp``, ``http`` or ``dht``: the label metrics and sources use."""
        ...

    async def scrape(self, info_hashes: Sequence[bytes]) -> dict[bytes, SwarmCounts]:
        """Counts for as many of ``info_hashes`` (20-byte v1 hashes) as the source knows.

        A hash missing from the result is unknown. Timeouts, dead or lying remotes and refused
        destinations end as missing hashes (and a metric), never as an exception.
        """
        ...
