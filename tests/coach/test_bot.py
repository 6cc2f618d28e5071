"""The whole bot, end to end: coach's real app (its lifespan polls Telegram) against the fake
Telegram Bot API server (aiogram's custom API server setting), with OpenRouter and GoPlus
replies recorded and replayed by real local HTTP servers.

A conversation streams with edits no faster than the chat's limit; a 429 with retry_after is
obeyed and recorded; an answer of 10,000+ characters arrives complete and in order; a primary
model's mid-stream 503 falls back; a chart photo takes the vision route; /mode switches the
persona; /scan and /watch read GoPlus, and a watched token's change alerts.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from keel.coach.advice import check
from keel.coach.app import create_app
from keel.coach.bootstrap import Wired
from keel.coach.bot.runner import BotRunner
from keel.coach.settings import CoachSettings
from keel.coach.telegram.splitting import split_message
from tests.chat_replay import ChatReplayServer
from tests.coach.fake_telegram import DEFAULT_TOKEN, FakeTelegram
from tests.coach.test_routing import JPEG
from tests.replay import ReplayServer, checked, serve_recordings

RECORDINGS = Path(__file__).parent / "recordings"
CHAT = 4242
INTERVAL = 1.0


def recorded_answer(name: str, model_index: int = -1) -> str:
    """The text a recorded stream carries (the last exchange's unless told)."""
    exchanges = json.loads((RECORDINGS / "openrouter" / f"{name}.json").read_text())["exchanges"]
    body = exchanges[model_index]["response"]["body_text"]
    text = ""
    for line in body.splitlines():
        if line.startswith("data: {"):
            frame = json.loads(line[6:])
            for choice in frame.get("choices", []):
                text += choice.get("delta", {}).get("content") or ""
    return text


@pytest.fixture(scope="module")
def _goplus() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def goplus(_goplus: ReplayServer) -> Iterator[ReplayServer]:
    with checked(_goplus):
        yield _goplus


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


Running = tuple[Wired, BotRunner]


@asynccontextmanager
async def bot(
    tmp_path: Path, telegram: FakeTelegram, llm_url: str, goplus_url: str = "http://127.0.0.1:1"
) -> AsyncIterator[Running]:
    settings = CoachSettings(
        telegram_token=DEFAULT_TOKEN,
        telegram_api_url=telegram.url,
        llm_base_url=llm_url,
        goplus_url=goplus_url,
        edit_interval_seconds=INTERVAL,
        llm_read_timeout_seconds=5,
        llm_answer_timeout_seconds=30,
    )
    product = create_app(settings, data_dir=str(tmp_path))
    async with product.lifespan():
        yield product.app.state.coach, product.app.state.runner


async def until(check_: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check_():
        if time.monotonic() > deadline:
            pytest.fail("the bot never got there")
        await asyncio.sleep(0.05)


def last_text(telegram: FakeTelegram) -> str:
    texts = telegram.chat(CHAT).bot_texts
    return texts[-1] if texts else ""


def answered(telegram: FakeTelegram, expected: str) -> Callable[[], bool]:
    return lambda: "".join(telegram.chat(CHAT).bot_texts).endswith(expected[-40:])


async def test_a_conversation_streams_with_paced_edits_and_the_final_text_lands(
    tmp_path: Path, telegram: FakeTelegram, openrouter: ChatReplayServer
) -> None:
    expected = check(recorded_answer("coaching")).text
    async with bot(tmp_path, telegram, openrouter.url("openrouter", "coaching")):
        question = telegram.send_text(CHAT, "I got stopped out and want to win it back now")
        await until(lambda: last_text(telegram) == expected)
    edits = [c for c in telegram.calls("editMessageText", chat_id=CHAT) if c.ok]
    sends = [c for c in telegram.calls("sendMessage", chat_id=CHAT) if c.ok]
    assert len(edits) >= 2  # the answer was shown growing, not only at the end
    paced = sorted(c.at for c in [*edits, *sends])
    gaps = [b - a for a, b in itertools.pairwise(paced)]
    assert min(gaps) >= INTERVAL * 0.9, gaps  # never faster than the chat's limit
    assert all(c.status != 400 for c in telegram.calls(chat_id=CHAT))  # no edit without change
    reply = telegram.chat(CHAT).messages[-1]
    assert reply.reply_to == question.message_id
    # The streamed text only ever grew by whole sentences: each shown text starts the answer.
    for earlier in reply.earlier_texts:
        assert expected.startswith(earlier.rstrip())


async def test_a_429_is_obeyed_and_recorded(
    tmp_path: Path, telegram: FakeTelegram, openrouter: ChatReplayServer
) -> None:
    expected = check(recorded_answer("coaching")).text
    telegram.fail_next("editMessageText", retry_after=2, chat_id=CHAT)
    async with bot(tmp_path, telegram, openrouter.url("openrouter", "coaching")) as (_, runner):
        telegram.send_text(CHAT, "I keep revenge trading")
        await until(lambda: last_text(telegram) == expected)
        assert [p.retry_after_seconds for p in runner.pacer.penalties()] == [2]
    refused = next(c for c in telegram.calls(chat_id=CHAT) if c.status == 429)
    after = [c for c in telegram.calls(chat_id=CHAT) if c.at > refused.at]
    assert after, "the answer went on after the wait"
    assert after[0].at - refused.at >= 2 * 0.95  # nothing reached the chat during the wait


async def test_a_10000_character_answer_arrives_complete_and_in_order(
    tmp_path: Path, telegram: FakeTelegram, openrouter: ChatReplayServer
) -> None:
    answer = recorded_answer("long_answer")
    assert len(answer) >= 10_000
    expected = split_message(check(answer).text)
    assert len(expected) >= 3
    async with bot(tmp_path, telegram, openrouter.url("openrouter", "long_answer")):
        telegram.send_text(CHAT, "Teach me to keep a trading journal, in detail")
        await until(lambda: telegram.chat(CHAT).bot_texts[-len(expected) :] == expected, 40)
    texts = telegram.chat(CHAT).bot_texts
    assert texts == expected  # every part, in order, nothing else left in the chat
    assert all(len(t.encode("utf-16-le")) // 2 <= 4096 for t in texts)


async def test_a_primary_that_fails_mid_stream_falls_back(
    tmp_path: Path, telegram: FakeTelegram, openrouter: ChatReplayServer
) -> None:
    expected = check(recorded_answer("primary_503_mid_stream")).text
    url = openrouter.url("openrouter", "primary_503_mid_stream")
    async with bot(tmp_path, telegram, url) as (wired, _):
        telegram.send_text(CHAT, "I lost five trades in a row")
        await until(lambda: telegram.chat(CHAT).bot_texts == [expected])
        context = await wired.conversations.context(CHAT, wired.clock.now())
    assert [t.content for t in context.turns][-1] == expected
    asked = [r.model for r in openrouter.asked("openrouter", "primary_503_mid_stream")]
    assert asked == ["deepseek/deepseek-chat", "meta-llama/llama-3.3-70b-instruct"]


async def test_a_chart_photo_takes_the_vision_route(
    tmp_path: Path, telegram: FakeTelegram, openrouter: ChatReplayServer
) -> None:
    expected = check(recorded_answer("chart_vision")).text
    async with bot(tmp_path, telegram, openrouter.url("openrouter", "chart_vision")):
        telegram.send_photo(CHAT, JPEG, caption="what do you see in my setup?")
        await until(lambda: last_text(telegram) == expected)
    (asked,) = openrouter.asked("openrouter", "chart_vision")
    assert asked.model == "google/gemini-2.5-flash"
    image = asked.body["messages"][-1]["content"][1]["image_url"]["url"]
    assert image.startswith("data:image/jpeg;base64,")


async def test_commands_mode_scan_and_a_watched_token_that_changes(
    tmp_path: Path,
    telegram: FakeTelegram,
    openrouter: ChatReplayServer,
    goplus: ReplayServer,
) -> None:
    llm = openrouter.url("openrouter", "coaching")
    async with bot(tmp_path, telegram, llm, goplus.url("goplus", "evm_honeypot")) as (
        wired,
        runner,
    ):
        telegram.send_text(CHAT, "/start")
        await until(lambda: "Welcome" in last_text(telegram))
        telegram.send_text(CHAT, "/mode")
        await until(lambda: "Choose how I coach you" in last_text(telegram))
        menu = telegram.chat(CHAT).messages[-1]
        telegram.press_button(CHAT, menu.message_id, "mode:stoic")
        await until(lambda: "The Stoic from now on" in last_text(telegram))
        assert (await wired.conversations.meet(CHAT, CHAT, "T", wired.clock.now())).persona == (
            "stoic"
        )
        telegram.send_text(CHAT, "/scan 0x9c2e5d8f1a4b7c0e3d6f9a2b5c8e1d4f7a0b3c6d")
        await until(lambda: "CRITICAL" in last_text(telegram))
        telegram.send_text(CHAT, "/scan not-an-address")
        await until(lambda: "0x" in last_text(telegram) and "CRITICAL" not in last_text(telegram))
        telegram.send_text(CHAT, "/frobnicate")
        await until(lambda: "/help" in last_text(telegram))
    # A watched token: the first scan is clean, the next one shows the rug being pulled.
    rug = "0x5a5b5c5d5e5f60616263646566676869707172ab"
    async with bot(tmp_path, telegram, llm, goplus.url("goplus", "watch_evm_rug")) as (
        wired,
        runner,
    ):
        telegram.send_text(CHAT, f"/watch {rug}")
        await until(lambda: "Watching it" in last_text(telegram))
        # The recording answers: as watched, unchanged (no alert), then rugged (an alert).
        later = wired.clock.now() + timedelta(minutes=11)
        assert await wired.watches.check_due(later, runner.alert) == 0
        assert await wired.watches.check_due(later, runner.alert) == 0  # not due again yet
        assert await wired.watches.check_due(later + timedelta(minutes=11), runner.alert) == 1
        await until(lambda: "sell tax rose from 2% to 45%" in last_text(telegram))
        telegram.send_text(CHAT, "/status")
        await until(lambda: "Watching 1 of 3" in last_text(telegram))


async def test_webhook_mode_takes_updates_with_the_secret_only(
    tmp_path: Path, telegram: FakeTelegram, openrouter: ChatReplayServer
) -> None:
    settings = CoachSettings(
        telegram_token=DEFAULT_TOKEN,
        telegram_api_url=telegram.url,
        llm_base_url=openrouter.url("openrouter", "coaching"),
        mode="webhook",
        public_url="https://coach.example.org",
        edit_interval_seconds=INTERVAL,
    )
    product = create_app(settings, data_dir=str(tmp_path))
    update = {
        "update_id": 7,
        "message": {
            "message_id": 1,
            "date": 1765000000,
            "chat": {"id": CHAT, "type": "private"},
            "from": {"id": CHAT, "is_bot": False, "first_name": "Ann"},
            "text": "/help",
        },
    }
    async with product.lifespan():
        (registered,) = telegram.calls("setWebhook")
        assert registered.params["url"] == "https://coach.example.org/coach/telegram/webhook"
        secret = registered.params["secret_token"]
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://coach") as client:
            forged = await client.post(
                "/telegram/webhook",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": "not-it"},
            )
            assert forged.status_code == 401
            assert forged.headers["content-type"].startswith("application/problem+json")
            bad = await client.post(
                "/telegram/webhook",
                content=b"{not json",
                headers={"X-Telegram-Bot-Api-Secret-Token": secret},
            )
            assert bad.status_code == 400
            taken = await client.post(
                "/telegram/webhook",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": secret},
            )
            assert taken.status_code == 200
            await until(lambda: "/scan" in last_text(telegram))
    assert not telegram.calls("getUpdates")  # webhook mode never polls
