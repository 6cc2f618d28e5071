"""Pacing Telegram calls: each chat's turn, the bot's overall rate, and flood waits.

Telegram allows about one message or edit a second in a chat and about 30 calls a second for
the whole bot; past that it answers 429 with ``retry_after`` seconds, and a bot that keeps
calling during the wait is kept waiting longer (observed waits run from seconds to hours).
One :class:`Pacer` per bot per process, shared by every reply, so two answers in one chat share
that chat's pace:

* a chat gets at most one paced call (send, edit, delete) per ``interval_seconds``, counted
  from the end of one call to the start of the next: Telegram sees a call somewhere between
  the two, so network jitter never makes two look closer than the interval;
* the bot makes at most ``per_second`` calls a second, with bursts of up to ``burst``;
* a 429 blocks the chat it names, for every method, until ``retry_after`` has passed (a 429
  on a call bound to no chat blocks the bot). Telegram does not say which counters a penalty
  belongs to; calling the chat by another method during the wait risks a longer one. Every
  penalty is counted in Prometheus, logged as a warning and kept in :meth:`Pacer.penalties`
  for the status page.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import structlog
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from prometheus_client import Counter, Histogram

from keel.core.clock import Clock, SystemClock

__all__ = ["FloodWait", "Pacer", "Penalty"]

log = structlog.get_logger("keel.coach.telegram")

T = TypeVar("T")

RETRY_AFTERS = Counter(
    "coach_telegram_retry_after_total", "429 answers from Telegram (flood control)", ["method"]
)
RETRY_AFTER_SECONDS = Histogram(
    "coach_telegram_retry_after_seconds",
    "Waits Telegram imposed with a 429",
    ["method"],
    buckets=(1, 2, 5, 10, 30, 60, 300, 900, 3600, 14_400),
)
CALLS = Counter("coach_telegram_calls_total", "Paced Telegram calls", ["method", "outcome"])
TURN_WAIT_SECONDS = Histogram(
    "coach_telegram_turn_wait_seconds",
    "Time a call waited for its chat's turn, the bot's rate or a flood wait",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)

# Transient failures (5xx, network) of a call that must land are tried this many times, this
# far apart at first (doubling).
_TRANSIENT_ATTEMPTS = 3
_TRANSIENT_BACKOFF_SECONDS = 0.5
# Chats whose turn and wait passed this long ago are forgotten once there are many.
_FORGET_AFTER_SECONDS = 60.0
_PRUNE_ABOVE = 10_000


class FloodWait(Exception):
    """Telegram asked this chat (``chat_id``), or the whole bot (``chat_id`` None), to wait
    ``seconds`` more, which is longer than the caller agreed to wait."""

    code = "telegram_flood_wait"

    def __init__(self, chat_id: int | None, seconds: float) -> None:
        super().__init__(f"Telegram flood wait of {seconds:.1f} s for chat {chat_id}")
        self.chat_id = chat_id
        self.seconds = seconds


@dataclass(frozen=True)
class Penalty:
    """One 429: the chat (None: the bot), the method refused, the wait asked and when."""

    chat_id: int | None
    method: str
    retry_after_seconds: float
    at: datetime


@dataclass
class _Chat:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_turn: float = 0.0  # monotonic time of its next paced call
    blocked_until: float = 0.0  # monotonic end of its flood wait


class Pacer:
    """The pace of one bot's calls (the module docstring says which limits).

    ``monotonic`` and ``sleep`` are the clock pacing runs on; ``clock`` stamps penalties with
    wall time for people.
    """

    def __init__(
        self,
        *,
        interval_seconds: float = 1.0,
        per_second: float = 30.0,
        burst: int = 30,
        keep_penalties: int = 100,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if interval_seconds < 0 or per_second <= 0 or burst < 1:
            raise ValueError("interval_seconds >= 0, per_second > 0 and burst >= 1")
        self.interval_seconds = interval_seconds
        self.per_second = per_second
        self.burst = burst
        self._clock = clock or SystemClock()
        self._now = monotonic
        self._sleep = sleep
        self._chats: dict[int, _Chat] = {}
        self._bot_blocked_until = 0.0
        # Generic cell rate: the time at which the bot's rate is back to zero debt.
        self._bot_tat = 0.0
        self._penalties: deque[Penalty] = deque(maxlen=keep_penalties)

    def penalties(self) -> tuple[Penalty, ...]:
        """The latest penalties, oldest first."""
        return tuple(self._penalties)

    def blocked_for(self, chat_id: int | None) -> float:
        """Seconds until ``chat_id`` (None: the bot) may be called again; 0 when it may."""
        until = self._bot_blocked_until
        if chat_id is not None and chat_id in self._chats:
            until = max(until, self._chats[chat_id].blocked_until)
        return max(0.0, until - self._now())

    def penalise(self, chat_id: int | None, method: str, retry_after: float) -> Penalty:
        """Record a 429 for ``method`` in ``chat_id`` and block the chat (None: the bot)
        for ``retry_after`` seconds."""
        until = self._now() + retry_after
        if chat_id is None:
            self._bot_blocked_until = max(self._bot_blocked_until, until)
        else:
            chat = self._chat(chat_id)
            chat.blocked_until = max(chat.blocked_until, until)
        penalty = Penalty(chat_id, method, float(retry_after), self._clock.now())
        self._penalties.append(penalty)
        RETRY_AFTERS.labels(method).inc()
        RETRY_AFTER_SECONDS.labels(method).observe(retry_after)
        log.warning("telegram_retry_after", chat_id=chat_id, method=method, retry_after=retry_after)
        return penalty

    async def turn(
        self, chat_id: int | None, *, paced: bool = True, max_wait_seconds: float = math.inf
    ) -> None:
        """Wait for ``chat_id``'s next turn and take it: its flood wait and the bot's must have
        passed, the bot's rate must allow a call and, when ``paced``, ``interval_seconds`` must
        have passed since the chat's last paced turn. Turns in one chat are taken in order.
        Raises :class:`FloodWait` without waiting when a flood wait would outlast
        ``max_wait_seconds``."""
        began = self._now()
        if chat_id is None or not paced:
            await self._wait_unpaced(chat_id, max_wait_seconds)
        else:
            chat = self._chat(chat_id)
            async with chat.lock:
                while True:
                    self._refuse_long_wait(chat_id, max_wait_seconds)
                    now = self._now()
                    ready = max(chat.next_turn, chat.blocked_until, self._bot_blocked_until)
                    if ready > now:
                        await self._sleep(ready - now)
                        continue
                    await self._bot_rate()
                    # A penalty may have come in while the bot's rate held this call back.
                    if max(chat.blocked_until, self._bot_blocked_until) <= self._now():
                        break
                chat.next_turn = self._now() + self.interval_seconds
        TURN_WAIT_SECONDS.observe(self._now() - began)

    async def call(
        self,
        chat_id: int | None,
        method: str,
        send: Callable[[], Awaitable[T]],
        *,
        max_wait_seconds: float,
        paced: bool = True,
        retry_transient: bool = False,
        attempts: int = 5,
    ) -> T:
        """Take ``chat_id``'s turn and ``send()``. A 429 is recorded (:meth:`penalise`) and,
        when its wait is at most ``max_wait_seconds``, waited out and the call made again,
        up to ``attempts`` times; a longer wait raises :class:`FloodWait` (from the 429).
        With ``retry_transient``, a 5xx or network failure is tried again too (a timed-out
        send may then land twice: for an answer, better than not at all). Other Telegram
        errors are raised as they come."""
        transient_left = _TRANSIENT_ATTEMPTS - 1 if retry_transient else 0
        backoff = _TRANSIENT_BACKOFF_SECONDS
        for attempt in range(attempts):
            await self.turn(chat_id, paced=paced, max_wait_seconds=max_wait_seconds)
            try:
                return await self.attempt(chat_id, method, send, paced=paced)
            except TelegramRetryAfter as exc:
                if exc.retry_after > max_wait_seconds or attempt == attempts - 1:
                    raise FloodWait(chat_id, exc.retry_after) from exc
            except (TelegramServerError, TelegramNetworkError) as exc:
                if transient_left <= 0:
                    raise
                transient_left -= 1
                log.warning("telegram_transient_error", method=method, error=str(exc))
                await self._sleep(backoff)
                backoff *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def attempt(
        self,
        chat_id: int | None,
        method: str,
        send: Callable[[], Awaitable[T]],
        *,
        paced: bool = True,
    ) -> T:
        """``send()`` once, its turn already taken (:meth:`turn`): counted, and a 429
        recorded (:meth:`penalise`) before it is raised again. The chat's next paced turn
        comes ``interval_seconds`` after this call ends."""
        try:
            result = await send()
        except TelegramRetryAfter as exc:
            CALLS.labels(method, "retry_after").inc()
            self.penalise(chat_id, method, exc.retry_after)
            raise
        except (TelegramServerError, TelegramNetworkError):
            CALLS.labels(method, "transient").inc()
            raise
        except Exception:
            CALLS.labels(method, "error").inc()
            raise
        finally:
            if paced and chat_id is not None:
                chat = self._chat(chat_id)
                chat.next_turn = max(chat.next_turn, self._now() + self.interval_seconds)
        CALLS.labels(method, "ok").inc()
        return result

    def _chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            if len(self._chats) > _PRUNE_ABOVE:
                self._forget_idle_chats()
            chat = self._chats[chat_id] = _Chat()
        return chat

    def _forget_idle_chats(self) -> None:
        horizon = self._now() - _FORGET_AFTER_SECONDS
        for chat_id, chat in list(self._chats.items()):
            if not chat.lock.locked() and max(chat.next_turn, chat.blocked_until) < horizon:
                del self._chats[chat_id]

    def _refuse_long_wait(self, chat_id: int | None, max_wait_seconds: float) -> None:
        waiting = self.blocked_for(chat_id)
        if waiting > max_wait_seconds:
            raise FloodWait(chat_id, waiting)

    async def _wait_unpaced(self, chat_id: int | None, max_wait_seconds: float) -> None:
        while True:
            self._refuse_long_wait(chat_id, max_wait_seconds)
            waiting = self.blocked_for(chat_id)
            if waiting > 0:
                await self._sleep(waiting)
                continue
            await self._bot_rate()
            if self.blocked_for(chat_id) <= 0:
                return

    async def _bot_rate(self) -> None:
        # Reserve the slot before sleeping, so concurrent callers queue behind each other.
        emission = 1.0 / self.per_second
        now = self._now()
        tat = max(self._bot_tat, now)
        self._bot_tat = tat + emission
        wait = tat - now - (self.burst - 1) * emission
        if wait > 0:
            await self._sleep(wait)
