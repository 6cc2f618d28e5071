"""Roadmap generation: a goal (and maybe a syllabus) in, a validated roadmap draft out.

The roadmaps service builds one generator at boot and calls it per request::

    generator = generation.build_generator(settings, http_client)
    draft = await generator.generate(
        generation.GenerationRequest(goal="SQL SELECT basics", level="beginner"),
        progress=publish,  # async (Progress) -> None, e.g. onto the SSE stream
    )

Generators: :class:`OfflineGenerator` (the shipped catalogue, the default),
:class:`OpenAICompatibleGenerator` (OpenRouter, llama.cpp, Ollama) and :class:`WithFallback`
(remote, then the catalogue). ADR 0032 explains the choices.
"""

from keel.roadmaps.generation.base import Generator, Progress, ProgressCallback
from keel.roadmaps.generation.draft import Resource, RoadmapDraft, RoadmapPlan, StepDraft
from keel.roadmaps.generation.errors import (
    GenerationError,
    InvalidRequest,
    ProviderOutputInvalid,
    ProviderRejected,
    ProviderUnavailable,
)
from keel.roadmaps.generation.factory import build_generator
from keel.roadmaps.generation.fallback import WithFallback
from keel.roadmaps.generation.offline import OfflineGenerator, plan_roadmap
from keel.roadmaps.generation.openai_compatible import OpenAICompatibleGenerator, RemoteConfig
from keel.roadmaps.generation.request import GenerationRequest, Level

__all__ = [
    "GenerationError",
    "GenerationRequest",
    "Generator",
    "InvalidRequest",
    "Level",
    "OfflineGenerator",
    "OpenAICompatibleGenerator",
    "Progress",
    "ProgressCallback",
    "ProviderOutputInvalid",
    "ProviderRejected",
    "ProviderUnavailable",
    "RemoteConfig",
    "Resource",
    "RoadmapDraft",
    "RoadmapPlan",
    "StepDraft",
    "WithFallback",
    "build_generator",
    "plan_roadmap",
]
