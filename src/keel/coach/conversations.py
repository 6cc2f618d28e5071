"""Who the coach talks to, and what it remembers.

A user is a Telegram user. Their conversation keeps the last ``keep`` messages verbatim; older
ones are folded into a rolling summary (by a model, or by an extractive fallback when no model
answers), so the context a model gets stays bounded however long the chat runs. A conversation
idle for longer than the session timeout is closed and the next message opens a fresh one:
a trader coming back tomorrow starts clean. ``/reset`` does the same at once. The persona is
the user's, not the conversation's, so it survives both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Row, and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.coach import models
from keel.coach.personas import Personas
from keel.coach.routing import Turn
from keel.core import db
from keel.core.replicated import Database

SUMMARY_MAX_CHARS: Final = 2000
MESSAGE_MAX_CHARS: Final = 16_000  # a Telegram message is 4096; an answer at most ~12,000

Summariser = Callable[[str, Sequence[Turn]], Awaitable[str]]


@dataclass(frozen=True)
class CoachUser:
    id: int
    chat_id: int
    first_name: str
    persona: str
    paid_until: datetime | None
    created: bool  # first contact

    def is_pro(self, now: datetime) -> bool:
        return self.paid_until is not None and self.paid_until > now


@dataclass(frozen=True)
class Context:
    """What a model is given: the summary of older messages and the recent ones."""

    conversation_id: int
    summary: str
    turns: tuple[Turn, ...]
    fresh: bool  # a new conversation (first one, after a timeout or a reset)


class Conversations:
    def __init__(
        self, database: Database, personas: Personas, *, keep: int, idle: timedelta
    ) -> None:
        if keep < 2:
            raise ValueError("keep at least two messages (a question and its answer)")
        self.database = database
        self.personas = personas
        self.keep = keep
        self.idle = idle

    async def meet(self, user_id: int, chat_id: int, first_name: str, now: datetime) -> CoachUser:
        """The user, created on first contact (with the default persona)."""
        t = models.users
        async with self.database.writing() as conn:
            statement = db.insert(conn, t).values(
                id=user_id,
                chat_id=chat_id,
                first_name=first_name[:128],
                persona=self.personas.default,
                created_at=now,
                last_seen_at=now,
            )
            inserted = await conn.execute(
                statement.on_conflict_do_nothing(index_elements=[t.c.id]).returning(t.c.id)
            )
            created = inserted.scalar() is not None
            if not created:
                await conn.execute(
                    update(t)
                    .where(t.c.id == user_id)
                    .values(chat_id=chat_id, first_name=first_name[:128], last_seen_at=now)
                )
            row = (await conn.execute(select(t).where(t.c.id == user_id))).one()
        return CoachUser(row.id, row.chat_id, row.first_name, row.persona, row.paid_until, created)

    async def set_persona(self, user_id: int, key: str) -> None:
        if key not in self.personas.personas:
            raise KeyError(key)
        async with self.database.writing() as conn:
            await conn.execute(
                update(models.users).where(models.users.c.id == user_id).values(persona=key)
            )

    async def context(self, user_id: int, now: datetime) -> Context:
        """The open conversation's context; a new conversation when none is open or the open
        one idled past the timeout."""
        c, m = models.conversations, models.messages
        async with self.database.writing() as conn:
            row = await _open(conn, user_id)
            fresh = row is None or row.last_active_at < now - self.idle
            if row is not None and fresh:
                await conn.execute(update(c).where(c.c.id == row.id).values(ended_at=now))
            if fresh:
                created = await conn.execute(
                    insert(c)
                    .values(
                        user_id=user_id,
                        started_at=now,
                        last_active_at=now,
                        summary="",
                        summarised_through=0,
                    )
                    .returning(c.c.id)
                )
                return Context(created.scalar_one(), "", (), True)
            assert row is not None
            recent = await conn.execute(
                select(m.c.role, m.c.content)
                .where(m.c.conversation_id == row.id, m.c.id > row.summarised_through)
                .order_by(m.c.id)
            )
            turns = tuple(Turn(r.role, r.content) for r in recent)
        return Context(row.id, row.summary, turns[-self.keep :], False)

    async def record(
        self,
        context: Context,
        question: str,
        answer: str,
        model: str | None,
        now: datetime,
        summarise: Summariser,
    ) -> None:
        """Store an exchange; fold what fell out of the kept window into the summary."""
        c, m = models.conversations, models.messages
        async with self.database.writing() as conn:
            await conn.execute(
                insert(m),
                [
                    {
                        "conversation_id": context.conversation_id,
                        "role": "user",
                        "content": question[:MESSAGE_MAX_CHARS],
                        "model": None,
                        "created_at": now,
                    },
                    {
                        "conversation_id": context.conversation_id,
                        "role": "assistant",
                        "content": answer[:MESSAGE_MAX_CHARS],
                        "model": model,
                        "created_at": now,
                    },
                ],
            )
            await conn.execute(
                update(c).where(c.c.id == context.conversation_id).values(last_active_at=now)
            )
            row = (
                await conn.execute(
                    select(c.c.summary, c.c.summarised_through).where(
                        c.c.id == context.conversation_id
                    )
                )
            ).one()
            unsummarised = (
                await conn.execute(
                    select(m.c.id, m.c.role, m.c.content)
                    .where(
                        m.c.conversation_id == context.conversation_id,
                        m.c.id > row.summarised_through,
                    )
                    .order_by(m.c.id)
                )
            ).all()
        overflow = unsummarised[: max(0, len(unsummarised) - self.keep)]
        if not overflow:
            return
        # The model call runs outside any transaction; the update below only applies if no
        # other exchange folded the same messages meanwhile.
        summary = (await summarise(row.summary, [Turn(r.role, r.content) for r in overflow]))[
            :SUMMARY_MAX_CHARS
        ]
        async with self.database.writing() as conn:
            await conn.execute(
                update(c)
                .where(
                    and_(
                        c.c.id == context.conversation_id,
                        c.c.summarised_through == row.summarised_through,
                    )
                )
                .values(summary=summary, summarised_through=overflow[-1].id)
            )

    async def reset(self, user_id: int, now: datetime) -> bool:
        """End the open conversation; False when there was none."""
        c = models.conversations
        async with self.database.writing() as conn:
            ended = await conn.execute(
                update(c).where(c.c.user_id == user_id, c.c.ended_at.is_(None)).values(ended_at=now)
            )
        return bool(ended.rowcount)

    async def count_messages(self, user_id: int) -> int:
        c, m = models.conversations, models.messages
        async with self.database.reading() as conn:
            total = await conn.execute(
                select(func.count())
                .select_from(m.join(c, m.c.conversation_id == c.c.id))
                .where(c.c.user_id == user_id)
            )
        return int(total.scalar_one())


async def _open(conn: AsyncConnection, user_id: int) -> Row[Any, Any, Any, Any] | None:
    c = models.conversations
    result = await conn.execute(
        select(c.c.id, c.c.summary, c.c.summarised_through, c.c.last_active_at)
        .where(c.c.user_id == user_id, c.c.ended_at.is_(None))
        .order_by(c.c.id.desc())
        .limit(1)
    )
    return result.first()


def extractive_summary(previous: str, turns: Sequence[Turn]) -> str:
    """A summary with no model: the previous one, then the first sentence of each message."""
    lines = [previous.strip()] if previous.strip() else []
    for turn in turns:
        first = turn.content.strip().split("\n", 1)[0].split(". ", 1)[0][:200]
        if first:
            lines.append(f"{'User' if turn.role == 'user' else 'Coach'}: {first}")
    text = "\n".join(lines)
    return text[-SUMMARY_MAX_CHARS:]
