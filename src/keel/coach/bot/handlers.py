"""The bot's commands and messages, as aiogram handlers over :class:`~keel.coach.bot.service`.

Handlers parse what Telegram sent, call the service and send what it says; every call to
Telegram goes through the process's :class:`~keel.coach.telegram.pacing.Pacer`. One chat's
messages are answered one at a time, in order (a second question waits for the first answer),
so two answers never interleave in a conversation's history.
"""

from __future__ import annotations

import asyncio
import html
import io
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

import structlog
from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from keel.coach.bot.paying import Paying, Said, looks_like_hash
from keel.coach.bot.sending import send_text
from keel.coach.bot.service import Coach, Sender
from keel.coach.telegram.pacing import FloodWait, Pacer
from keel.coach.telegram.streaming import StreamingReply

log = structlog.get_logger("keel.coach")

COMMANDS: Final = (
    BotCommand(command="start", description="Meet the coach"),
    BotCommand(command="mode", description="Switch the coach's personality"),
    BotCommand(command="reset", description="Start the conversation afresh"),
    BotCommand(command="scan", description="Risk scan of a token: /scan <address> [chain]"),
    BotCommand(command="watch", description="Alert me when a token's risk changes"),
    BotCommand(command="unwatch", description="Stop watching a token"),
    BotCommand(command="subscribe", description="Raise your daily limits"),
    BotCommand(command="status", description="Your plan, usage and watches"),
    BotCommand(command="help", description="What the coach can do"),
)
HELP: Final = (
    "I'm a trading-psychology coach: talk to me about discipline, losses, FOMO, tilt, your "
    "plan or your journal, or send a chart screenshot.\n\n"
    "/mode: switch my personality (8 of them)\n"
    "/reset: start our conversation afresh\n"
    "/scan <address> [chain]: rug-pull risk of a token (EVM or Solana)\n"
    "/watch <address> [chain]: tell me when that risk changes; /unwatch to stop\n"
    "/subscribe: higher daily limits; paste a payment's transaction hash to check it\n"
    "/status: your plan, today's usage and your watches\n\n"
    "I never tell you to buy or sell anything. Not financial advice."
)
SORRY: Final = "Something went wrong on my side and I couldn't answer that. Please try again."
# Chats whose lock was used recently; a bound keeps an idle million from staying in memory.
_LOCKS_KEPT: Final = 10_000
_PHOTO_MAX_BYTES: Final = 10 * 2**20

Say = Callable[[int, str], Awaitable[None]]


class ChatLocks:
    """One lock per chat, the least recently used forgotten past a bound."""

    def __init__(self, keep: int = _LOCKS_KEPT) -> None:
        self._locks: OrderedDict[int, asyncio.Lock] = OrderedDict()
        self._keep = keep

    @asynccontextmanager
    async def hold(self, chat_id: int) -> AsyncIterator[None]:
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = self._locks[chat_id] = asyncio.Lock()
        self._locks.move_to_end(chat_id)
        while len(self._locks) > self._keep:
            oldest, old = next(iter(self._locks.items()))
            if old.locked():
                break
            del self._locks[oldest]
        async with lock:
            yield


def sender_of(message: Message) -> Sender:
    user = message.from_user
    assert user is not None  # handlers are registered for private chats with a sender
    return Sender(user.id, message.chat.id, user.first_name or "")


def persona_keyboard(coach: Coach, current: str) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                text=f"{'✅ ' if p.key == current else ''}{p.emoji} {p.name}",
                callback_data=f"mode:{p.key}",
            )
        ]
        for p in coach.personas.personas.values()
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def build_router(coach: Coach, paying: Paying, bot: Bot, pacer: Pacer) -> Router:
    """The coach's handlers, for a dispatcher of ``bot``."""
    router = Router(name="coach")
    router.message.filter(F.chat.type == "private", F.from_user)
    locks = ChatLocks()

    async def say(
        chat_id: int,
        text: str,
        *,
        parse_mode: str | None = None,
        reply_markup: InlineKeyboardMarkup | None = None,
    ) -> None:
        await send_text(bot, pacer, chat_id, text, parse_mode=parse_mode, reply_markup=reply_markup)

    async def answer(message: Message, question: str, chart: bytes | None = None) -> None:
        sender = sender_of(message)
        async with locks.hold(sender.chat_id):
            reply = StreamingReply(
                bot, pacer, chat_id=sender.chat_id, reply_to_message_id=message.message_id
            )
            try:
                await coach.ask(sender, question, reply, chart)
            except FloodWait:
                log.warning("coach_answer_flood_wait", chat_id=sender.chat_id)
            except Exception:
                # The database or a bug, not the user: say so rather than go quiet.
                log.exception("coach_answer_failed", chat_id=sender.chat_id)
                await say(sender.chat_id, SORRY)
            finally:
                await reply.close()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        user = await coach.meet(sender_of(message))
        persona = coach.personas.get(user.persona)
        hello = "Welcome" if user.created else "Welcome back"
        await say(
            message.chat.id,
            f"{hello}, {user.first_name or 'trader'}. You're talking to {persona.emoji} "
            f"{persona.name}.\n\n{HELP}",
        )

    @router.message(Command("help"))
    async def help_(message: Message) -> None:
        await say(message.chat.id, HELP)

    @router.message(Command("mode"))
    async def mode(message: Message, command: CommandObject) -> None:
        sender = sender_of(message)
        if command.args:
            await say(sender.chat_id, await coach.switch_persona(sender, command.args))
            return
        user = await coach.meet(sender)
        await say(
            sender.chat_id,
            "Choose how I coach you (you can switch any time; the conversation carries on):",
            reply_markup=persona_keyboard(coach, user.persona),
        )

    @router.callback_query(F.data.startswith("mode:"))
    async def mode_chosen(query: CallbackQuery) -> None:
        key = (query.data or "").removeprefix("mode:")
        if query.message is None or query.from_user is None:
            await query.answer()
            return
        sender = Sender(query.from_user.id, query.message.chat.id, query.from_user.first_name)
        said = await coach.switch_persona(sender, key)
        await query.answer(said[:200])
        await say(sender.chat_id, said)

    @router.message(Command("reset"))
    async def reset(message: Message) -> None:
        sender = sender_of(message)
        async with locks.hold(sender.chat_id):
            await say(sender.chat_id, await coach.reset(sender))

    @router.message(Command("scan"))
    async def scan(message: Message, command: CommandObject) -> None:
        said = await coach.scan(sender_of(message), command.args or "")
        await say(message.chat.id, said, parse_mode="HTML")

    @router.message(Command("watch"))
    async def watch(message: Message, command: CommandObject) -> None:
        said = await coach.watch(sender_of(message), command.args or "")
        await say(message.chat.id, said, parse_mode="HTML")

    @router.message(Command("unwatch"))
    async def unwatch(message: Message, command: CommandObject) -> None:
        said = await coach.unwatch(sender_of(message), command.args or "")
        await say(message.chat.id, said, parse_mode="HTML")

    async def show(chat_id: int, said: Said) -> None:
        markup = None
        if said.choices:
            markup = InlineKeyboardMarkup(
                inline_keyboard=[
                    [InlineKeyboardButton(text=c, callback_data=f"paid-on:{c}")]
                    for c in said.choices
                ]
            )
        await say(chat_id, said.html, parse_mode="HTML", reply_markup=markup)

    @router.message(Command("subscribe"))
    async def subscribe(message: Message, command: CommandObject) -> None:
        user = await coach.meet(sender_of(message))
        await show(message.chat.id, await paying.subscribe(user.id, command.args or ""))

    @router.callback_query(F.data.startswith("paid-on:"))
    async def paid_on(query: CallbackQuery) -> None:
        await query.answer()
        if query.message is None:
            return
        chain = (query.data or "").removeprefix("paid-on:")
        await show(query.message.chat.id, await paying.chose(query.from_user.id, chain))

    @router.message(Command("status"))
    async def status(message: Message) -> None:
        await say(message.chat.id, await coach.status(sender_of(message)))

    @router.message(F.photo)
    async def photo(message: Message) -> None:
        assert message.photo is not None
        largest = max(message.photo, key=lambda p: p.width * p.height)
        if largest.file_size is not None and largest.file_size > _PHOTO_MAX_BYTES:
            await say(message.chat.id, "That picture is too large for me; send a screenshot.")
            return
        buffer = io.BytesIO()
        await bot.download(largest, destination=buffer)
        await answer(message, message.caption or "", buffer.getvalue())

    @router.message(F.text & ~F.text.startswith("/"))
    async def text(message: Message) -> None:
        assert message.text is not None
        if looks_like_hash(message.text):  # a payment's transaction hash, pasted
            user = await coach.meet(sender_of(message))
            await show(message.chat.id, await paying.pasted(user.id, message.text))
            return
        await answer(message, message.text)

    @router.message(F.text.startswith("/"))
    async def unknown_command(message: Message) -> None:
        await say(
            message.chat.id,
            f"I don't know {html.escape((message.text or '').split()[0])}. /help lists what I do.",
        )

    return router
