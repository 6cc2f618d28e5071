"""Roadmaps from an OpenAI-compatible chat API: OpenRouter, llama.cpp's server, Ollama.

Policy (ADR 0032), per generation:

* Models are tried in order: the primary, then the fallback, each by its own request (every
  compatible server understands that; OpenRouter's ``models`` routing would not work locally).
* With one model, an answer that holds no valid roadmap is sent back with what was wrong and
  asked again, up to ``max_attempts`` answers; then the next model starts afresh.
* A server in trouble (timeout, 408/429/5xx, a mid-stream error) moves on to the next model
  at once and counts in that model's circuit breaker; a model whose breaker is open, or that
  asked us to wait (``Retry-After``), is skipped without a request until then.
* A 4xx about the request moves on to the next model; 401/402/403 (our key or account) stop.
* When no model produced a roadmap: :class:`ProviderUnavailable` (or a subclass).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx
import structlog
from pydantic import SecretStr, ValidationError

from keel.core.llm import chat
from keel.core.resilience import CircuitBreaker, CircuitOpen
from keel.roadmaps.generation import metrics, prompt
from keel.roadmaps.generation.base import ProgressCallback, ProgressReporter
from keel.roadmaps.generation.draft import RoadmapDraft, RoadmapPlan, draft_from
from keel.roadmaps.generation.errors import (
    ProviderOutputInvalid,
    ProviderRejected,
    ProviderUnavailable,
)
from keel.roadmaps.generation.extraction import NoJsonObject, extract_json_object
from keel.roadmaps.generation.request import GenerationRequest
from keel.roadmaps.generation.schema import response_format

log = structlog.get_logger("keel.roadmaps.generation")

ResponseFormat = Literal["json_schema", "json_object"]
# A validation report longer than this is not read by the model either.
_PROBLEMS_MAX: Final = 12


@dataclass(frozen=True)
class RemoteConfig:
    """How to reach one OpenAI-compatible server and which models to ask.

    ``base_url`` is the API root (``https://openrouter.ai/api/v1``, ``http://127.0.0.1:11434/v1``
    for Ollama, ``http://127.0.0.1:8080/v1`` for llama.cpp). ``api_key`` is optional: local
    servers need none. ``provider`` labels the drafts it writes. ``referer`` and ``title`` are
    OpenRouter's attribution headers, sent only when set. ``response_format``: ``json_schema``
    (strict structured output) or ``json_object`` for servers without schema support.
    """

    base_url: str
    model: str
    fallback_model: str | None = None
    api_key: SecretStr | None = field(default=None, repr=False)
    provider: str = "openai-compatible"
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    answer_timeout_seconds: float = 120.0
    max_attempts: int = 2
    stream: bool = True
    response_format: ResponseFormat = "json_schema"
    max_tokens: int = 8000
    temperature: float = 0.3
    referer: str | None = None
    title: str | None = None

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http or https URL")
        if not self.model:
            raise ValueError("a model is required")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.connect_timeout_seconds, self.read_timeout_seconds) <= 0:
            raise ValueError("timeouts must be positive")
        if self.answer_timeout_seconds <= 0:
            raise ValueError("timeouts must be positive")
        response_format(self.response_format)  # refuses an unknown mode now, not per request

    @property
    def models(self) -> tuple[str, ...]:
        """The primary model, then the fallback when there is a distinct one."""
        if self.fallback_model and self.fallback_model != self.model:
            return (self.model, self.fallback_model)
        return (self.model,)


def default_breaker(model: str) -> CircuitBreaker:
    """A breaker per model: generations are rare and slow, so a few failures in a minute say
    enough, and nothing is "slow" short of the answer timeout."""
    return CircuitBreaker(
        f"roadmaps.generation.{model}",
        minimum_calls=3,
        failure_rate_threshold=0.5,
        window_seconds=120.0,
        open_seconds=60.0,
        half_open_max_calls=1,
        failure_on=(chat.ProviderDown,),
    )


class _Skipped(Exception):
    """The model was not usable for this generation (why, and when it may be again)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class InvalidAnswer(ValueError):
    """An answer holds no valid roadmap; the message says what to fix (it is sent back)."""


class _StepCounter:
    """Counts ``"hours"`` keys in a streamed answer: one per step written so far."""

    _NEEDLE: Final = '"hours"'

    def __init__(self) -> None:
        self._tail = ""
        self.steps = 0

    def feed(self, piece: str) -> int:
        text = self._tail + piece
        # The tail is shorter than the needle, so every match here is new.
        self.steps += text.count(self._NEEDLE)
        self._tail = text[-(len(self._NEEDLE) - 1) :]
        return self.steps


def parse_plan(answer: str) -> RoadmapPlan:
    """The roadmap in a model's answer. Raises :class:`InvalidAnswer` saying what is wrong."""
    try:
        data = extract_json_object(answer)
    except NoJsonObject as exc:
        raise InvalidAnswer(str(exc)) from exc
    try:
        return RoadmapPlan.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or 'the object'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        more = len(problems) - _PROBLEMS_MAX
        text = "; ".join(problems[:_PROBLEMS_MAX]) + (f"; and {more} more" if more > 0 else "")
        raise InvalidAnswer(f"it does not match the schema: {text}") from exc


class OpenAICompatibleGenerator:
    """A :class:`~keel.roadmaps.generation.base.Generator` over an OpenAI-compatible API.

    ``client`` is shared and closed by its owner; timeouts are set per request. ``breaker_for``
    builds the breaker of each model (tests pass tighter ones); ``clock`` times Retry-After.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: RemoteConfig,
        *,
        breaker_for: Callable[[str], CircuitBreaker] = default_breaker,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.name = config.provider
        self._client = client
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        self._breakers = {model: breaker_for(model) for model in config.models}
        self._clock = clock
        self._resting_until: dict[str, float] = {}
        self._timeouts = chat.ChatTimeouts(
            connect=config.connect_timeout_seconds,
            read=config.read_timeout_seconds,
            answer=config.answer_timeout_seconds,
        )

    def breaker(self, model: str) -> CircuitBreaker:
        return self._breakers[model]

    async def generate(
        self, request: GenerationRequest, progress: ProgressCallback
    ) -> RoadmapDraft:
        """A roadmap from the first model that writes a valid one.

        Raises :class:`ProviderRejected` when our key or account is refused,
        :class:`ProviderOutputInvalid` when models answered but never validly, else
        :class:`ProviderUnavailable` (with ``retry_after`` when a wait is known).
        """
        reporter = ProgressReporter(progress)
        await reporter.report(5, "reading your goal")
        started = time.perf_counter()
        waits: list[float] = []
        reasons: list[str] = []
        invalid = 0
        for index, model in enumerate(self.config.models):
            if index:
                await reporter.report(reporter.percent, "trying the fallback model")
            try:
                draft = await self._generate_with(model, request, reporter)
            except _Skipped as exc:
                reasons.append(f"{model}: {exc}")
                if exc.retry_after is not None:
                    waits.append(exc.retry_after)
                continue
            except ProviderOutputInvalid as exc:
                reasons.append(f"{model}: {exc.detail}")
                invalid += 1
                continue
            except ProviderRejected:
                self._observe(started, "failed")
                raise
            await reporter.report(100, "done")
            self._observe(started, "ok")
            return draft
        self._observe(started, "failed")
        detail = "no model produced a roadmap: " + "; ".join(reasons)
        if invalid == len(self.config.models):
            raise ProviderOutputInvalid(detail)
        raise ProviderUnavailable(detail, retry_after=math.ceil(min(waits)) if waits else None)

    def _observe(self, started: float, result: str) -> None:
        metrics.GENERATIONS.labels(self.name, result).inc()
        metrics.GENERATION_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    async def _generate_with(
        self, model: str, request: GenerationRequest, reporter: ProgressReporter
    ) -> RoadmapDraft:
        resting = self._resting_until.get(model, 0.0) - self._clock()
        if resting > 0:
            metrics.MODEL_CALLS.labels(model, "resting").inc()
            raise _Skipped(f"asked us to wait {resting:.0f} s", retry_after=resting)
        messages = prompt.initial_messages(request, self.config.response_format)
        problem = ""
        for attempt in range(1, self.config.max_attempts + 1):
            await reporter.report(
                10, "choosing topics" if attempt == 1 else "the plan did not pass; asking again"
            )
            answer = await self._ask(model, messages, reporter)
            try:
                if answer.finish_reason == "length":
                    raise InvalidAnswer("it was cut off; write shorter descriptions")
                plan = parse_plan(answer.content)
            except InvalidAnswer as exc:
                problem = str(exc)
                metrics.MODEL_CALLS.labels(model, "invalid").inc()
                log.warning(
                    "generation_answer_invalid", model=model, attempt=attempt, problem=problem
                )
                messages = [*messages, *prompt.repair_messages(answer.content, problem)]
                continue
            metrics.MODEL_CALLS.labels(model, "ok").inc()
            await reporter.report(90, "checking the plan")
            return draft_from(plan, provider=self.config.provider, model=answer.model or model)
        raise ProviderOutputInvalid(
            f"{self.config.max_attempts} answers without a valid roadmap; last: {problem}"
        )

    async def _ask(
        self, model: str, messages: list[dict[str, str]], reporter: ProgressReporter
    ) -> chat.ChatAnswer:
        counter = _StepCounter()

        async def on_text(piece: str) -> None:
            written = counter.feed(piece)
            # Each "hours" key closes a step's estimate: 15 % for the first words, then 7 %
            # a step up to 85 %; the total is unknown until the answer ends.
            await reporter.report(min(15 + 7 * written, 85), f"writing step {written + 1}")

        started = time.perf_counter()
        try:
            async with self._breakers[model].guard():
                return await chat.complete(
                    self._client,
                    self._url,
                    headers=self._headers(),
                    body=self._body(model, messages),
                    timeouts=self._timeouts,
                    on_text=on_text,
                )
        except CircuitOpen as exc:
            metrics.MODEL_CALLS.labels(model, "circuit_open").inc()
            retry_in = exc.extra.get("retry_in")
            raise _Skipped(
                "circuit open",
                retry_after=float(retry_in) if isinstance(retry_in, int | float) else None,
            ) from exc
        except chat.ProviderDown as exc:
            metrics.MODEL_CALLS.labels(model, "down").inc()
            log.warning("generation_model_down", model=model, status=exc.status, error=str(exc))
            if exc.retry_after:
                self._resting_until[model] = self._clock() + exc.retry_after
            raise _Skipped(str(exc), retry_after=exc.retry_after) from exc
        except chat.ModelRefused as exc:
            metrics.MODEL_CALLS.labels(model, "refused").inc()
            log.warning("generation_model_refused", model=model, status=exc.status, error=str(exc))
            raise _Skipped(str(exc)) from exc
        except chat.AccountRefused as exc:
            metrics.MODEL_CALLS.labels(model, "rejected").inc()
            log.error("generation_account_refused", model=model, status=exc.status, error=str(exc))
            raise ProviderRejected(f"the provider refused our account: {exc}") from exc
        finally:
            metrics.MODEL_CALL_SECONDS.labels(model).observe(time.perf_counter() - started)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream, application/json"}
        if self.config.api_key is not None:
            headers["Authorization"] = f"Bearer {self.config.api_key.get_secret_value()}"
        if self.config.referer:
            headers["HTTP-Referer"] = self.config.referer
        if self.config.title:
            headers["X-Title"] = self.config.title
        return headers

    def _body(self, model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "model": model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "stream": self.config.stream,
            "response_format": response_format(self.config.response_format),
        }
