"""The fake Telegram server speaks the Bot API as aiogram expects and refuses what Telegram
refuses."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError, TelegramRetryAfter
from aiogram.filters import CommandStart
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiohttp import web

from tests.coach.fake_telegram import NOT_MODIFIED, FakeTelegram, FloodControl
from tests.coach.telegram.conftest import eventually


async def test_a_dispatcher_polls_updates_and_its_answers_reach_the_chat(
    fake: FakeTelegram, bot: Bot
) -> None:
    dispatcher = Dispatcher()
    photos: list[bytes] = []

    @dispatcher.message(CommandStart())
    async def start(message: Message) -> None:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Pro", callback_data="plan:pro")]]
        )
        await message.answer("Welcome. Pick a plan.", reply_markup=keyboard)

    @dispatcher.message(F.photo)
    async def chart(message: Message, bot: Bot) -> None:
        assert message.photo is not None
        downloaded = await bot.download(message.photo[-1].file_id)
        assert downloaded is not None
        photos.append(downloaded.read())
        await message.reply(f"Got your chart: {message.caption}")

    @dispatcher.callback_query(F.data == "plan:pro")
    async def plan(query: CallbackQuery) -> None:
        await query.answer("Pro it is")

    polling = asyncio.create_task(
        dispatcher.start_polling(bot, polling_timeout=1, handle_signals=False)
    )
    try:
        fake.send_text(7, "/start")
        await eventually(lambda: fake.chat(7).bot_texts == ["Welcome. Pick a plan."])
        welcome = fake.chat(7).messages[-1]
        fake.press_button(7, welcome.message_id, "plan:pro")
        fake.send_photo(7, b"\x89PNG fake chart", caption="BTC 4h")
        await eventually(lambda: len(fake.chat(7).bot_texts) == 2 and bool(fake.answered_callbacks))
    finally:
        await dispatcher.stop_polling()
        await polling

    assert photos == [b"\x89PNG fake chart"]
    assert fake.chat(7).bot_texts[1] == "Got your chart: BTC 4h"
    assert fake.chat(7).messages[-1].reply_to == fake.chat(7).messages[-2].message_id
    assert fake.answered_callbacks[0]["text"] == "Pro it is"
    assert welcome.reply_markup == {
        "inline_keyboard": [[{"text": "Pro", "callback_data": "plan:pro"}]]
    }
    assert fake.pending_updates() == 0


async def test_long_polling_waits_for_an_update_and_honours_the_offset(
    fake: FakeTelegram, bot: Bot
) -> None:
    began = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert time.monotonic() - began >= 0.9

    asyncio.get_running_loop().call_later(0.2, fake.send_text, 7, "hello")
    began = time.monotonic()
    (update,) = await bot.get_updates(timeout=5)
    assert time.monotonic() - began < 1
    assert update.message is not None
    assert update.message.text == "hello"
    fake.send_text(7, "again")
    (same, latest) = await bot.get_updates(offset=update.update_id)
    assert same.update_id == update.update_id
    assert await bot.get_updates(offset=latest.update_id + 1) == []


async def test_a_second_poller_ends_the_first_with_409(fake: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(bot.get_updates(timeout=1))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first
    assert await second == []


async def test_text_limits_and_unchanged_edits_are_refused_as_telegram_does(
    fake: FakeTelegram, bot: Bot
) -> None:
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(7, "📈" * 2049)
    message = await bot.send_message(7, "📈" * 2048)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(text="📈" * 2048, chat_id=7, message_id=message.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=7, message_id=999)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(7, "  ")
    assert fake.calls("editMessageText")[0].description == NOT_MODIFIED


async def test_flood_control_answers_429_and_blocks_the_chat_for_the_wait(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.flood = FloodControl(0.5, retry_after_seconds=1)
    message = await bot.send_message(7, "one")
    await bot.edit_message_text(text="two", chat_id=7, message_id=message.message_id)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.edit_message_text(text="three", chat_id=7, message_id=message.message_id)
    assert caught.value.retry_after == 1
    # The whole chat waits, every method; another chat does not.
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(7, "four")
    await bot.send_message(8, "elsewhere")
    await asyncio.sleep(1.05)
    await bot.edit_message_text(text="three", chat_id=7, message_id=message.message_id)
    assert [c.status for c in fake.calls(chat_id=7)] == [200, 200, 429, 429, 200]


async def test_forced_failures_hit_the_next_calls_of_a_method(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", 2, error_code=400, description="Bad Request: chat not found")
    for _ in range(2):
        with pytest.raises(TelegramBadRequest, match="chat not found"):
            await bot.send_message(7, "x")
    await bot.send_message(7, "x")


async def test_updates_go_to_the_webhook_with_its_secret(fake: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []

    async def hook(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        received.append((secret, await request.json()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        with pytest.raises(TelegramConflictError):
            await bot.get_updates()
        fake.send_text(7, "/start")
        await eventually(lambda: len(received) == 1)
    finally:
        await bot.delete_webhook()
        await runner.cleanup()
    secret, update = received[0]
    assert secret == "s3cret"
    assert update["message"]["text"] == "/start"  # type: ignore[index]


async def test_the_server_answers_hundreds_of_calls_a_second(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_message(7, "0")
    began = time.monotonic()

    async def chat(chat_id: int) -> None:
        sent = await bot.send_message(chat_id, "0")
        for n in range(1, 50):
            await bot.edit_message_text(text=str(n), chat_id=chat_id, message_id=sent.message_id)

    await asyncio.gather(*(chat(chat_id) for chat_id in range(100, 110)))
    elapsed = time.monotonic() - began
    assert len(fake.calls()) == 501
    assert 500 / elapsed > 200, f"{500 / elapsed:.0f} calls/s"
    assert message.message_id == 1


async def test_a_photo_the_bot_uploads_can_be_fetched_back(fake: FakeTelegram, bot: Bot) -> None:
    upload = BufferedInputFile(b"\x89PNG risk chart", filename="chart.png")
    message = await bot.send_photo(7, upload, caption="Your drawdown")
    assert message.photo is not None
    stored = await bot.get_file(message.photo[-1].file_id)
    assert stored.file_path is not None
    downloaded = await bot.download_file(stored.file_path)
    assert downloaded is not None
    assert downloaded.read() == b"\x89PNG risk chart"
    (shown,) = fake.chat(7).messages
    assert shown.caption == "Your drawdown"
    assert shown.photo_file_id == message.photo[-1].file_id
