"""Which model answers: text to the text route, chart photos to the vision route.

Each route is a :class:`~keel.core.llm.chain.ModelChain` (models in order, a breaker each).
A chart goes to the vision chain; when no vision model answers, the vision fallback runs: a
cheap model (the describe chain) writes a factual description of the chart, and the text chain
reasons over that description. A model that fails after it started streaming is replaced by
the next one from the start: ``on_restart`` tells the caller to clear what it showed.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
from pydantic import SecretStr

from keel.core.llm import chat
from keel.core.llm.chain import AllModelsFailed, ModelChain, Switch, default_breaker
from keel.core.resilience import CircuitBreaker

Route = Literal["text", "vision", "described"]
RestartCallback = Callable[[str], Awaitable[None]]

# An answer for a chat is short; past this the model is rambling (finish "length").
ANSWER_MAX_TOKENS: Final = 1500
ANSWER_MAX_CHARS: Final = 12_000
DESCRIPTION_MAX_TOKENS: Final = 400
DESCRIBE_PROMPT: Final = (
    "Describe this trading chart factually for someone who cannot see it: the instrument and "
    "timeframe if visible, the overall trend, notable moves, levels or indicators drawn, and "
    "any annotations or text. Do not predict prices and do not give trading advice."
)
SUMMARY_MAX_TOKENS: Final = 300
SUMMARY_PROMPT: Final = (
    "You keep the memory of a trading-psychology coaching chat. Update the summary with the "
    "new messages in at most 120 words: the trader's situation, goals, recurring emotions and "
    "patterns, rules they committed to, and anything they asked to be remembered. Facts only, "
    "third person, no advice."
)
RESTART_NOTE: Final = "(the first model stopped mid-answer; a fallback model is answering)"
# A character is about a quarter of a token in English; used only when a server reports none.
_CHARS_PER_TOKEN: Final = 4


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class Chart:
    """A chart photo as the user sent it (Telegram sends JPEG)."""

    data: bytes
    mime: str = "image/jpeg"

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True)
class RoutedAnswer:
    text: str
    model: str
    route: Route
    tokens: int  # reported by the server, else estimated from the characters
    switches: tuple[Switch, ...] = ()
    description: str | None = None  # the vision fallback's description of the chart


@dataclass(frozen=True)
class RouterConfig:
    base_url: str
    text_models: Sequence[str]
    vision_models: Sequence[str] = ()
    describe_models: Sequence[str] = ()
    api_key: SecretStr | None = None
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0  # the longest silence inside a streamed body
    answer_timeout_seconds: float = 90.0  # the whole answer, however it trickles
    referer: str | None = None
    title: str | None = "Keel coach"


class ModelRouter:
    def __init__(
        self,
        client: httpx.AsyncClient,
        config: RouterConfig,
        *,
        breaker_for: Callable[[str], CircuitBreaker] = default_breaker,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._config = config
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        self._timeouts = chat.ChatTimeouts(
            connect=config.connect_timeout_seconds,
            read=config.read_timeout_seconds,
            answer=config.answer_timeout_seconds,
        )
        self.text = ModelChain(
            "coach.text", config.text_models, breaker_for=breaker_for, clock=clock
        )
        self.vision = (
            ModelChain("coach.vision", config.vision_models, breaker_for=breaker_for, clock=clock)
            if config.vision_models
            else None
        )
        self.describe = (
            ModelChain(
                "coach.describe", config.describe_models, breaker_for=breaker_for, clock=clock
            )
            if config.describe_models
            else None
        )

    async def answer(
        self,
        *,
        system: str,
        history: Sequence[Turn],
        question: str,
        chart: Chart | None = None,
        temperature: float = 0.7,
        on_text: chat.TextCallback,
        on_restart: RestartCallback,
    ) -> RoutedAnswer:
        """Stream an answer through ``on_text``. Raises :class:`AllModelsFailed` (or
        :class:`~keel.core.llm.chat.AccountRefused`) when no route could answer."""
        base = [{"role": "system", "content": system}]
        base += [{"role": t.role, "content": t.content} for t in history]
        if chart is not None and self.vision is not None:
            content: list[dict[str, Any]] = [
                {"type": "text", "text": question or "Here is my chart."},
                {"type": "image_url", "image_url": {"url": chart.data_url()}},
            ]
            try:
                return await self._stream(
                    self.vision,
                    [*base, {"role": "user", "content": content}],
                    temperature,
                    on_text,
                    on_restart,
                    route="vision",
                )
            except AllModelsFailed:
                if self.describe is None:
                    raise
        description: str | None = None
        if chart is not None:
            description = await self._describe(chart)
            question = (
                f"{question or 'Here is my chart.'}\n\n[The user sent a chart photo. A vision "
                f"model described it:]\n{description}"
            )
        answer = await self._stream(
            self.text,
            [*base, {"role": "user", "content": question}],
            temperature,
            on_text,
            on_restart,
            route="described" if description is not None else "text",
        )
        if description is None:
            return answer
        return RoutedAnswer(
            answer.text, answer.model, "described", answer.tokens, answer.switches, description
        )

    async def _stream(
        self,
        chain: ModelChain,
        messages: list[dict[str, Any]],
        temperature: float,
        on_text: chat.TextCallback,
        on_restart: RestartCallback,
        *,
        route: Route,
    ) -> RoutedAnswer:
        streamed = False
        switches: list[Switch] = []

        async def forward(piece: str) -> None:
            nonlocal streamed
            streamed = True
            await on_text(piece)

        async def switched(switch: Switch) -> None:
            nonlocal streamed
            switches.append(switch)
            if streamed:  # the next model starts over: clear what the failed one wrote
                streamed = False
                await on_restart(RESTART_NOTE)

        async def attempt(model: str) -> chat.ChatAnswer:
            body = self._body(model, messages, temperature, ANSWER_MAX_TOKENS, stream=True)
            answer = await chat.complete(
                self._client,
                self._url,
                headers=self._headers(),
                body=body,
                timeouts=self._timeouts,
                on_text=forward,
                max_chars=ANSWER_MAX_CHARS,
            )
            if not answer.content.strip():  # a 200 with nothing in it is a failure too
                raise chat.ProviderDown("an empty answer")
            return answer

        answer, model = await chain.run(attempt, on_switch=switched)
        return RoutedAnswer(
            text=answer.content,
            model=answer.model or model,
            route=route,
            tokens=answer.tokens or _estimate(messages, answer.content),
            switches=tuple(switches),
        )

    async def _describe(self, chart: Chart) -> str:
        """The vision fallback's first half: a factual description of the chart."""
        if self.describe is None:
            raise AllModelsFailed("coach.describe", ["no describe models configured"], None)
        messages: list[dict[str, Any]] = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": DESCRIBE_PROMPT},
                    {"type": "image_url", "image_url": {"url": chart.data_url()}},
                ],
            }
        ]

        async def attempt(model: str) -> chat.ChatAnswer:
            body = self._body(model, messages, 0.2, DESCRIPTION_MAX_TOKENS, stream=False)
            answer = await chat.complete(
                self._client,
                self._url,
                headers=self._headers(),
                body=body,
                timeouts=self._timeouts,
                max_chars=4000,
            )
            if not answer.content.strip():
                raise chat.ProviderDown("an empty description")
            return answer

        answer, _ = await self.describe.run(attempt)
        return answer.content.strip()

    async def summarise(self, previous: str, turns: Sequence[Turn]) -> str:
        """A short summary of ``previous`` followed by ``turns``, from the text chain."""
        transcript = "\n".join(
            f"{'Trader' if t.role == 'user' else 'Coach'}: {t.content}" for t in turns
        )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SUMMARY_PROMPT},
            {
                "role": "user",
                "content": f"Summary so far:\n{previous or '(none)'}\n\nNew messages:\n"
                f"{transcript}",
            },
        ]

        async def attempt(model: str) -> chat.ChatAnswer:
            body = self._body(model, messages, 0.2, SUMMARY_MAX_TOKENS, stream=False)
            return await chat.complete(
                self._client,
                self._url,
                headers=self._headers(),
                body=body,
                timeouts=self._timeouts,
                max_chars=4000,
            )

        answer, _ = await self.text.run(attempt)
        if not answer.content.strip():
            raise chat.ProviderDown("an empty summary")
        return answer.content.strip()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream, application/json"}
        if self._config.api_key is not None:
            headers["Authorization"] = f"Bearer {self._config.api_key.get_secret_value()}"
        if self._config.referer:
            headers["HTTP-Referer"] = self._config.referer
        if self._config.title:
            headers["X-Title"] = self._config.title
        return headers

    @staticmethod
    def _body(
        model: str,
        messages: list[dict[str, Any]],
        temperature: float,
        max_tokens: int,
        *,
        stream: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body


def _estimate(messages: Sequence[dict[str, Any]], answer: str) -> int:
    """Tokens from the text's length (an image's share is unknown and left out)."""
    sent = 0
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            sent += len(content)
        else:
            sent += sum(len(part.get("text", "")) for part in content)
    return max(1, (sent + len(answer)) // _CHARS_PER_TOKEN)


__all__ = ["AllModelsFailed", "Chart", "ModelRouter", "RoutedAnswer", "RouterConfig", "Turn"]
