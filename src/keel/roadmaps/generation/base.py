"""The generator interface the roadmaps service calls, and the progress it reports.

Every generator (offline catalogue, OpenAI-compatible provider, the two chained) implements
:class:`Generator`; the service streams each :class:`Progress` to the page over SSE.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from keel.roadmaps.generation.draft import RoadmapDraft
from keel.roadmaps.generation.request import GenerationRequest


@dataclass(frozen=True)
class Progress:
    """How far a generation is: ``percent`` 0..100 and a stage a person can read."""

    percent: int
    stage: str


ProgressCallback = Callable[[Progress], Awaitable[None]]

STAGE_MAX = 80  # the roadmaps.stage column


class Generator(Protocol):
    async def generate(
        self, request: GenerationRequest, progress: ProgressCallback
    ) -> RoadmapDraft:
        """Generate a validated roadmap for ``request``, awaiting ``progress`` several times.

        Raises ``ProviderUnavailable`` (or a subclass) when no roadmap could be produced;
        the offline generator never does.
        """
        ...


class ProgressReporter:
    """Forwards progress to a callback, never backwards and never the same report twice.

    A retry or a fallback to another generator starts its own count from the beginning; the
    person watching should see the bar hold still, not jump back.
    """

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback
        self._last: Progress | None = None

    @property
    def percent(self) -> int:
        return 0 if self._last is None else self._last.percent

    async def __call__(self, progress: Progress) -> None:
        await self.report(progress.percent, progress.stage)

    async def report(self, percent: int, stage: str) -> None:
        """Report ``stage`` at ``percent`` (clamped to 0..100 and to at least the last)."""
        percent = max(min(percent, 100), self.percent, 0)
        update = Progress(percent, stage[:STAGE_MAX])
        if update != self._last:
            self._last = update
            await self._callback(update)
