"""Sending a whole (not streamed) text: split at Telegram's limit, each part paced and sent
again after a flood wait or a transient failure, so it lands."""

from __future__ import annotations

from typing import Final

from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup

from keel.coach.telegram.pacing import Pacer
from keel.coach.telegram.splitting import split_message

# A command's answer may wait this long for a flood wait to pass; past it, FloodWait.
MAX_WAIT_SECONDS: Final = 60.0


async def send_text(
    bot: Bot,
    pacer: Pacer,
    chat_id: int,
    text: str,
    *,
    parse_mode: str | None = None,
    reply_markup: InlineKeyboardMarkup | None = None,
) -> None:
    """Send ``text``; ``reply_markup`` goes with the last part. A text with ``parse_mode``
    (Telegram HTML) must not be longer than one message: a cut could split a tag."""
    parts = split_message(text) if parse_mode is None else [text]
    for index, part in enumerate(parts):
        markup = reply_markup if index == len(parts) - 1 else None

        async def send(part: str = part, markup: InlineKeyboardMarkup | None = markup) -> None:
            await bot.send_message(chat_id, part, parse_mode=parse_mode, reply_markup=markup)

        await pacer.call(
            chat_id, "sendMessage", send, max_wait_seconds=MAX_WAIT_SECONDS, retry_transient=True
        )
