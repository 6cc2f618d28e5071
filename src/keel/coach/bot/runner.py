"""The bot's process side: one aiogram Bot and Dispatcher, fed by long polling or by
Telegram's webhook, and the notices other parts send (a subscription unlocked, a watched
token's risk changed)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from datetime import timedelta
from typing import Any, Final

import structlog
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Update
from pydantic import SecretStr

from keel.coach.billing.coinpay import Outcome
from keel.coach.bot.handlers import COMMANDS, build_router
from keel.coach.bot.paying import Paying
from keel.coach.bot.sending import send_text
from keel.coach.bot.service import Coach
from keel.coach.settings import CoachSettings
from keel.coach.telegram.pacing import Pacer
from keel.coach.watching import Watches
from keel.core.clock import Clock
from keel.core.jobs import Periodic, run_periodic

log = structlog.get_logger("keel.coach")

WEBHOOK_PATH: Final = "/telegram/webhook"
SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
# Updates a webhook has handed over and not finished; past this a webhook gets 503 (Telegram
# retries), so a flood cannot pile up tasks without bound.
MAX_PENDING_UPDATES: Final = 1000


def webhook_secret(settings: CoachSettings, token: SecretStr) -> str:
    """The secret Telegram sends with each update: the configured one, else one derived from
    the bot token (secret already; 64 hex characters, within Telegram's alphabet)."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    digest = hashlib.sha256(b"keel-coach-webhook:" + token.get_secret_value().encode())
    return digest.hexdigest()


class BotRunner:
    def __init__(
        self, coach: Coach, paying: Paying, settings: CoachSettings, token: SecretStr
    ) -> None:
        self.settings = settings
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
        self.bot = Bot(token.get_secret_value(), session=session)
        rate = settings.telegram_calls_per_second
        self.pacer = Pacer(
            interval_seconds=settings.edit_interval_seconds,
            per_second=rate,
            burst=max(1, int(rate)),
        )
        self.dispatcher = Dispatcher()
        self.dispatcher.include_router(build_router(coach, paying, self.bot, self.pacer))
        self.secret = webhook_secret(settings, token)
        self._pending: set[asyncio.Task[Any]] = set()

    async def say(self, chat_id: int, text: str) -> None:
        await send_text(self.bot, self.pacer, chat_id, text)

    async def notify_unlocked(self, outcome: Outcome) -> None:
        if outcome.chat_id is None or outcome.paid_until is None:
            return
        await self.say(
            outcome.chat_id,
            f"Payment received, thank you. Your plan is pro until "
            f"{outcome.paid_until:%Y-%m-%d %H:%M} UTC.",
        )

    async def prepare(self) -> None:
        """Tell Telegram the commands (the menu), and how updates reach us."""
        await self.bot.set_my_commands(list(COMMANDS))
        if self.settings.mode == "webhook":
            url = self.settings.public_url.rstrip("/") + "/coach" + WEBHOOK_PATH
            await self.bot.set_webhook(
                url,
                secret_token=self.secret,
                allowed_updates=self.dispatcher.resolve_used_update_types(),
            )
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)

    async def alert(self, chat_id: int, text: str) -> None:
        """A watched token's risk changed (Telegram HTML)."""
        await send_text(self.bot, self.pacer, chat_id, text, parse_mode="HTML")

    async def watch(self, watches: Watches, clock: Clock, stop: asyncio.Event) -> None:
        """Check watched tokens until ``stop`` is set: every so often, the due ones."""

        async def check_due() -> None:
            await watches.check_due(clock.now(), self.alert)

        pause = timedelta(seconds=min(60.0, watches.interval.total_seconds() / 2))
        await run_periodic(Periodic("coach-watches", pause, check_due), stop)

    async def poll(self, stop: asyncio.Event) -> None:
        """Long polling until ``stop`` is set."""
        polling = asyncio.create_task(
            self.dispatcher.start_polling(
                self.bot,
                handle_signals=False,
                close_bot_session=False,
                allowed_updates=self.dispatcher.resolve_used_update_types(),
            )
        )
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait({polling, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not polling.done():
            with contextlib.suppress(RuntimeError):  # not started yet
                await self.dispatcher.stop_polling()
        waiting.cancel()
        await polling

    def secret_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.secret.encode())

    def accept(self, update: dict[str, Any]) -> bool:
        """Take a webhook update: handled in the background (Telegram wants a quick 200).
        False when too many are pending (the route answers 503 and Telegram retries)."""
        if len(self._pending) >= MAX_PENDING_UPDATES:
            return False
        parsed = Update.model_validate(update, context={"bot": self.bot})
        task = asyncio.create_task(self._handle(parsed))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    async def _handle(self, update: Update) -> None:
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Exception:  # one bad update must not take the others down
            log.exception("coach_update_failed", update_id=update.update_id)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self.bot.session.close()
