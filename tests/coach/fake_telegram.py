"""A fake Telegram Bot API server on a real loopback port, for every coach test and benchmark.

It speaks the Bot API's wire format at ``/bot<token>/<method>`` (JSON, form or multipart
bodies; ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code": …, "description": …,
"parameters": {"retry_after": N}}``) and serves files at ``/file/bot<token>/<path>``, so a
real aiogram ``Bot`` talks to it through aiogram's custom API server setting::

    with FakeTelegram() as fake:
        bot = fake.make_bot()                      # Bot(token, session=AiohttpSession(api=…))
        fake.send_text(chat_id=42, text="/start")  # an update for getUpdates (or the webhook)
        ...
        fake.chat(42).messages                     # what the chat shows, in order
        fake.calls("editMessageText", chat_id=42)  # every call, with monotonic arrival times

It keeps each chat's messages (their current text and earlier ones) and a timeline of every
call, and refuses what Telegram refuses: text over 4096 UTF-16 units (400 "message is too
long"), an edit that changes nothing (400 "message is not modified"), an unknown message.
Flood control is opt-in (:class:`FloodControl`): calls to one chat faster than a set interval
get 429 with ``retry_after``. A 429, forced (:meth:`FakeTelegram.fail_next`) or not, blocks
that chat for every method until the wait has passed, as the client is expected to assume;
a call during the wait gets another 429.

The server runs its own event loop in a thread, so it serves sync and async tests alike and
keeps timing while the test's loop is busy; it handles several hundred calls a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import ClientSession, ClientTimeout, web

__all__ = ["Call", "FakeChat", "FakeMessage", "FakeTelegram", "FloodControl"]

TEXT_LIMIT = 4096
DEFAULT_TOKEN = "123456789:TEST-fake-token"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_CHAT_ID_PARAMS = ("chat_id",)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class FakeMessage:
    """A message in a chat: the bot's or a user's."""

    message_id: int
    chat_id: int
    from_bot: bool
    date: int
    user_id: int | None = None
    text: str | None = None
    caption: str | None = None
    photo_file_id: str | None = None
    reply_to: int | None = None
    reply_markup: Any = None
    edit_date: int | None = None
    earlier_texts: list[str] = field(default_factory=list)  # before each edit, oldest first
    deleted: bool = False


@dataclass(frozen=True)
class Call:
    """One request the server answered."""

    at: float  # time.monotonic() when it arrived
    method: str  # as the Bot API names it, e.g. "editMessageText"
    chat_id: int | None
    params: dict[str, Any]
    status: int  # 200, or the error's code
    description: str | None = None
    retry_after: int | None = None
    answered_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class FloodControl:
    """429 for calls of ``methods`` that reach one chat within ``min_interval_seconds`` of
    the previous accepted one."""

    min_interval_seconds: float
    retry_after_seconds: int = 1
    methods: frozenset[str] = frozenset({"editMessageText"})


@dataclass(frozen=True)
class FakeChat:
    """A snapshot of one chat."""

    chat_id: int
    all_messages: tuple[FakeMessage, ...]

    @property
    def messages(self) -> list[FakeMessage]:
        """Messages not deleted, oldest first."""
        return [m for m in self.all_messages if not m.deleted]

    @property
    def bot_texts(self) -> list[str]:
        """The texts of the bot's messages shown, oldest first."""
        return [m.text for m in self.messages if m.from_bot and m.text is not None]


@dataclass
class _Failure:
    method: str
    times: int
    error_code: int
    description: str
    retry_after: int | None
    chat_id: int | None


@dataclass
class _File:
    file_id: str
    unique_id: str
    path: str
    data: bytes


class _Refusal(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


class FakeTelegram:
    """The fake server (the module docstring says what it does). Start it with ``with`` or
    :meth:`start`; every hook is safe to call from any thread."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "keel_coach_bot",
        flood: FloodControl | None = None,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.flood = flood
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._deliverer: asyncio.Task[None]
        self._closing = False
        self._port = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._messages: dict[int, dict[int, FakeMessage]] = {}
        self._timeline: list[Call] = []
        self._updates: list[dict[str, Any]] = []  # not yet confirmed, by update_id
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._failures: list[_Failure] = []
        self._blocked_until: dict[int | None, float] = {}
        self._last_flooded_call: dict[int, float] = {}
        self._files: dict[str, _File] = {}
        self._file_ids = itertools.count(1)
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.commands: list[dict[str, Any]] = []
        self.answered_callbacks: list[dict[str, Any]] = []
        self._poll_generation = 0
        self._wakers: set[asyncio.Event] = set()

    # Life cycle.

    @property
    def url(self) -> str:
        """The server's base URL, for ``TelegramAPIServer.from_base``."""
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> FakeTelegram:
        ready = threading.Event()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(client_max_size=60 * 1024 * 1024)
            app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
            app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.SockSite(self._runner, sock).start())
            self._deliverer = loop.create_task(self._deliver_webhooks())
            ready.set()
            loop.run_forever()
            loop.close()

        self._closing = False
        self._thread = threading.Thread(target=serve, name="fake-telegram", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake Telegram server did not start")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None

    async def _shutdown(self) -> None:
        self._closing = True
        self._wake_in_loop()
        await self._deliverer
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def make_bot(self, token: str | None = None) -> Bot:
        """A real aiogram Bot that talks to this server (close its session after)."""
        api = TelegramAPIServer.from_base(self.url)
        return Bot(token or self.token, session=AiohttpSession(api=api))

    def reset(self) -> None:
        """Forget chats, calls, updates, files and forced failures."""
        with self._lock:
            self._reset_state()

    # What the test makes users do.

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Trader",
        username: str | None = None,
        reply_to: int | None = None,
    ) -> FakeMessage:
        """A user's text message (a command when it starts with "/"), queued as an update."""
        with self._lock:
            message = self._new_message(
                chat_id, from_bot=False, user_id=user_id or abs(chat_id), text=text
            )
            message.reply_to = reply_to
            self._queue_update(
                {"message": self._message_json(message, first_name=first_name, username=username)}
            )
        self._wake()
        return dataclasses.replace(message)

    def send_photo(
        self,
        chat_id: int,
        data: bytes,
        *,
        caption: str | None = None,
        user_id: int | None = None,
        first_name: str = "Trader",
        width: int = 1280,
        height: int = 720,
    ) -> FakeMessage:
        """A user's photo (``data`` is what getFile's download serves), queued as an update."""
        with self._lock:
            stored = self._store_file(data, folder="photos", suffix=".jpg")
            message = self._new_message(chat_id, from_bot=False, user_id=user_id or abs(chat_id))
            message.caption = caption
            message.photo_file_id = stored.file_id
            body = self._message_json(message, first_name=first_name, width=width, height=height)
            self._queue_update({"message": body})
        self._wake()
        return dataclasses.replace(message)

    def press_button(
        self, chat_id: int, message_id: int, data: str, *, user_id: int | None = None
    ) -> str:
        """A user presses an inline button under ``message_id``; returns the query's id."""
        with self._lock:
            message = self._messages.get(chat_id, {}).get(message_id)
            if message is None:
                raise KeyError(f"no message {message_id} in chat {chat_id}")
            query_id = str(next(self._query_ids))
            user = self._user_json(user_id or abs(chat_id), "Trader", None)
            query = {
                "id": query_id,
                "from": user,
                "chat_instance": str(chat_id),
                "message": self._message_json(message),
                "data": data,
            }
            self._queue_update({"callback_query": query})
        self._wake()
        return query_id

    def add_file(self, data: bytes, *, folder: str = "documents", suffix: str = "") -> str:
        """Store ``data`` for getFile and the download URL; returns its file_id."""
        with self._lock:
            return self._store_file(data, folder=folder, suffix=suffix).file_id

    # What the test makes Telegram do.

    def fail_next(
        self,
        method: str,
        times: int = 1,
        *,
        retry_after: int | None = None,
        error_code: int | None = None,
        description: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` (in ``chat_id``, or any chat) fail: with 429
        and ``retry_after`` when it is given, else with ``error_code`` and ``description``
        (default 400 "Bad Request: message can't be edited")."""
        if retry_after is not None:
            code = 429
            text = description or f"Too Many Requests: retry after {retry_after}"
        else:
            code = error_code or 400
            text = description or "Bad Request: message can't be edited"
        with self._lock:
            self._failures.append(_Failure(method, times, code, text, retry_after, chat_id))

    # What the test reads.

    def chat(self, chat_id: int) -> FakeChat:
        with self._lock:
            messages = sorted(self._messages.get(chat_id, {}).values(), key=lambda m: m.message_id)
            copies = tuple(
                dataclasses.replace(m, earlier_texts=list(m.earlier_texts)) for m in messages
            )
        return FakeChat(chat_id, copies)

    def calls(self, method: str | None = None, *, chat_id: int | None = None) -> list[Call]:
        """The timeline, oldest first: every call, or those of ``method`` and ``chat_id``."""
        with self._lock:
            timeline = list(self._timeline)
        return [
            call
            for call in timeline
            if (method is None or call.method == method)
            and (chat_id is None or call.chat_id == chat_id)
        ]

    def pending_updates(self) -> int:
        with self._lock:
            return len(self._updates)

    # The HTTP side.

    async def _handle_method(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        name = request.match_info["method"]
        params = await _read_params(request)
        method = _METHODS.get(name.lower())
        chat_id = _chat_id(params)
        canonical = method[0] if method else name
        try:
            if method is None:
                raise _Refusal(404, "Not Found: method not found")
            with self._lock:
                self._check_limits(canonical, chat_id, arrived)
            if canonical == "getUpdates":
                result = await self._get_updates(params)
            else:
                with self._lock:
                    result = getattr(self, method[1])(params, chat_id)
        except _Refusal as refusal:
            with self._lock:
                if refusal.retry_after is not None:
                    until = time.monotonic() + refusal.retry_after
                    self._blocked_until[chat_id] = max(self._blocked_until.get(chat_id, 0), until)
                self._record(
                    arrived,
                    canonical,
                    chat_id,
                    params,
                    refusal.code,
                    refusal.description,
                    refusal.retry_after,
                )
            return _error(refusal.code, refusal.description, refusal.retry_after)
        with self._lock:
            self._record(arrived, canonical, chat_id, params, 200)
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        with self._lock:
            found = next((f for f in self._files.values() if f.path == path), None)
        if found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found.data, content_type="application/octet-stream")

    def _record(
        self,
        arrived: float,
        method: str,
        chat_id: int | None,
        params: dict[str, Any],
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        shown = {k: v for k, v in params.items() if not isinstance(v, _Upload)}
        self._timeline.append(
            Call(
                arrived, method, chat_id, shown, status, description, retry_after, time.monotonic()
            )
        )

    def _check_limits(self, method: str, chat_id: int | None, now: float) -> None:
        for failure in self._failures:
            if failure.method == method and failure.chat_id in (None, chat_id):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                raise _Refusal(failure.error_code, failure.description, failure.retry_after)
        blocked = max(self._blocked_until.get(chat_id, 0), self._blocked_until.get(None, 0))
        if blocked > now:
            wait = math.ceil(blocked - now)
            raise _Refusal(429, f"Too Many Requests: retry after {wait}", wait)
        if self.flood is not None and chat_id is not None and method in self.flood.methods:
            last = self._last_flooded_call.get(chat_id)
            if last is not None and now - last < self.flood.min_interval_seconds:
                wait = self.flood.retry_after_seconds
                raise _Refusal(429, f"Too Many Requests: retry after {wait}", wait)
            self._last_flooded_call[chat_id] = now

    # Updates: long polling, or delivery to a webhook.

    def _queue_update(self, body: dict[str, Any]) -> None:
        self._updates.append({"update_id": next(self._update_ids), **body})

    def _wake(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_in_loop)

    def _wake_in_loop(self) -> None:
        for event in self._wakers:
            event.set()

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = _int(params.get("offset"))
        limit = min(max(_int(params.get("limit")) or 100, 1), 100)
        timeout = max(_int(params.get("timeout")) or 0, 0)
        deadline = time.monotonic() + timeout
        with self._lock:
            if self.webhook_url:
                raise _Refusal(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use "
                    "deleteWebhook to delete the webhook first",
                )
            # A newer getUpdates ends the one waiting, as Telegram does.
            self._poll_generation += 1
            generation = self._poll_generation
        self._wake_in_loop()
        event = asyncio.Event()
        self._wakers.add(event)
        try:
            while True:
                with self._lock:
                    if generation != self._poll_generation:
                        raise _Refusal(
                            409,
                            "Conflict: terminated by other getUpdates request; make sure "
                            "that only one bot instance is running",
                        )
                    if offset:
                        self._updates = [u for u in self._updates if u["update_id"] >= offset]
                    if self._updates or self._closing or time.monotonic() >= deadline:
                        return self._updates[:limit]
                event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), deadline - time.monotonic())
        finally:
            self._wakers.discard(event)

    async def _deliver_webhooks(self) -> None:
        """Post queued updates to the webhook, in order, until each is answered 2xx."""
        event = asyncio.Event()
        self._wakers.add(event)
        async with ClientSession(timeout=ClientTimeout(total=10)) as client:
            # A flag, not only cancellation: Python 3.11's wait_for can swallow a cancel that
            # arrives as its event is set.
            while not self._closing:
                with self._lock:
                    url, secret = self.webhook_url, self.webhook_secret
                    update = self._updates[0] if url and self._updates else None
                if update is None:
                    event.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), 0.5)
                    continue
                headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
                try:
                    async with client.post(url, json=update, headers=headers) as response:
                        delivered = 200 <= response.status < 300
                except Exception:  # the bot is down or refused: try again, as Telegram does
                    delivered = False
                with self._lock:
                    if delivered and self._updates and self._updates[0] is update:
                        self._updates.pop(0)
                if not delivered:
                    await asyncio.sleep(0.1)

    # Bot API methods. Each runs under the lock and returns the result or raises _Refusal.

    def _api_get_me(self, params: dict[str, Any], chat_id: int | None) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Keel Coach",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _api_send_message(self, params: dict[str, Any], chat_id: int | None) -> dict[str, Any]:
        chat = _need_chat(chat_id)
        text = _valid_text(params.get("text"))
        message = self._new_message(chat, from_bot=True, text=text)
        message.reply_to = self._reply_to(chat, params)
        message.reply_markup = _json(params.get("reply_markup"))
        return self._message_json(message)

    def _api_send_photo(self, params: dict[str, Any], chat_id: int | None) -> dict[str, Any]:
        chat = _need_chat(chat_id)
        photo = params.get("photo")
        if isinstance(photo, _Upload):
            file_id = self._store_file(photo.data, folder="photos", suffix=".jpg").file_id
        elif isinstance(photo, str) and photo in self._files:
            file_id = photo
        else:
            raise _Refusal(400, "Bad Request: wrong file identifier/HTTP URL specified")
        message = self._new_message(chat, from_bot=True)
        message.caption = params.get("caption")
        message.photo_file_id = file_id
        message.reply_to = self._reply_to(chat, params)
        return self._message_json(message)

    def _api_edit_message_text(self, params: dict[str, Any], chat_id: int | None) -> dict[str, Any]:
        chat = _need_chat(chat_id)
        message = self._messages.get(chat, {}).get(_int(params.get("message_id")) or 0)
        if message is None or message.deleted:
            raise _Refusal(400, "Bad Request: message to edit not found")
        if not message.from_bot or message.text is None:
            raise _Refusal(400, "Bad Request: message can't be edited")
        text = _valid_text(params.get("text"))
        markup = _json(params.get("reply_markup"))
        if text == message.text and markup == message.reply_markup:
            raise _Refusal(400, NOT_MODIFIED)
        message.earlier_texts.append(message.text)
        message.text = text
        message.reply_markup = markup
        message.edit_date = int(time.time())
        return self._message_json(message)

    def _api_edit_message_reply_markup(
        self, params: dict[str, Any], chat_id: int | None
    ) -> dict[str, Any]:
        chat = _need_chat(chat_id)
        message = self._messages.get(chat, {}).get(_int(params.get("message_id")) or 0)
        if message is None or message.deleted:
            raise _Refusal(400, "Bad Request: message to edit not found")
        markup = _json(params.get("reply_markup"))
        if markup == message.reply_markup:
            raise _Refusal(400, NOT_MODIFIED)
        message.reply_markup = markup
        message.edit_date = int(time.time())
        return self._message_json(message)

    def _api_delete_message(self, params: dict[str, Any], chat_id: int | None) -> bool:
        chat = _need_chat(chat_id)
        message = self._messages.get(chat, {}).get(_int(params.get("message_id")) or 0)
        if message is None or message.deleted:
            raise _Refusal(400, "Bad Request: message to delete not found")
        message.deleted = True
        return True

    def _api_send_chat_action(self, params: dict[str, Any], chat_id: int | None) -> bool:
        _need_chat(chat_id)
        return True

    def _api_get_file(self, params: dict[str, Any], chat_id: int | None) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id")))
        if stored is None:
            raise _Refusal(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_size": len(stored.data),
            "file_path": stored.path,
        }

    def _api_set_webhook(self, params: dict[str, Any], chat_id: int | None) -> bool:
        url = str(params.get("url") or "")
        if url and not re.match(r"https?://", url):
            raise _Refusal(400, "Bad Request: bad webhook: invalid webhook URL specified")
        self.webhook_url = url
        self.webhook_secret = params.get("secret_token") or None
        if _bool(params.get("drop_pending_updates")):
            self._updates.clear()
        return True

    def _api_delete_webhook(self, params: dict[str, Any], chat_id: int | None) -> bool:
        self.webhook_url = ""
        self.webhook_secret = None
        if _bool(params.get("drop_pending_updates")):
            self._updates.clear()
        return True

    def _api_get_webhook_info(self, params: dict[str, Any], chat_id: int | None) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _api_answer_callback_query(self, params: dict[str, Any], chat_id: int | None) -> bool:
        self.answered_callbacks.append(dict(params))
        return True

    def _api_set_my_commands(self, params: dict[str, Any], chat_id: int | None) -> bool:
        self.commands = list(_json(params.get("commands")) or [])
        return True

    def _api_get_my_commands(self, params: dict[str, Any], chat_id: int | None) -> list[Any]:
        return list(self.commands)

    def _api_delete_my_commands(self, params: dict[str, Any], chat_id: int | None) -> bool:
        self.commands = []
        return True

    # Building messages (under the lock).

    def _new_message(
        self, chat_id: int, *, from_bot: bool, user_id: int | None = None, text: str | None = None
    ) -> FakeMessage:
        ids = self._message_ids.setdefault(chat_id, itertools.count(1))
        message = FakeMessage(
            next(ids), chat_id, from_bot, int(time.time()), user_id=user_id, text=text
        )
        self._messages.setdefault(chat_id, {})[message.message_id] = message
        return message

    def _reply_to(self, chat_id: int, params: dict[str, Any]) -> int | None:
        reply = _json(params.get("reply_parameters")) or {}
        target = _int(reply.get("message_id")) or _int(params.get("reply_to_message_id"))
        if target is None:
            return None
        if target not in self._messages.get(chat_id, {}):
            allowed = reply.get("allow_sending_without_reply") or params.get(
                "allow_sending_without_reply"
            )
            if not _bool(allowed):
                raise _Refusal(400, "Bad Request: message to be replied not found")
            return None
        return target

    def _store_file(self, data: bytes, *, folder: str, suffix: str) -> _File:
        number = next(self._file_ids)
        stored = _File(
            f"FILE{number:06d}", f"U{number:06d}", f"{folder}/file_{number}{suffix}", data
        )
        self._files[stored.file_id] = stored
        return stored

    def _user_json(self, user_id: int, first_name: str, username: str | None) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": "en",
        }
        if username:
            user["username"] = username
        return user

    def _message_json(
        self,
        message: FakeMessage,
        *,
        first_name: str = "Trader",
        username: str | None = None,
        width: int = 1280,
        height: int = 720,
        nested: bool = False,
    ) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": message.chat_id}
        if message.chat_id > 0:
            chat |= {"type": "private", "first_name": first_name}
        else:
            chat |= {"type": "supergroup", "title": "Traders"}
        sender = (
            self._api_get_me({}, None)
            if message.from_bot
            else self._user_json(message.user_id or abs(message.chat_id), first_name, username)
        )
        body: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": chat,
            "from": sender,
        }
        if message.text is not None:
            body["text"] = message.text
            command = re.match(r"/[A-Za-z0-9_]+(@\w+)?", message.text)
            if command and not message.from_bot:
                body["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": utf16_len(command.group(0))}
                ]
        if message.photo_file_id is not None:
            stored = self._files[message.photo_file_id]
            body["photo"] = [
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.unique_id,
                    "width": width,
                    "height": height,
                    "file_size": len(stored.data),
                }
            ]
        if message.caption is not None:
            body["caption"] = message.caption
        if message.edit_date is not None:
            body["edit_date"] = message.edit_date
        if message.reply_markup:
            body["reply_markup"] = message.reply_markup
        replied = self._messages.get(message.chat_id, {}).get(message.reply_to or 0)
        if replied is not None and not nested:
            body["reply_to_message"] = self._message_json(replied, nested=True)
        return body


@dataclass(frozen=True)
class _Upload:
    filename: str
    data: bytes


# Bot API name (lower-cased, as Telegram matches them) -> (its name, FakeTelegram's handler).
_METHODS: dict[str, tuple[str, str]] = {
    name.lower(): (name, "_api_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
    for name in (
        "getMe",
        "getUpdates",
        "sendMessage",
        "sendPhoto",
        "editMessageText",
        "editMessageReplyMarkup",
        "deleteMessage",
        "sendChatAction",
        "getFile",
        "setWebhook",
        "deleteWebhook",
        "getWebhookInfo",
        "answerCallbackQuery",
        "setMyCommands",
        "getMyCommands",
        "deleteMyCommands",
    )
}


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return params
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
        return params
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params[key] = _Upload(value.filename, value.file.read())
        else:
            params[key] = value
    # An upload travels as its own part, named by the field: photo=attach://<part name>.
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            params[key] = params.pop(value.removeprefix("attach://"), value)
    return params


def _chat_id(params: dict[str, Any]) -> int | None:
    return _int(params.get("chat_id"))


def _need_chat(chat_id: int | None) -> int:
    if chat_id is None:
        raise _Refusal(400, "Bad Request: chat not found")
    return chat_id


def _valid_text(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    if not text.strip():
        raise _Refusal(400, "Bad Request: message text is empty")
    if utf16_len(text) > TEXT_LIMIT:
        raise _Refusal(400, "Bad Request: message is too long")
    return text


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def _json(value: Any) -> Any:
    """A form field aiogram sent JSON-encoded (reply_markup, commands, …), decoded."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)


def _error(code: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=code, dumps=_dumps)


@contextlib.contextmanager
def serve_fake_telegram(**options: Any) -> Iterator[FakeTelegram]:
    """A started :class:`FakeTelegram`, stopped after."""
    fake = FakeTelegram(**options).start()
    try:
        yield fake
    finally:
        fake.stop()
