"""Model routing against recorded OpenRouter replies on a real local server: text to the text
chain, charts to the vision chain, the vision fallback (describe, then reason), and a primary
model that fails mid-stream replaced by the fallback from the start."""

from __future__ import annotations

import base64

import httpx
import pytest

from keel.coach.routing import Chart, ModelRouter, RoutedAnswer, RouterConfig, Turn
from keel.core.llm.chain import AllModelsFailed
from tests.chat_replay import ChatReplayServer

TEXT = ["deepseek/deepseek-chat", "meta-llama/llama-3.3-70b-instruct"]
VISION = ["google/gemini-2.5-flash"]
DESCRIBE = ["google/gemini-2.0-flash-lite-001"]
# A 1x1 JPEG is enough: the recordings answer whatever the picture.
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIs"
    "IxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAA"
    "AAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q=="
)


class Screen:
    """What a chat would show: the streamed text, cleared on a restart."""

    def __init__(self) -> None:
        self.text = ""
        self.restarts: list[str] = []

    async def on_text(self, piece: str) -> None:
        self.text += piece

    async def on_restart(self, note: str) -> None:
        self.restarts.append(note)
        self.text = ""


def router(http: httpx.AsyncClient, base_url: str) -> ModelRouter:
    return ModelRouter(
        http,
        RouterConfig(
            base_url=base_url,
            text_models=TEXT,
            vision_models=VISION,
            describe_models=DESCRIBE,
            read_timeout_seconds=5,
            answer_timeout_seconds=20,
        ),
    )


async def ask(
    r: ModelRouter, screen: Screen, question: str, chart: Chart | None = None
) -> RoutedAnswer:
    return await r.answer(
        system="You are a coach.",
        history=[Turn("user", "hi"), Turn("assistant", "Hello! How was your session?")],
        question=question,
        chart=chart,
        on_text=screen.on_text,
        on_restart=screen.on_restart,
    )


async def test_a_question_streams_from_the_text_model(
    http: httpx.AsyncClient, openrouter: ChatReplayServer
) -> None:
    screen = Screen()
    answer = await ask(
        router(http, openrouter.url("openrouter", "coaching")), screen, "I got stopped out"
    )
    assert answer.route == "text"
    assert answer.model == TEXT[0]
    assert screen.text == answer.text
    assert answer.text.startswith("That sting after stopping out")
    assert answer.tokens > 0
    assert not answer.switches
    (sent,) = openrouter.asked("openrouter", "coaching")
    assert sent.body["stream"] is True
    roles = [m["role"] for m in sent.body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert sent.body["messages"][-1]["content"] == "I got stopped out"


async def test_a_primary_that_fails_mid_stream_is_replaced_from_the_start(
    http: httpx.AsyncClient, openrouter: ChatReplayServer
) -> None:
    screen = Screen()
    r = router(http, openrouter.url("openrouter", "primary_503_mid_stream"))
    answer = await ask(r, screen, "I keep losing")
    assert answer.model == TEXT[1]
    assert len(screen.restarts) == 1  # the primary had streamed text; it was cleared
    assert screen.text == answer.text
    assert answer.text.startswith("Losing streaks shrink")
    assert [s.model for s in answer.switches] == [TEXT[0]]
    assert "503" in answer.switches[0].reason or "overloaded" in answer.switches[0].reason
    asked = [x.model for x in openrouter.asked("openrouter", "primary_503_mid_stream")]
    assert asked == TEXT


async def test_a_chart_takes_the_vision_route(
    http: httpx.AsyncClient, openrouter: ChatReplayServer
) -> None:
    screen = Screen()
    r = router(http, openrouter.url("openrouter", "chart_vision"))
    answer = await ask(r, screen, "thoughts?", Chart(JPEG))
    assert (answer.route, answer.model) == ("vision", VISION[0])
    (sent,) = openrouter.asked("openrouter", "chart_vision")
    content = sent.body["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "thoughts?"}
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,/9j/")


async def test_with_vision_down_a_cheap_model_describes_and_the_text_model_reasons(
    http: httpx.AsyncClient, openrouter: ChatReplayServer
) -> None:
    screen = Screen()
    r = router(http, openrouter.url("openrouter", "chart_vision_down"))
    answer = await ask(r, screen, "", Chart(JPEG))
    assert (answer.route, answer.model) == ("described", TEXT[0])
    assert answer.description is not None
    assert "ETH/USDT" in answer.description
    asked = openrouter.asked("openrouter", "chart_vision_down")
    assert [x.model for x in asked] == [VISION[0], DESCRIBE[0], TEXT[0]]
    assert asked[1].body["stream"] is False
    reasoning = asked[2].body["messages"][-1]["content"]
    assert isinstance(reasoning, str)
    assert "A vision model described it" in reasoning
    assert "ETH/USDT" in reasoning
    assert screen.text == answer.text
    assert not screen.restarts


async def test_when_every_model_is_down_the_caller_learns_why(
    http: httpx.AsyncClient,
) -> None:
    # Nothing listens on port 1: every model's connection is refused.
    r = router(http, "http://127.0.0.1:1/v1")
    with pytest.raises(AllModelsFailed) as failed:
        await ask(r, Screen(), "hello")
    assert len(failed.value.reasons) == 2


async def test_a_router_needs_a_text_model(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="at least one model"):
        ModelRouter(http, RouterConfig(base_url="http://x", text_models=[]))


async def test_a_summary_comes_from_the_text_chain_whole(
    http: httpx.AsyncClient, openrouter: ChatReplayServer
) -> None:
    r = router(http, openrouter.url("openrouter", "summary"))
    turns = [Turn("user", "I revenge trade after stop-outs"), Turn("assistant", "Step away.")]
    summary = await r.summarise("Prefers blunt feedback.", turns)
    assert summary.startswith("The trader has been revenge trading")
    (sent,) = openrouter.asked("openrouter", "summary")
    assert sent.body["stream"] is False
    prompt = sent.body["messages"][-1]["content"]
    assert "Prefers blunt feedback." in prompt
    assert "Trader: I revenge trade after stop-outs" in prompt


async def test_an_empty_answer_moves_on_to_the_next_model(
    http: httpx.AsyncClient, openrouter: ChatReplayServer
) -> None:
    screen = Screen()
    answer = await ask(router(http, openrouter.url("openrouter", "empty_primary")), screen, "hi")
    assert answer.model == TEXT[1]
    assert answer.text == "Breathe first. Then read your plan again. NFA."
    assert [s.reason for s in answer.switches] == ["an empty answer"]
    assert not screen.restarts  # nothing had been shown
