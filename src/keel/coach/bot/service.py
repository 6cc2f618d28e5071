"""What the coach does with a message, independent of Telegram's API.

A question is answered in one pass: the user is met (created on first contact), today's token
budget checked, the conversation's context read, the answer streamed through the model router
into a :class:`Reply` (a Telegram message being edited), checked against trade calls, and
only then recorded and charged. When every model is down the user is told so in the same
reply; nothing is charged.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from keel.coach import advice
from keel.coach.budgets import Budgets
from keel.coach.conversations import CoachUser, Conversations, extractive_summary
from keel.coach.personas import Personas
from keel.coach.risk import RiskError, RiskRadar, format_report, parse_query
from keel.coach.routing import Chart, ModelRouter, Turn
from keel.coach.watching import Watches
from keel.core.clock import Clock
from keel.core.llm.chain import AllModelsFailed
from keel.core.llm.chat import AccountRefused, ChatFailure
from keel.core.usage import DailyLimitReached

log = structlog.get_logger("keel.coach")

MODELS_DOWN = (
    "I can't reach my models right now, so I can't answer this one. Please try again in a "
    "minute; nothing was counted against your daily budget."
)
MISCONFIGURED = (
    "The coach's model account was refused by the provider. The operator has been alerted; "
    "please try again later."
)


class Reply(Protocol):
    """A reply being written into a chat (keel.coach.telegram.streaming.StreamingReply)."""

    async def start(self) -> None: ...
    async def feed(self, piece: str) -> None: ...
    async def restart(self, note: str) -> None: ...
    async def finish(self, final_text: str) -> list[int]: ...


@dataclass(frozen=True)
class Sender:
    """Who wrote, as Telegram says."""

    user_id: int
    chat_id: int
    first_name: str


def hours_until(now: datetime, then: datetime) -> str:
    hours = max(1, math.ceil((then - now).total_seconds() / 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


class Coach:
    def __init__(
        self,
        *,
        conversations: Conversations,
        budgets: Budgets,
        router: ModelRouter,
        personas: Personas,
        radar: RiskRadar,
        watches: Watches,
        watch_limits: dict[str, int],
        clock: Clock,
    ) -> None:
        self.conversations = conversations
        self.budgets = budgets
        self.router = router
        self.personas = personas
        self.radar = radar
        self.watches = watches
        self.watch_limits = watch_limits
        self.clock = clock

    async def meet(self, sender: Sender) -> CoachUser:
        return await self.conversations.meet(
            sender.user_id, sender.chat_id, sender.first_name, self.clock.now()
        )

    def plan(self, user: CoachUser) -> str:
        return "pro" if user.is_pro(self.clock.now()) else "free"

    async def ask(
        self, sender: Sender, question: str, reply: Reply, chart: bytes | None = None
    ) -> None:
        now = self.clock.now()
        user = await self.meet(sender)
        try:
            await self.budgets.check_tokens(user.id, self.plan(user), now)
        except DailyLimitReached as exc:
            await reply.finish(
                f"You've used today's {exc.plan} budget. It resets at midnight UTC (in "
                f"{hours_until(now, exc.retry_at)})."
                + (" /subscribe raises it." if exc.plan == "free" else "")
            )
            return
        context = await self.conversations.context(user.id, now)
        persona = self.personas.get(user.persona)
        system = self.personas.system_prompt(persona.key)
        if context.summary:
            system += f"\n\nEarlier in this conversation (summary):\n{context.summary}"
        await reply.start()
        gate = advice.Gate()  # shows whole sentences, checked, as they stream

        async def show(piece: str) -> None:
            if checked := gate.feed(piece):
                await reply.feed(checked)

        async def restart(note: str) -> None:
            gate.reset()
            await reply.restart(note)

        try:
            answer = await self.router.answer(
                system=system,
                history=context.turns,
                question=question,
                chart=Chart(chart) if chart is not None else None,
                temperature=persona.temperature,
                on_text=show,
                on_restart=restart,
            )
        except AllModelsFailed as exc:
            log.warning("coach_models_down", reasons=list(exc.reasons))
            await reply.finish(MODELS_DOWN)
            return
        except AccountRefused as exc:
            log.error("coach_model_account_refused", error=str(exc))
            await reply.finish(MISCONFIGURED)
            return
        checked = advice.check(answer.text)
        if checked.removed:
            log.warning("coach_trade_call_removed", model=answer.model, count=checked.removed)
        await reply.finish(checked.text)
        asked = question or "[sent a chart]"
        if answer.description:
            asked += f"\n[chart, as described: {answer.description}]"
        await self.conversations.record(
            context, asked, checked.text, answer.model, now, self.summarise
        )
        await self.budgets.charge_tokens(user.id, answer.tokens, now)

    async def summarise(self, previous: str, turns: Sequence[Turn]) -> str:
        """A model's summary of ``turns`` after ``previous``; the extractive one if no model
        answers."""
        try:
            return await self.router.summarise(previous, turns)
        except (AllModelsFailed, ChatFailure) as exc:
            log.info("coach_summary_extractive", error=str(exc))
            return extractive_summary(previous, turns)

    async def switch_persona(self, sender: Sender, name: str) -> str:
        persona = self.personas.find(name)
        if persona is None:
            known = ", ".join(p.key for p in self.personas.personas.values())
            return f"I don't know the mode {name!r}. Try one of: {known}."
        user = await self.meet(sender)
        await self.conversations.set_persona(user.id, persona.key)
        return f"{persona.emoji} {persona.name} from now on. {persona.description}"

    async def scan(self, sender: Sender, query: str) -> str:
        """/scan: the token's risk report, or what went wrong (Telegram HTML)."""
        if not query.strip():
            return "Send the token's address: /scan 0x… [chain: bsc, base, …] or a Solana mint."
        try:
            token = parse_query(query)
        except RiskError as exc:
            return html.escape(exc.detail or str(exc))
        now = self.clock.now()
        user = await self.meet(sender)
        plan = self.plan(user)
        try:
            await self.budgets.take_scan(user.id, plan, now)
        except DailyLimitReached as exc:
            return html.escape(
                f"You've used today's {exc.limit} scans. They reset at midnight UTC (in "
                f"{hours_until(now, exc.retry_at)})."
                + (" /subscribe raises the limit." if plan == "free" else "")
            )
        try:
            report, score = await self.radar.scan(token.chain, token.address)
        except RiskError as exc:
            await self.budgets.release_scan(user.id, now)  # a scan that did not happen
            return html.escape(exc.detail or str(exc))
        return format_report(report, score)

    async def watch(self, sender: Sender, query: str) -> str:
        if not query.strip():
            return "Send the token's address: /watch 0x… [chain] or a Solana mint."
        try:
            token = parse_query(query)
        except RiskError as exc:
            return html.escape(exc.detail or str(exc))
        user = await self.meet(sender)
        limit = self.watch_limits[self.plan(user)]
        if await self.watches.count(user.id) >= limit:
            return f"You're watching {limit} tokens, your plan's most. /unwatch one first."
        try:
            report, score = await self.radar.scan(token.chain, token.address)
        except RiskError as exc:
            return html.escape(exc.detail or str(exc))
        added = await self.watches.add(user.id, sender.chat_id, token, report, self.clock.now())
        if not added:
            return "You're already watching that token."
        minutes = max(1, int(self.watches.interval.total_seconds() // 60))
        return (
            f"Watching it. I'll check every {minutes} minutes and tell you when its risk "
            f"changes. Now: {score.level} ({score.score}/100)."
        )

    async def unwatch(self, sender: Sender, query: str) -> str:
        try:
            token = parse_query(query)
        except RiskError as exc:
            return html.escape(exc.detail or str(exc))
        user = await self.meet(sender)
        if await self.watches.remove(user.id, token):
            return "Stopped watching it."
        return "You weren't watching that token."

    async def status(self, sender: Sender) -> str:
        now = self.clock.now()
        user = await self.meet(sender)
        plan = self.plan(user)
        today = await self.budgets.today(user.id, plan, now)
        persona = self.personas.get(user.persona)
        lines = [
            f"Mode: {persona.emoji} {persona.name}",
            (
                f"Plan: pro until {user.paid_until:%Y-%m-%d %H:%M} UTC"
                if plan == "pro" and user.paid_until is not None
                else "Plan: free (/subscribe for more)"
            ),
            f"Today: {today['tokens'].used:,} of {today['tokens'].limit:,} tokens, "
            f"{today['scans'].used} of {today['scans'].limit} scans (resets at 00:00 UTC)",
        ]
        watched = await self.watches.of(user.id)
        if watched:
            lines.append(f"Watching {len(watched)} of {self.watch_limits[plan]}:")
            lines += [f"  {w.address} ({w.chain})" for w in watched]
        return "\n".join(lines)

    async def reset(self, sender: Sender) -> str:
        user = await self.meet(sender)
        await self.conversations.reset(user.id, self.clock.now())
        return "Fresh start: I've cleared our conversation. Your mode stays as it was."
