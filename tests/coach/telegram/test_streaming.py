"""StreamingReply through a real aiogram Bot against the fake Telegram server."""

from __future__ import annotations

import asyncio
import itertools
import re
import time

import pytest
import structlog
from aiogram import Bot
from prometheus_client import REGISTRY

from keel.coach.telegram.pacing import Pacer
from keel.coach.telegram.splitting import utf16_len
from keel.coach.telegram.streaming import StreamingReply
from tests.coach.fake_telegram import Call, FakeTelegram, FloodControl
from tests.coach.telegram.conftest import eventually

CHAT, OTHER = 4242, 5151
INTERVAL = 0.4
PACED_METHODS = {"sendMessage", "editMessageText", "deleteMessage"}

ANSWER = (
    "Revenge trading starts when a loss feels like an insult rather than a cost. "
    "Before the next order, write down the loss, the rule you broke and the size you "
    "would take on a calm day.\n\nThen halve it. A smaller position gives the urge room to "
    "pass without a second loss on top of the first. If it still pulls at you after "
    "twenty minutes, close the terminal for the day."
)


def long_answer() -> str:
    prose = "\n\n".join(
        f"Step {n}: before entering, name the invalidation level, size the position so a "
        f"stop there costs at most one percent, and write both down. " * 4
        for n in range(1, 11)
    )
    code = "```python\n" + "\n".join(
        f"    journal.append(Trade(id={n}, risk_pct=1.0, stop=entry * 0.97))" for n in range(80)
    )
    outro = "\n```\n\nReview the journal every Sunday. " + "Look for the same mistake twice. " * 20
    return f"{prose}\n\n{code}{outro}"


async def stream(reply: StreamingReply, text: str, *, seconds: float, size: int = 4) -> None:
    """Feed ``text`` in pieces of ``size`` characters over about ``seconds``."""
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    pause = seconds / len(pieces)
    for piece in pieces:
        await reply.feed(piece)
        await asyncio.sleep(pause)


async def quiet(fake: FakeTelegram, chat: int, *, seconds: float) -> None:
    """Wait until ``chat`` has had no call for ``seconds`` (at most 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        calls = fake.calls(chat_id=chat)
        if calls and time.monotonic() - calls[-1].at >= seconds:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the chat never went quiet")


def paced(fake: FakeTelegram, chat: int) -> list[Call]:
    return [call for call in fake.calls(chat_id=chat) if call.method in PACED_METHODS]


def gaps(calls: list[Call]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(calls)]


def bot_ids(fake: FakeTelegram, chat: int) -> list[int]:
    return [m.message_id for m in fake.chat(chat).messages if m.from_bot]


async def test_a_streamed_answer_edits_no_faster_than_the_interval_and_ends_as_the_answer(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.flood = FloodControl(INTERVAL, methods=frozenset(PACED_METHODS))
    question = fake.send_text(CHAT, "Why do I revenge trade?")
    reply = StreamingReply(
        bot, Pacer(interval_seconds=INTERVAL), chat_id=CHAT, reply_to_message_id=question.message_id
    )
    await reply.start()
    await stream(reply, ANSWER, seconds=3)
    ids = await reply.finish()

    chat = fake.chat(CHAT)
    assert chat.bot_texts == [ANSWER]
    assert ids == bot_ids(fake, CHAT)
    assert chat.messages[-1].reply_to == question.message_id
    assert all(call.ok for call in fake.calls(chat_id=CHAT)), "a 429 or a refused edit"
    edits = fake.calls("editMessageText", chat_id=CHAT)
    assert len(edits) >= 4, "the answer did not stream"
    assert min(gaps(paced(fake, CHAT))) >= INTERVAL
    shown = [call.params["text"] for call in edits]
    assert all(ANSWER.startswith(text) for text in shown)
    assert shown == sorted(shown, key=len)
    # The text came at once: no "typing…" was spent on it.
    assert not fake.calls("sendChatAction", chat_id=CHAT)


async def test_typing_shows_while_the_first_text_is_slow_to_come(
    fake: FakeTelegram, bot: Bot
) -> None:
    reply = StreamingReply(bot, Pacer(interval_seconds=INTERVAL), chat_id=CHAT)
    await reply.start()
    await asyncio.sleep(1.5)  # a model slow to its first token
    assert len(fake.calls("sendChatAction", chat_id=CHAT)) == 1
    await reply.feed("Here it is.")
    await reply.finish()
    assert fake.chat(CHAT).bot_texts == ["Here it is."]


async def test_a_retry_after_is_obeyed_and_recorded(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("editMessageText", retry_after=2, chat_id=CHAT)
    pacer = Pacer(interval_seconds=0.3)
    labels = {"method": "editMessageText"}
    counted = REGISTRY.get_sample_value("coach_telegram_retry_after_total", labels) or 0
    with structlog.testing.capture_logs() as logs:
        reply = StreamingReply(bot, pacer, chat_id=CHAT)
        await reply.start()
        await stream(reply, ANSWER, seconds=3.5)
        await reply.finish()

    calls = fake.calls(chat_id=CHAT)
    (refused,) = [call for call in calls if call.status == 429]
    after = [call for call in calls if call.at > refused.at]
    # Nothing reached the chat during the wait (the fake would have answered 429 again).
    assert after[0].at - refused.at >= 2.0
    assert fake.chat(CHAT).bot_texts == [ANSWER]
    (penalty,) = pacer.penalties()
    assert (penalty.chat_id, penalty.method, penalty.retry_after_seconds) == (
        CHAT,
        "editMessageText",
        2,
    )
    assert REGISTRY.get_sample_value("coach_telegram_retry_after_total", labels) == counted + 1
    warnings = [log for log in logs if log["event"] == "telegram_retry_after"]
    assert warnings == [
        {
            "event": "telegram_retry_after",
            "log_level": "warning",
            "chat_id": CHAT,
            "method": "editMessageText",
            "retry_after": 2,
        }
    ]


async def test_a_10000_character_answer_arrives_complete_and_in_order(
    fake: FakeTelegram, bot: Bot
) -> None:
    answer = long_answer()
    assert len(answer) > 10_000
    reply = StreamingReply(bot, Pacer(interval_seconds=0.2), chat_id=CHAT)
    await reply.start()
    await stream(reply, answer, seconds=3, size=40)
    finishing = time.monotonic()
    ids = await reply.finish()

    texts = fake.chat(CHAT).bot_texts
    assert len(texts) >= 3
    assert ids == bot_ids(fake, CHAT)
    assert all(utf16_len(text) <= 4096 for text in texts)

    def content(text: str) -> str:
        # What the reader gets: the text without whitespace and without the fences the
        # split closes and reopens.
        return re.sub(r"\s+", "", text.replace("```python", "").replace("```", ""))

    assert content("".join(texts)) == content(answer)
    for text in texts:
        assert len(re.findall(r"^```", text, re.MULTILINE)) % 2 == 0, "a fence left open"
    sends = fake.calls("sendMessage", chat_id=CHAT)
    assert len([call for call in sends if call.at < finishing]) >= 2, "nothing froze mid-stream"


async def test_a_refused_final_edit_lands_as_a_new_message(fake: FakeTelegram, bot: Bot) -> None:
    reply = StreamingReply(bot, Pacer(interval_seconds=0.2), chat_id=CHAT)
    await reply.feed("Draft: hold the position")
    await eventually(lambda: fake.chat(CHAT).bot_texts == ["Draft: hold the position"])
    (draft,) = bot_ids(fake, CHAT)
    fake.fail_next("editMessageText", description="Bad Request: message can't be edited")

    ids = await reply.finish("Final: cut the loss at your stop.")

    assert fake.chat(CHAT).bot_texts == ["Final: cut the loss at your stop."]
    assert ids == bot_ids(fake, CHAT)
    assert ids[0] != draft
    assert [call.status for call in fake.calls("editMessageText", chat_id=CHAT)] == [400]


async def test_an_edit_refused_while_streaming_leaves_no_half_answer_behind(
    fake: FakeTelegram, bot: Bot
) -> None:
    reply = StreamingReply(bot, Pacer(interval_seconds=0.1), chat_id=CHAT)
    await reply.feed("Draft one.")
    await eventually(lambda: fake.chat(CHAT).bot_texts == ["Draft one."])
    fake.fail_next("editMessageText")  # 400 "message can't be edited"
    await reply.feed(" Draft two.")
    await eventually(lambda: bool(fake.calls("editMessageText", chat_id=CHAT)))
    ids = await reply.finish()
    assert fake.chat(CHAT).bot_texts == ["Draft one. Draft two."]
    assert ids == bot_ids(fake, CHAT)


async def test_a_refused_edit_sends_that_part_and_every_later_one_in_order(
    fake: FakeTelegram, bot: Bot
) -> None:
    answer = long_answer()
    reply = StreamingReply(bot, Pacer(interval_seconds=0.1), chat_id=CHAT)
    await stream(reply, answer, seconds=1.5, size=200)
    await eventually(lambda: len(fake.chat(CHAT).bot_texts) >= 2)
    # The editor catches up on what was fed; the refusal is for finish()'s edit, not for one
    # of the editor's last ones (which would make this another test).
    await quiet(fake, CHAT, seconds=0.5)
    streamed = bot_ids(fake, CHAT)
    fake.fail_next("editMessageText", description="Bad Request: message to edit not found")

    revised = "Revised after your last message.\n\n" + answer
    ids = await reply.finish(revised)

    texts = fake.chat(CHAT).bot_texts
    assert ids == bot_ids(fake, CHAT)
    assert not set(ids) & set(streamed), "a stale message was left in the answer"
    assert texts[0].startswith("Revised after your last message.")
    assert re.sub(r"\s|`|python", "", "".join(texts)) == re.sub(r"\s|`|python", "", revised)


async def test_a_final_edit_held_back_past_the_cap_lands_as_a_new_message_after_the_wait(
    fake: FakeTelegram, bot: Bot
) -> None:
    reply = StreamingReply(bot, Pacer(interval_seconds=0.1), chat_id=CHAT, edit_wait_seconds=0.5)
    await reply.feed("Draft")
    await eventually(lambda: fake.chat(CHAT).bot_texts == ["Draft"])
    fake.fail_next("editMessageText", retry_after=2)

    ids = await reply.finish("Final answer")

    assert fake.chat(CHAT).bot_texts == ["Final answer"]
    assert ids == bot_ids(fake, CHAT)
    (refused,) = [call for call in fake.calls(chat_id=CHAT) if call.status == 429]
    (sent,) = [c for c in fake.calls("sendMessage", chat_id=CHAT) if c.at > refused.at]
    assert sent.at - refused.at >= 2.0


async def test_no_edit_repeats_the_text_already_shown(fake: FakeTelegram, bot: Bot) -> None:
    reply = StreamingReply(bot, Pacer(interval_seconds=0.1), chat_id=CHAT)
    await reply.start()
    # Whitespace at the end changes nothing Telegram shows.
    for piece in ["Size", " ", "", "the", " ", "position", "\n\n", " "]:
        await reply.feed(piece)
        await asyncio.sleep(0.15)
    await eventually(lambda: fake.chat(CHAT).bot_texts == ["Size the position"])
    await asyncio.sleep(0.3)
    finishing = time.monotonic()

    await reply.finish()

    assert [call for call in fake.calls(chat_id=CHAT) if call.at >= finishing] == []
    edits = fake.calls("editMessageText", chat_id=CHAT)
    assert edits
    assert all(call.ok for call in edits)
    (message,) = fake.chat(CHAT).messages
    versions = [*message.earlier_texts, message.text]
    assert versions == ["Size", "Size the", "Size the position"]


async def test_two_chats_streaming_at_once_keep_their_own_pace(
    fake: FakeTelegram, bot: Bot
) -> None:
    pacer = Pacer(interval_seconds=INTERVAL)

    async def answer(chat: int) -> None:
        reply = StreamingReply(bot, pacer, chat_id=chat)
        await reply.start()
        await stream(reply, ANSWER, seconds=3)
        await reply.finish()

    await asyncio.gather(answer(CHAT), answer(OTHER))

    for chat in (CHAT, OTHER):
        calls = paced(fake, chat)
        assert fake.chat(chat).bot_texts == [ANSWER]
        assert min(gaps(calls)) >= INTERVAL
        # Each chat gets its own pace (about 3 s / 0.4 s turns), not half of a shared one.
        assert len(calls) >= 5
    first = paced(fake, CHAT)
    second = paced(fake, OTHER)
    assert abs(first[0].at - second[0].at) < INTERVAL, "one chat waited for the other"


async def test_a_restart_resets_what_the_chat_shows(fake: FakeTelegram, bot: Bot) -> None:
    reply = StreamingReply(bot, Pacer(interval_seconds=0.1), chat_id=CHAT, limit=150)
    await reply.start()
    await stream(reply, ANSWER, seconds=1, size=20)
    await eventually(lambda: len(fake.chat(CHAT).bot_texts) >= 3)

    await reply.restart("The first model failed; trying another…")
    await eventually(
        lambda: fake.chat(CHAT).bot_texts == ["The first model failed; trying another…"]
    )
    await reply.feed("A calmer answer.")
    ids = await reply.finish()

    assert fake.chat(CHAT).bot_texts == ["A calmer answer."]
    assert ids == bot_ids(fake, CHAT)


async def test_feeding_never_waits_for_telegram(fake: FakeTelegram, bot: Bot) -> None:
    pacer = Pacer(interval_seconds=1)
    pacer.penalise(CHAT, "editMessageText", 3)
    reply = StreamingReply(bot, pacer, chat_id=CHAT)
    began = time.monotonic()
    for _ in range(2000):
        await reply.feed("word ")
    assert time.monotonic() - began < 0.5
    await reply.close()
    assert fake.calls(chat_id=CHAT) == []


async def test_a_blank_final_text_is_refused_and_the_reply_stays_open(
    fake: FakeTelegram, bot: Bot
) -> None:
    reply = StreamingReply(bot, Pacer(interval_seconds=0.1), chat_id=CHAT)
    await reply.start()
    with pytest.raises(ValueError, match="needs some text"):
        await reply.finish()
    ids = await reply.finish("The model returned nothing; please ask again.")
    assert fake.chat(CHAT).bot_texts == ["The model returned nothing; please ask again."]
    assert len(ids) == 1


async def test_close_after_finish_changes_nothing_and_a_context_closes_an_unfinished_reply(
    fake: FakeTelegram, bot: Bot
) -> None:
    pacer = Pacer(interval_seconds=0.1)
    reply = StreamingReply(bot, pacer, chat_id=CHAT)
    await reply.feed("Done.")
    ids = await reply.finish()
    await reply.close()
    assert reply.message_ids == ids

    async with StreamingReply(bot, pacer, chat_id=OTHER) as abandoned:
        await abandoned.feed("Half an ans")
        await eventually(lambda: fake.chat(OTHER).bot_texts == ["Half an ans"])
    with pytest.raises(RuntimeError, match="finished"):
        await abandoned.feed("wer")
    assert fake.chat(OTHER).bot_texts == ["Half an ans"]
