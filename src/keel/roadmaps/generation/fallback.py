"""A remote generator with the offline catalogue behind it.

When every remote model is unavailable (down, rate-limited, circuit open, refusing our key or
answering nonsense), the learner still gets a roadmap: the catalogue's, marked
``provider="offline"`` so the page can say so. Generation then fails only if the catalogue
itself does, which it does not for a valid request.
"""

from __future__ import annotations

import structlog

from keel.roadmaps.generation import metrics
from keel.roadmaps.generation.base import Generator, ProgressCallback, ProgressReporter
from keel.roadmaps.generation.draft import RoadmapDraft
from keel.roadmaps.generation.errors import ProviderUnavailable
from keel.roadmaps.generation.request import GenerationRequest

log = structlog.get_logger("keel.roadmaps.generation")


class WithFallback:
    """``primary``, and ``fallback`` when it raises :class:`ProviderUnavailable`."""

    def __init__(self, primary: Generator, fallback: Generator) -> None:
        self.primary = primary
        self.fallback = fallback

    async def generate(
        self, request: GenerationRequest, progress: ProgressCallback
    ) -> RoadmapDraft:
        """The primary's roadmap, else the fallback's; the progress bar never moves back."""
        reporter = ProgressReporter(progress)
        try:
            return await self.primary.generate(request, reporter)
        except ProviderUnavailable as exc:
            metrics.OFFLINE_FALLBACKS.inc()
            log.warning("generation_fell_back", code=exc.code, error=exc.detail)
            await reporter.report(
                reporter.percent, "the AI provider is unavailable; using the catalogue"
            )
            return await self.fallback.generate(request, reporter)
