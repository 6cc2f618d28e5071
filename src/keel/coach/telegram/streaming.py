"""Streaming a model's answer into one Telegram chat.

    reply = StreamingReply(bot, pacer, chat_id=chat_id, reply_to_message_id=question_id)
    await reply.start()                       # "typing…" until the first text shows
    async for piece in model_stream:
        await reply.feed(piece)               # returns at once
    # the model failed mid-answer and a fallback starts over:
    await reply.restart("Switching to another model…")
    message_ids = await reply.finish()        # the complete answer, in order

How it behaves, and why:

* **Plain text.** Messages go out with no parse mode. A streamed prefix of Markdown or HTML is
  routinely malformed (an unclosed ``**`` or ``<b>``), and Telegram refuses such an edit with
  400 "can't parse entities"; model Markdown reads fine as text, and fenced code is kept
  whole per message by the splitter (:mod:`keel.coach.telegram.splitting`).
* **No placeholder.** :meth:`StreamingReply.start` shows the chat action "typing…" (renewed
  until the first text) instead of sending "…": no extra edit per answer, nothing to clean up
  when the model fails before its first word, and the first text goes out as soon as the
  chat's turn allows.
* **Edits on a background task.** :meth:`StreamingReply.feed` only appends. The task takes
  the chat's turn from the shared :class:`~keel.coach.telegram.pacing.Pacer` first and reads
  the text after, so everything fed while it waited goes out in one edit; it edits only when
  the message would change. Past one message, the full first part is frozen (left as it is)
  and the stream goes on in a new message.
* **The final text always lands.** :meth:`StreamingReply.finish` edits each message whose
  part changed, sends the parts beyond them as new messages in order, and when an edit is
  refused (message too old, deleted, not editable, or a flood wait past
  ``edit_wait_seconds``) sends that part and every later one as new messages and deletes the
  stale ones. It raises only when Telegram refuses to take new messages at all (the bot is
  blocked, or a flood wait past ``send_wait_seconds``:
  :class:`~keel.coach.telegram.pacing.FloodWait`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import structlog
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import Message, ReplyParameters
from prometheus_client import Counter

from keel.coach.telegram.pacing import FloodWait, Pacer
from keel.coach.telegram.splitting import TELEGRAM_LIMIT, Piece, plan_split

__all__ = ["StreamingReply"]

log = structlog.get_logger("keel.coach.telegram")

EDITS = Counter(
    "coach_telegram_stream_edits_total",
    "Edits of streamed answers: sent, skipped as unchanged, not modified, refused",
    ["outcome"],
)
RESENDS = Counter(
    "coach_telegram_final_resends_total",
    "Answers whose final text went out as new messages because an edit was refused",
)

# The chat action lasts about 5 s on the user's screen.
_TYPING_EVERY_SECONDS = 4.5
# "typing…" is shown only when no text came this soon: most streamed answers start sooner, and
# every action spends the bot's ~30 calls a second (bench/coach_bot.py: a third of the calls).
_TYPING_AFTER_SECONDS = 1.0
# An editor that fails this many times in a row stops; finish() still delivers.
_MAX_EDITOR_FAILURES = 5


@dataclass
class _Shown:
    message_id: int
    text: str  # what the message shows


@dataclass(frozen=True)
class _Step:
    kind: Literal["send", "edit", "delete"]
    index: int  # into the reply's messages
    text: str = ""
    freeze: Piece | None = None  # the part this call completes, frozen once it lands
    source: str = ""  # the text ``freeze`` was cut from


class StreamingReply:
    """One answer streamed into one chat (the module docstring says how).

    ``pacer`` is the process's one pacer for ``bot``. ``limit`` is the message length in UTF-16
    units (tests lower it). ``edit_wait_seconds`` bounds a flood wait a final edit accepts
    before the part is sent anew; ``send_wait_seconds`` one a final send accepts before
    :meth:`finish` raises :class:`~keel.coach.telegram.pacing.FloodWait`.
    """

    def __init__(
        self,
        bot: Bot,
        pacer: Pacer,
        *,
        chat_id: int,
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
        limit: int = TELEGRAM_LIMIT,
        edit_wait_seconds: float = 10.0,
        send_wait_seconds: float = 120.0,
    ) -> None:
        self.chat_id = chat_id
        self.reply_to_message_id = reply_to_message_id
        self.message_thread_id = message_thread_id
        self.limit = limit
        self.edit_wait_seconds = edit_wait_seconds
        self.send_wait_seconds = send_wait_seconds
        self._bot = bot
        self._pacer = pacer
        self._chunks: list[str] = []
        self._note = ""
        # restart() bumps the generation; the editor resets the messages when it sees it.
        self._generation = 0
        self._shown_generation = 0
        self._messages: list[_Shown] = []
        self._frozen = 0  # leading messages that hold a finished part
        self._cursor = 0  # where the live message's part starts in the text
        self._frozen_source = ""  # the text up to the cursor, as it was cut
        self._changed = asyncio.Event()
        self._closed = False
        self._finishing = False
        self._in_call = False
        self._editor: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None

    @property
    def text(self) -> str:
        """The answer fed since the start or the last restart."""
        return "".join(self._chunks)

    @property
    def message_ids(self) -> list[int]:
        """The messages that show the answer so far, in order."""
        return [shown.message_id for shown in self._messages]

    async def start(self) -> None:
        """Show "typing…" until the first text and start the editor. A second call does
        nothing; :meth:`feed` starts the reply if this was not called."""
        if self._closed:
            raise RuntimeError("this reply is finished")
        if self._editor is not None:
            return
        self._editor = asyncio.create_task(self._edit_loop(), name=f"coach-edit-{self.chat_id}")
        self._typing = asyncio.create_task(self._keep_typing(), name=f"coach-typing-{self.chat_id}")

    async def feed(self, piece: str) -> None:
        """Append ``piece`` of the answer. Never waits for Telegram."""
        if self._closed:
            raise RuntimeError("this reply is finished")
        if self._editor is None:
            await self.start()
        if piece:
            self._chunks.append(piece)
            self._changed.set()

    async def restart(self, note: str) -> None:
        """Start the answer over (a fallback model takes over): the text fed so far is
        dropped, ``note`` shows until new text arrives, and the messages beyond the first
        are deleted. Never waits for Telegram."""
        if self._closed:
            raise RuntimeError("this reply is finished")
        self._chunks.clear()
        self._note = note
        self._generation += 1
        self._changed.set()

    async def finish(self, final_text: str | None = None) -> list[int]:
        """Make ``final_text`` (default: the text fed) the whole answer and return the ids of
        its messages, in order. Raises ValueError for a blank text (the reply stays open),
        :class:`~keel.coach.telegram.pacing.FloodWait` or a Telegram error only when a new
        message cannot be sent."""
        text = self.text if final_text is None else final_text
        if not text.strip():
            raise ValueError("an answer needs some text")
        if self._closed:
            raise RuntimeError("this reply is finished")
        self._closed = True
        await self._stop_background()
        if self._generation != self._shown_generation:
            self._unfreeze()
        # Frozen parts stay when the final text still begins with what they were cut from.
        keep = self._frozen if text.startswith(self._frozen_source) else 0
        plan = plan_split(text, self.limit, start=self._cursor if keep else 0)
        parts = [piece.render(text) for piece in plan]
        kept = self._messages[:keep]
        stale = self._messages[keep + len(parts) :]
        resending = False
        try:
            for index, part in enumerate(parts, start=keep):
                if not resending and index < len(self._messages):
                    shown = self._messages[index]
                    if await self._edit_final(shown, part):
                        kept.append(shown)
                        continue
                    # This part and every later one go out as new messages, so the answer
                    # reads in order; the messages they replace are deleted.
                    resending = True
                    stale = self._messages[index:]
                    RESENDS.inc()
                message = await self._pacer.call(
                    self.chat_id,
                    "sendMessage",
                    functools.partial(self._send, part, index),
                    max_wait_seconds=self.send_wait_seconds,
                    retry_transient=True,
                )
                kept.append(_Shown(message.message_id, part))
        finally:
            self._messages = kept
        for shown in stale:
            await self._delete_quietly(shown)
        return self.message_ids

    async def close(self) -> None:
        """Stop the background work without a final text (the handler gave up); what was
        shown stays. Does nothing after :meth:`finish`, so a ``finally`` may call it."""
        self._closed = True
        if not self._finishing:
            await self._stop_background()

    async def __aenter__(self) -> StreamingReply:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # The editor: the only writer of the messages' state until finish() stops it.

    async def _edit_loop(self) -> None:
        failures = 0
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._finishing:
                return
            try:
                await self._catch_up()
                failures = 0
            except TelegramRetryAfter:
                # Recorded by the pacer; the chat's next turn comes after the wait.
                self._changed.set()
            except (TelegramForbiddenError, TelegramUnauthorizedError) as exc:
                log.warning("telegram_stream_stopped", chat_id=self.chat_id, error=exc.message)
                return
            except TelegramAPIError as exc:
                failures += 1
                log.warning("telegram_stream_error", chat_id=self.chat_id, error=exc.message)
                if failures >= _MAX_EDITOR_FAILURES:
                    return
                self._changed.set()

    async def _catch_up(self) -> None:
        """Bring the messages up to the latest text, one call per turn of the chat."""
        while not self._finishing and self._next_step() is not None:
            await self._pacer.turn(self.chat_id)
            # Read after the wait: everything fed meanwhile goes out in this one call.
            step = self._next_step()
            if step is None or self._finishing:
                return
            await self._take(step)

    def _next_step(self) -> _Step | None:
        """The next call that brings the messages closer to the text; None when they show
        it. Freezes a part already shown in full without a call."""
        if self._generation != self._shown_generation:
            if len(self._messages) > 1:
                return _Step("delete", len(self._messages) - 1)
            self._shown_generation = self._generation
            self._unfreeze()
        while True:
            text = self.text or self._note
            plan = plan_split(text, self.limit, start=self._cursor)
            if not plan:
                return None
            piece, index = plan[0], self._frozen
            rendered = piece.render(text)
            freeze = piece if len(plan) > 1 else None
            if index >= len(self._messages):
                return _Step("send", index, rendered, freeze, text)
            if self._messages[index].text != rendered:
                return _Step("edit", index, rendered, freeze, text)
            if freeze is None:
                return None
            self._freeze(freeze, text)

    async def _take(self, step: _Step) -> None:
        self._in_call = True
        try:
            if step.kind == "delete":
                await self._delete_step(step)
                return
            if step.kind == "send":
                message = await self._pacer.attempt(
                    self.chat_id, "sendMessage", lambda: self._send(step.text, step.index)
                )
                self._messages.append(_Shown(message.message_id, step.text))
            elif not await self._edit_step(step):
                return
        finally:
            self._in_call = False
        if step.freeze is not None:
            self._freeze(step.freeze, step.source)

    async def _edit_step(self, step: _Step) -> bool:
        shown = self._messages[step.index]
        try:
            await self._pacer.attempt(
                self.chat_id, "editMessageText", lambda: self._edit(shown, step.text)
            )
        except (TelegramBadRequest, TelegramNotFound) as exc:
            if not _not_modified(exc):
                # Gone or no longer editable: the live part goes on in a new message.
                EDITS.labels("refused").inc()
                log.warning("telegram_edit_refused", chat_id=self.chat_id, error=exc.message)
                del self._messages[step.index :]
                if not _gone(exc):  # still in the chat with half an answer: take it down
                    await self._delete_quietly(shown)
                return False
            EDITS.labels("not_modified").inc()
        else:
            EDITS.labels("sent").inc()
        shown.text = step.text
        return True

    async def _delete_step(self, step: _Step) -> None:
        shown = self._messages.pop(step.index)
        try:
            await self._pacer.attempt(
                self.chat_id, "deleteMessage", lambda: self._delete(shown.message_id)
            )
        except TelegramRetryAfter:
            self._messages.insert(step.index, shown)
            raise
        except TelegramAPIError as exc:
            log.info("telegram_delete_failed", chat_id=self.chat_id, error=exc.message)

    def _freeze(self, piece: Piece, source: str) -> None:
        self._frozen += 1
        self._cursor = piece.end
        self._frozen_source = source[: piece.end]

    def _unfreeze(self) -> None:
        self._frozen = 0
        self._cursor = 0
        self._frozen_source = ""

    async def _keep_typing(self) -> None:
        await asyncio.sleep(_TYPING_AFTER_SECONDS)
        while not self._messages and not self._finishing:
            # Best effort: never waits for a flood wait, never retried.
            with contextlib.suppress(FloodWait, TelegramAPIError):
                await self._pacer.call(
                    self.chat_id,
                    "sendChatAction",
                    self._typing_action,
                    max_wait_seconds=0,
                    paced=False,
                    attempts=1,
                )
            await asyncio.sleep(_TYPING_EVERY_SECONDS)

    async def _stop_background(self) -> None:
        self._finishing = True
        self._changed.set()
        tasks = [task for task in (self._typing, self._editor) if task is not None]
        if self._typing is not None:
            self._typing.cancel()
        # An edit in flight is let finish, so what the message shows stays known.
        if self._editor is not None and not self._in_call:
            self._editor.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                log.error("telegram_stream_task_failed", exc_info=task.exception())

    # Final delivery.

    async def _edit_final(self, shown: _Shown, part: str) -> bool:
        """Whether ``shown`` shows ``part`` after an edit if one is needed."""
        if shown.text == part:
            EDITS.labels("unchanged").inc()
            return True
        try:
            await self._pacer.call(
                self.chat_id,
                "editMessageText",
                lambda: self._edit(shown, part),
                max_wait_seconds=self.edit_wait_seconds,
                retry_transient=True,
            )
        except (TelegramBadRequest, TelegramNotFound) as exc:
            if not _not_modified(exc):
                EDITS.labels("refused").inc()
                log.warning("telegram_final_edit_refused", chat_id=self.chat_id, error=exc.message)
                return False
            EDITS.labels("not_modified").inc()
        except FloodWait as exc:
            EDITS.labels("refused").inc()
            log.warning("telegram_final_edit_refused", chat_id=self.chat_id, error=str(exc))
            return False
        else:
            EDITS.labels("sent").inc()
        shown.text = part
        return True

    async def _delete_quietly(self, shown: _Shown) -> None:
        try:
            await self._pacer.call(
                self.chat_id,
                "deleteMessage",
                lambda: self._delete(shown.message_id),
                max_wait_seconds=self.edit_wait_seconds,
                attempts=2,
            )
        except (FloodWait, TelegramAPIError) as exc:
            log.info("telegram_delete_failed", chat_id=self.chat_id, error=str(exc))

    # The Bot API calls.

    async def _send(self, text: str, index: int) -> Message:
        reply_to = self.reply_to_message_id if index == 0 else None
        return await self._bot.send_message(
            chat_id=self.chat_id,
            text=text,
            parse_mode=None,
            message_thread_id=self.message_thread_id,
            reply_parameters=(
                ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                if reply_to is not None
                else None
            ),
        )

    async def _edit(self, shown: _Shown, text: str) -> None:
        await self._bot.edit_message_text(
            text=text, chat_id=self.chat_id, message_id=shown.message_id, parse_mode=None
        )

    async def _delete(self, message_id: int) -> None:
        await self._bot.delete_message(chat_id=self.chat_id, message_id=message_id)

    async def _typing_action(self) -> None:
        await self._bot.send_chat_action(
            chat_id=self.chat_id, action="typing", message_thread_id=self.message_thread_id
        )


def _gone(exc: TelegramAPIError) -> bool:
    """The message no longer exists (the user deleted it): nothing to take down."""
    return isinstance(exc, TelegramNotFound) or "not found" in exc.message


def _not_modified(exc: TelegramAPIError) -> bool:
    return "message is not modified" in exc.message
