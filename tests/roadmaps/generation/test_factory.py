"""Building the generator from settings, and the catalogue behind a remote provider."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from keel.roadmaps.generation import (
    GenerationRequest,
    OfflineGenerator,
    OpenAICompatibleGenerator,
    Progress,
    WithFallback,
    build_generator,
)
from keel.roadmaps.generation.factory import provider_label, remote_config
from keel.roadmaps.settings import RoadmapsSettings
from tests.chat_replay import ChatReplayServer


class Recorder:
    def __init__(self) -> None:
        self.reports: list[Progress] = []

    async def __call__(self, progress: Progress) -> None:
        self.reports.append(progress)


def test_the_default_is_offline_and_needs_nothing() -> None:
    assert isinstance(build_generator(RoadmapsSettings()), OfflineGenerator)


def test_a_remote_provider_needs_a_model_and_a_client() -> None:
    with pytest.raises(ValueError, match="AsyncClient"):
        build_generator(RoadmapsSettings(generation_provider="openai", generation_model="m"))
    with pytest.raises(ValueError, match="model"):
        remote_config(RoadmapsSettings(generation_provider="openai"))
    with pytest.raises(ValidationError):
        RoadmapsSettings(generation_base_url="file:///etc/passwd")


async def test_openrouter_gets_attribution_and_the_catalogue_behind_it() -> None:
    settings = RoadmapsSettings(
        generation_provider="openai",
        generation_model="openai/gpt-4o-mini",
        generation_fallback_model="meta-llama/llama-3.3-70b-instruct",
        generation_api_key=SecretStr("sk-or-v1-x"),
        public_url="https://roadmaps.example.org",
    )
    async with httpx.AsyncClient() as client:
        generator = build_generator(settings, client)
    assert isinstance(generator, WithFallback)
    assert isinstance(generator.primary, OpenAICompatibleGenerator)
    config = generator.primary.config
    assert (config.provider, config.referer, config.title) == (
        "openrouter",
        "https://roadmaps.example.org",
        "Keel roadmaps",
    )
    assert config.models == ("openai/gpt-4o-mini", "meta-llama/llama-3.3-70b-instruct")


async def test_a_local_server_gets_no_attribution_and_may_go_without_fallback() -> None:
    settings = RoadmapsSettings(
        generation_provider="openai",
        generation_base_url="http://127.0.0.1:11434/v1",
        generation_model="qwen3:8b",
        generation_offline_fallback=False,
    )
    async with httpx.AsyncClient() as client:
        generator = build_generator(settings, client)
    assert isinstance(generator, OpenAICompatibleGenerator)
    assert (generator.config.referer, generator.config.title) == (None, None)
    assert generator.config.provider == "openai-compatible"
    assert provider_label("https://openrouter.ai/api/v1") == "openrouter"


async def test_when_every_model_is_down_the_catalogue_answers(
    chat_server: ChatReplayServer, client: httpx.AsyncClient
) -> None:
    settings = RoadmapsSettings(
        generation_provider="openai",
        generation_base_url=chat_server.url("chat", "both_down"),
        generation_model="openai/gpt-4o-mini",
        generation_fallback_model="meta-llama/llama-3.3-70b-instruct",
        generation_stream=False,
    )
    progress = Recorder()
    draft = await build_generator(settings, client).generate(
        GenerationRequest(goal="SQL SELECT basics"), progress
    )

    assert (draft.provider, draft.title) == ("offline", "Learn the basics of SQL")
    assert len(chat_server.received) == 2
    stages = [r.stage for r in progress.reports]
    assert "the AI provider is unavailable; using the catalogue" in stages
    percents = [r.percent for r in progress.reports]
    assert percents == sorted(percents)  # the bar never moved back
    assert all(len(stage) <= 80 for stage in stages)  # the roadmaps.stage column
