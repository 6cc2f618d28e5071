"""A fake Telegram server and a real aiogram Bot talking to it, per test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from aiogram import Bot

from tests.coach.fake_telegram import FakeTelegram


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    client = fake.make_bot()
    try:
        yield client
    finally:
        await client.session.close()


async def eventually(check: Callable[[], bool], *, seconds: float = 5.0) -> None:
    """Wait until ``check()`` holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("the condition never held")
        await asyncio.sleep(0.01)
