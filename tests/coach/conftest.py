"""coach's shared fixtures: OpenRouter recordings replayed by a real local HTTP server.

The recordings (``recordings/openrouter/<name>.json``) were written for these tests in the
shapes OpenRouter sends: SSE streams with ``: OPENROUTER PROCESSING`` comments, a usage frame
and ``[DONE]``; a mid-stream error frame (HTTP 200, then ``error`` with code 503); whole
completions and error bodies.
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
def _openrouter() -> Iterator[ChatReplayServer]:
    with serve_chat_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def openrouter(_openrouter: ChatReplayServer) -> Iterator[ChatReplayServer]:
    """The replay server; fails the test if a request matched no recording."""
    with checked(_openrouter):
        yield _openrouter


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A real client; ``trust_env=False`` so no proxy settings reroute 127.0.0.1."""
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client
