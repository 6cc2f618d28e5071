"""Build the configured generator from settings: offline unless a provider is configured."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from keel.roadmaps.generation.base import Generator
from keel.roadmaps.generation.fallback import WithFallback
from keel.roadmaps.generation.offline import OfflineGenerator
from keel.roadmaps.generation.openai_compatible import OpenAICompatibleGenerator, RemoteConfig
from keel.roadmaps.generation.topics import load_catalogue
from keel.roadmaps.settings import RoadmapsSettings

APP_TITLE = "Keel roadmaps"


def provider_label(base_url: str) -> str:
    """What drafts from ``base_url`` are labelled: ``openrouter`` or ``openai-compatible``."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "openrouter.ai" or host.endswith(".openrouter.ai"):
        return "openrouter"
    return "openai-compatible"


def remote_config(settings: RoadmapsSettings) -> RemoteConfig:
    """The remote provider's configuration; ``ValueError`` when it is incomplete."""
    label = provider_label(settings.generation_base_url)
    openrouter = label == "openrouter"
    return RemoteConfig(
        base_url=settings.generation_base_url,
        model=settings.generation_model,
        fallback_model=settings.generation_fallback_model or None,
        api_key=settings.generation_api_key,
        provider=label,
        connect_timeout_seconds=settings.generation_connect_timeout_seconds,
        read_timeout_seconds=settings.generation_read_timeout_seconds,
        answer_timeout_seconds=settings.generation_answer_timeout_seconds,
        max_attempts=settings.generation_max_attempts,
        stream=settings.generation_stream,
        response_format=settings.generation_response_format,
        max_tokens=settings.generation_max_tokens,
        # OpenRouter's attribution headers; no other server wants them.
        referer=(settings.public_url or None) if openrouter else None,
        title=APP_TITLE if openrouter else None,
    )


def build_generator(
    settings: RoadmapsSettings, client: httpx.AsyncClient | None = None
) -> Generator:
    """The generator the settings ask for; call it at boot so bad config fails there.

    ``offline`` (the default): the catalogue. ``openai``: the configured server and models
    through ``client`` (required; its owner closes it), backed by the catalogue unless
    ``generation_offline_fallback`` is off. Raises ``ValueError`` for incomplete settings.
    """
    catalogue = load_catalogue()  # parse and check the package data now, not per request
    offline = OfflineGenerator(catalogue)
    if settings.generation_provider == "offline":
        return offline
    if client is None:
        raise ValueError("the openai generation provider needs an httpx.AsyncClient")
    remote = OpenAICompatibleGenerator(client, remote_config(settings))
    if settings.generation_offline_fallback:
        return WithFallback(remote, offline)
    return remote
