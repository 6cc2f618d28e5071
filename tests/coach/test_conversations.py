"""Conversations and budgets on SQLite and PostgreSQL: the kept window and the rolling summary,
the idle timeout and /reset, personas that survive both, and daily budgets by plan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from keel.coach import models, personas
from keel.coach.budgets import Budgets, Limits
from keel.coach.conversations import Conversations, extractive_summary
from keel.coach.routing import Turn
from keel.core import db
from keel.core.replicated import Database
from keel.core.usage import DailyLimitReached

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    engine = db.create_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    yield Database(engine, name="coach-test")
    await engine.dispose()


def conversations(database: Database, keep: int = 4) -> Conversations:
    return Conversations(database, personas.shipped(), keep=keep, idle=timedelta(minutes=180))


class Summaries:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Turn]]] = []

    async def __call__(self, previous: str, turns: Sequence[Turn]) -> str:
        self.calls.append((previous, list(turns)))
        return extractive_summary(previous, turns)


async def test_first_contact_creates_the_user_with_the_default_persona(
    database: Database,
) -> None:
    talk = conversations(database)
    first = await talk.meet(7, 70, "Ann", NOW)
    again = await talk.meet(7, 70, "Ann B", NOW + timedelta(minutes=1))
    assert first.created
    assert not again.created
    assert (again.persona, again.first_name) == ("coach", "Ann B")
    await talk.set_persona(7, "stoic")
    assert (await talk.meet(7, 70, "Ann", NOW)).persona == "stoic"
    with pytest.raises(KeyError):
        await talk.set_persona(7, "nobody")


async def test_the_window_keeps_the_last_messages_and_folds_older_ones_into_the_summary(
    database: Database,
) -> None:
    talk = conversations(database, keep=4)
    summaries = Summaries()
    await talk.meet(7, 70, "Ann", NOW)
    for i in range(5):
        context = await talk.context(7, NOW + timedelta(minutes=i))
        assert context.fresh == (i == 0)
        await talk.record(
            context,
            f"question {i}. more",
            f"answer {i}. more",
            "m",
            NOW + timedelta(minutes=i),
            summaries,
        )
    context = await talk.context(7, NOW + timedelta(minutes=6))
    assert [t.content for t in context.turns] == [
        "question 3. more",
        "answer 3. more",
        "question 4. more",
        "answer 4. more",
    ]
    assert "User: question 0" in context.summary
    assert "Coach: answer 2" in context.summary
    # Each message was folded once, oldest first.
    folded = [t.content for _, turns in summaries.calls for t in turns]
    assert folded == [f"{kind} {i}. more" for i in range(3) for kind in ("question", "answer")]


async def test_an_idle_conversation_times_out_and_reset_starts_afresh(
    database: Database,
) -> None:
    talk = conversations(database)
    await talk.meet(7, 70, "Ann", NOW)
    await talk.set_persona(7, "zen")
    context = await talk.context(7, NOW)
    await talk.record(context, "hi", "hello", "m", NOW, Summaries())
    assert (await talk.context(7, NOW + timedelta(minutes=179))).turns
    later = await talk.context(7, NOW + timedelta(minutes=179 + 181))
    assert later.fresh
    assert later.turns == ()
    await talk.record(later, "back", "welcome back", "m", NOW + timedelta(hours=6), Summaries())
    assert await talk.reset(7, NOW + timedelta(hours=6, minutes=1))
    assert (await talk.context(7, NOW + timedelta(hours=6, minutes=2))).fresh
    assert (await talk.meet(7, 70, "Ann", NOW)).persona == "zen"  # the persona survives
    assert await talk.count_messages(7) == 4


async def test_budgets_by_plan(database: Database) -> None:
    talk = conversations(database)
    await talk.meet(7, 70, "Ann", NOW)
    budgets = Budgets(database, free=Limits(tokens=1000, scans=2), pro=Limits(10_000, 50))
    assert (await budgets.check_tokens(7, "free", NOW)).used == 0
    await budgets.charge_tokens(7, 700, NOW)
    await budgets.check_tokens(7, "free", NOW)  # 700 < 1000: the next question may go
    await budgets.charge_tokens(7, 700, NOW)
    with pytest.raises(DailyLimitReached) as refused:
        await budgets.check_tokens(7, "free", NOW)
    assert refused.value.retry_after == 12 * 3600
    assert (await budgets.check_tokens(7, "pro", NOW)).used == 1400
    assert (await budgets.check_tokens(7, "free", NOW + timedelta(hours=12))).used == 0
    # Scans: two at once race for the last one; exactly one wins.
    await budgets.take_scan(7, "free", NOW)
    results = await asyncio.gather(
        budgets.take_scan(7, "free", NOW),
        budgets.take_scan(7, "free", NOW),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["DailyLimitReached", "Usage"]
    await budgets.release_scan(7, NOW)
    today = await budgets.today(7, "free", NOW)
    assert (today["scans"].used, today["tokens"].used) == (1, 1400)


async def test_the_coach_summarises_with_a_model_and_falls_back_to_extracts(
    database: Database,
) -> None:
    import httpx

    from keel.coach.bot.service import Coach
    from keel.coach.routing import ModelRouter, RouterConfig
    from keel.core.clock import SystemClock

    async with httpx.AsyncClient(trust_env=False) as http:
        # Nothing listens on port 1: every model is down, the summary is extractive.
        down = ModelRouter(http, RouterConfig(base_url="http://127.0.0.1:1", text_models=["m"]))
        coach = Coach(
            conversations=conversations(database),
            budgets=Budgets(database, free=Limits(1, 1), pro=Limits(1, 1)),
            router=down,
            personas=personas.shipped(),
            radar=None,  # type: ignore[arg-type]
            watches=None,  # type: ignore[arg-type]
            watch_limits={},
            clock=SystemClock(),
        )
        turns = [Turn("user", "I lost twice. Then I doubled my size."), Turn("assistant", "Why?")]
        assert await coach.summarise("", turns) == "User: I lost twice\nCoach: Why?"
