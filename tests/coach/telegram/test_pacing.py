"""Pacer: each chat's turn, the bot's rate, and flood waits obeyed and recorded."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
import structlog
from aiogram.exceptions import TelegramRetryAfter, TelegramServerError
from aiogram.methods import SendMessage
from prometheus_client import REGISTRY

from keel.coach.telegram.pacing import FloodWait, Pacer


def retry_after(seconds: int) -> TelegramRetryAfter:
    method = SendMessage(chat_id=7, text="x")
    return TelegramRetryAfter(method, f"Too Many Requests: retry after {seconds}", seconds)


def sample(name: str, method: str) -> float:
    return REGISTRY.get_sample_value(name, {"method": method}) or 0.0


async def test_a_chat_gets_one_turn_per_interval() -> None:
    pacer = Pacer(interval_seconds=0.1)
    times = []
    for _ in range(4):
        await pacer.turn(1)
        times.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.099


async def test_concurrent_turns_in_one_chat_queue_and_other_chats_do_not_wait() -> None:
    pacer = Pacer(interval_seconds=0.2)
    began = time.monotonic()
    stamps: dict[int, list[float]] = {1: [], 2: []}

    async def take(chat: int) -> None:
        await pacer.turn(chat)
        stamps[chat].append(time.monotonic() - began)

    await asyncio.gather(take(1), take(1), take(1), take(2))
    assert stamps[2][0] < 0.05
    first, second, third = sorted(stamps[1])
    assert first < 0.05
    assert second >= 0.199
    assert third >= 0.399


async def test_a_penalty_blocks_its_chat_and_is_recorded() -> None:
    pacer = Pacer(interval_seconds=0)
    before = sample("coach_telegram_retry_after_total", "editMessageText")
    observed = sample("coach_telegram_retry_after_seconds_count", "editMessageText")
    with structlog.testing.capture_logs() as logs:
        pacer.penalise(5, "editMessageText", 0.3)
    assert 0.25 < pacer.blocked_for(5) <= 0.3
    assert pacer.blocked_for(6) == 0
    began = time.monotonic()
    await pacer.turn(6)
    assert time.monotonic() - began < 0.05
    await pacer.turn(5)
    assert time.monotonic() - began >= 0.29
    (penalty,) = pacer.penalties()
    assert (penalty.chat_id, penalty.method, penalty.retry_after_seconds) == (
        5,
        "editMessageText",
        0.3,
    )
    assert penalty.at.tzinfo is not None
    assert sample("coach_telegram_retry_after_total", "editMessageText") == before + 1
    assert sample("coach_telegram_retry_after_seconds_count", "editMessageText") == observed + 1
    assert logs == [
        {
            "event": "telegram_retry_after",
            "log_level": "warning",
            "chat_id": 5,
            "method": "editMessageText",
            "retry_after": 0.3,
        }
    ]


async def test_a_penalty_without_a_chat_blocks_the_whole_bot() -> None:
    pacer = Pacer(interval_seconds=0)
    pacer.penalise(None, "getMe", 0.2)
    assert pacer.blocked_for(1) > 0.15
    began = time.monotonic()
    await pacer.turn(1)
    assert time.monotonic() - began >= 0.19


async def test_a_wait_longer_than_the_caller_accepts_raises_flood_wait_at_once() -> None:
    pacer = Pacer()
    pacer.penalise(9, "sendMessage", 30)
    began = time.monotonic()
    with pytest.raises(FloodWait) as caught:
        await pacer.turn(9, max_wait_seconds=5)
    assert time.monotonic() - began < 0.05
    assert caught.value.chat_id == 9
    assert 29 < caught.value.seconds <= 30


async def test_the_bot_rate_spaces_calls_beyond_the_burst() -> None:
    pacer = Pacer(interval_seconds=0, per_second=20, burst=2)
    began = time.monotonic()
    await asyncio.gather(*(pacer.turn(chat) for chat in range(6)))
    # Two go at once, the other four 1/20 s apart.
    assert time.monotonic() - began >= 0.19


async def test_call_waits_out_a_short_retry_after_and_tries_again() -> None:
    pacer = Pacer(interval_seconds=0)
    answers: list[object] = [retry_after(1), "sent"]

    async def send() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    began = time.monotonic()
    assert await pacer.call(3, "sendMessage", send, max_wait_seconds=2) == "sent"
    assert time.monotonic() - began >= 0.99
    assert [p.chat_id for p in pacer.penalties()] == [3]


async def test_call_raises_flood_wait_when_telegram_asks_for_longer_than_the_cap() -> None:
    pacer = Pacer(interval_seconds=0)

    async def send() -> str:
        raise retry_after(60)

    with pytest.raises(FloodWait) as caught:
        await pacer.call(3, "sendMessage", send, max_wait_seconds=10)
    assert caught.value.seconds == 60
    assert isinstance(caught.value.__cause__, TelegramRetryAfter)
    assert pacer.blocked_for(3) > 59


async def test_call_retries_a_server_error_only_when_asked() -> None:
    pacer = Pacer(interval_seconds=0, sleep=lambda _s: asyncio.sleep(0))
    failures = 0

    async def send() -> str:
        nonlocal failures
        failures += 1
        if failures == 1:
            raise TelegramServerError(SendMessage(chat_id=1, text="x"), "Internal Server Error")
        return "sent"

    with pytest.raises(TelegramServerError):
        await pacer.call(1, "sendMessage", send, max_wait_seconds=1)
    failures = 0
    assert await pacer.call(1, "sendMessage", send, max_wait_seconds=1, retry_transient=True) == (
        "sent"
    )


async def test_a_chats_interval_counts_from_the_end_of_its_last_call() -> None:
    pacer = Pacer(interval_seconds=0.1)

    async def slow() -> None:
        await asyncio.sleep(0.2)

    await pacer.call(1, "editMessageText", slow, max_wait_seconds=0)
    ended = time.monotonic()
    await pacer.turn(1)
    assert time.monotonic() - ended >= 0.099
