"""The quality ladder: which resolution scale, frame rate and bitrate the one encoder uses.

A pure function of the viewers' receiver reports (round-trip time, loss, and the bitrate the
receiver estimates it can take, from REMB/TWCC or the client's own stats). One encoder serves
every viewer, so the ladder follows the worst viewer; a viewer too far behind for even the
bottom rung is the topology's problem (an SFU with per-viewer layers), not this one's.

Hysteresis: a rung is kept while its loose limits hold and left downwards at once when they do
not; climbing needs the next rung's strict limits (25% bitrate headroom, half the loss, 3/4 of
the RTT) on ``up_after`` consecutive reports, one rung at a time, so conditions that wobble near
a boundary never make the stream flap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    """One quality level: output scale of the captured size, frames/s, encoder bitrate,
    and the worst conditions it tolerates."""

    name: str
    scale: float
    fps: int
    bitrate_bps: int
    max_loss: float  # fraction 0-1
    max_rtt_ms: float


# Bottom to top. PairUX's (never called) ladder went to 8 Mbps/60 fps; a Python host on a small
# machine tops out at 720p30 for screen content, and text needs more bits than motion.
LADDER: tuple[Rung, ...] = (
    Rung("low", 0.5, 10, 400_000, max_loss=1.0, max_rtt_ms=float("inf")),
    Rung("poor", 0.67, 15, 900_000, max_loss=0.10, max_rtt_ms=600.0),
    Rung("good", 1.0, 15, 1_800_000, max_loss=0.05, max_rtt_ms=300.0),
    Rung("high", 1.0, 30, 3_000_000, max_loss=0.02, max_rtt_ms=150.0),
)
UP_HEADROOM = 1.25
UP_LOSS_FACTOR = 0.5
UP_RTT_FACTOR = 0.75


@dataclass(frozen=True)
class Conditions:
    """What the receivers report; ``available_bps`` None means no estimate yet (unbounded)."""

    rtt_ms: float = 0.0
    loss: float = 0.0
    available_bps: int | None = None

    def at_least_as_bad_as(self, other: Conditions) -> bool:
        """Every figure is no better than ``other``'s."""
        return (
            self.rtt_ms >= other.rtt_ms
            and self.loss >= other.loss
            and _bps(self.available_bps) <= _bps(other.available_bps)
        )


@dataclass(frozen=True)
class LadderState:
    """The current rung (index into the ladder) and how many reports in a row allowed a climb."""

    rung: int
    up_streak: int = 0


def _bps(value: int | None) -> float:
    return float("inf") if value is None else float(value)


def worst(reports: Iterable[Conditions]) -> Conditions:
    """The viewers' reports folded into the one the shared encoder has to live with."""
    rtt, loss, bps = 0.0, 0.0, float("inf")
    for report in reports:
        rtt = max(rtt, report.rtt_ms)
        loss = max(loss, report.loss)
        bps = min(bps, _bps(report.available_bps))
    return Conditions(rtt, loss, None if bps == float("inf") else int(bps))


def _sustains(rung: Rung, c: Conditions) -> bool:
    return (
        c.loss <= rung.max_loss
        and c.rtt_ms <= rung.max_rtt_ms
        and (_bps(c.available_bps) >= rung.bitrate_bps)
    )


def _invites(rung: Rung, c: Conditions) -> bool:
    return (
        c.loss <= rung.max_loss * UP_LOSS_FACTOR
        and c.rtt_ms <= rung.max_rtt_ms * UP_RTT_FACTOR
        and _bps(c.available_bps) >= rung.bitrate_bps * UP_HEADROOM
    )


def decide(
    state: LadderState, c: Conditions, *, ladder: Sequence[Rung] = LADDER, up_after: int = 3
) -> LadderState:
    """The rung after one more report: down at once to the highest rung ``c`` sustains, up one
    rung after ``up_after`` reports in a row that invite the next rung, else stay."""
    current = min(max(state.rung, 0), len(ladder) - 1)
    if not _sustains(ladder[current], c):
        target = 0
        for index in range(current - 1, -1, -1):
            if _sustains(ladder[index], c):
                target = index
                break
        return LadderState(target, 0)
    if current + 1 < len(ladder) and _invites(ladder[current + 1], c):
        streak = state.up_streak + 1
        if streak >= up_after:
            return LadderState(current + 1, 0)
        return LadderState(current, streak)
    return LadderState(current, 0)
