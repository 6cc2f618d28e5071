"""Recorded chat-completion responses replayed by a real local HTTP server (``chat_replay``).

Recordings live in ``recordings/chat/<name>.json``; ``chat_server.url("chat", name)`` is a base
URL serving one. They were written for these tests in the shapes OpenRouter and
llama.cpp/Ollama send: whole completions, SSE streams with keep-alive comments and error
frames, and error bodies with their status codes and ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.chat_replay import ChatReplayServer, serve_chat_recordings
from tests.replay import checked

RECORDINGS = Path(__file__).parent / "recordings"


@pytest.fixture(scope="session")
def _chat_server() -> Iterator[ChatReplayServer]:
    with serve_chat_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def chat_server(_chat_server: ChatReplayServer) -> Iterator[ChatReplayServer]:
    """The replay server; fails the test if a request matched no recording."""
    with checked(_chat_server):
        yield _chat_server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A real client; ``trust_env=False`` so no proxy settings reroute 127.0.0.1."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http
