"""coach: messages per second the bot answers with streaming replies, and each chat's edit rate,
against the fake Telegram Bot API, in one run beside a baseline that sends each answer whole.

The bot is coach's real app (its lifespan polls Telegram through aiogram's custom API server
setting) talking to ``tests/coach/fake_telegram.py`` with Telegram's flood control switched on
(a chat edited faster than once a second gets 429). Answers stream from a local
OpenAI-compatible server (``tests/chat_replay.py``) that sends a ~770-character answer in 60
pieces ``--piece-ms`` apart. ``--chats`` chats each send ``--messages`` questions, one after the
other (the next once the previous answer has landed and a seeded pause of up to 2 s passed).

Measured per mode: answers per second (all chats); p50 time from a question to the first of
its answer on screen; p50/p95 time to its whole answer in the chat; Telegram calls per answer;
the most paced calls any chat got in one second; the shortest gap between two calls to one
chat; 429s received.
The baseline ("whole") is the same bot with the reply replaced by one that ignores the stream
and sends the final text once: what streaming costs in throughput and calls.

    PYTHONPATH=src:. .venv/bin/python bench/coach_bot.py                 # 50 chats x 4, ~1 min
    PYTHONPATH=src:. .venv/bin/python bench/coach_bot.py --bot-rate 1000   # the bot's own ceiling
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from tests.chat_replay import serve_chat_recordings
from tests.coach.fake_telegram import DEFAULT_TOKEN, FakeTelegram, FloodControl

from keel.coach.advice import check
from keel.coach.app import create_app
from keel.coach.bot import handlers
from keel.coach.settings import CoachSettings
from keel.coach.telegram.pacing import Pacer
from keel.coach.telegram.streaming import StreamingReply

ANSWER = (
    "Revenge trading starts as a feeling, not a decision: the loss stings, and the next trade "
    "promises to take the sting away. Notice the urge before you act on it.\n\n"
    "Write down what your plan said about the trade that just closed. If you followed it, the "
    "loss was the cost of doing business; if you did not, that is the lesson, and it is about "
    "process, not price.\n\n"
    "A rule many traders keep: after two losses in a row, stand up and step away for thirty "
    "minutes. The market will still be there. Your account may not be, if you chase.\n\n"
    "When you come back, size down for the next three trades. Confidence returns through "
    "execution, not through one big win. What would make that rule easy for you to keep "
    "today, and who could you tell about it so that you keep it? NFA. DYOR."
)
PIECES = 60


def recording(root: Path, piece_ms: int) -> None:
    step = -(-len(ANSWER) // PIECES)
    frames = [": OPENROUTER PROCESSING\n\n"]
    for i in range(0, len(ANSWER), step):
        chunk = {"model": "bench/model", "choices": [{"delta": {"content": ANSWER[i : i + step]}}]}
        frames.append(f"data: {json.dumps(chunk)}\n\n")
    frames.append(
        'data: {"model":"bench/model","choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
    )
    frames.append("data: [DONE]\n\n")
    body = "".join(frames)
    cuts, at = [], 0
    for frame in frames[:-1]:
        at += len(frame.encode())
        cuts.append(at)
    exchange = {
        "request": {"method": "POST", "path": "/chat/completions"},
        "response": {
            "status": 200,
            "headers": {"Content-Type": "text/event-stream"},
            "body_text": body,
            "split_at": cuts,
            "chunk_delay_seconds": piece_ms / 1000,
        },
    }
    (root / "bench").mkdir(parents=True, exist_ok=True)
    (root / "bench" / "answer.json").write_text(json.dumps({"exchanges": [exchange]}))


class WholeReply:
    """The baseline: shows nothing while the model streams, sends the final text once."""

    def __init__(self, bot: Any, pacer: Pacer, *, chat_id: int, **_: Any) -> None:
        self.reply = StreamingReply(bot, pacer, chat_id=chat_id)

    async def start(self) -> None:
        return None

    async def feed(self, piece: str) -> None:
        return None

    async def restart(self, note: str) -> None:
        return None

    async def finish(self, final_text: str) -> list[int]:
        return await self.reply.finish(final_text)

    async def close(self) -> None:
        await self.reply.close()


@contextmanager
def baseline(mode: str) -> Iterator[None]:
    if mode == "whole":
        with mock.patch.object(handlers, "StreamingReply", WholeReply):
            yield
    else:
        yield


async def run(
    mode: str, chats: int, messages: int, llm_url: str, bot_rate: float
) -> dict[str, float]:
    expected = check(ANSWER).text
    flood = FloodControl(
        min_interval_seconds=1.0,
        retry_after_seconds=3,
        methods=frozenset({"sendMessage", "editMessageText", "deleteMessage"}),
    )
    with FakeTelegram(flood=flood) as telegram, tempfile.TemporaryDirectory() as data:
        settings = CoachSettings(
            telegram_token=DEFAULT_TOKEN,
            telegram_api_url=telegram.url,
            llm_base_url=llm_url,
            daily_tokens_free=10**9,
            edit_interval_seconds=1.0,
            telegram_calls_per_second=bot_rate,
        )
        product = create_app(settings, data_dir=data)
        latencies: list[float] = []
        firsts: list[float] = []  # question -> the first of its answer on screen
        with baseline(mode):
            async with product.lifespan():

                async def chat(chat_id: int) -> None:
                    # People do not all type at the same instant: a seeded pause before each
                    # question (the same in both modes), so load arrives spread, not in lockstep.
                    pauses = random.Random(chat_id)
                    for n in range(messages):
                        await asyncio.sleep(pauses.uniform(0, 2.0))
                        shown = len(telegram.chat(chat_id).bot_texts)
                        asked = time.monotonic()
                        telegram.send_text(chat_id, f"question {n}: I keep chasing losses")
                        # The fake Telegram runs in its own thread: its state is read, polled.
                        first = None
                        while True:
                            texts = telegram.chat(chat_id).bot_texts
                            if first is None and len(texts) > shown:
                                first = time.monotonic() - asked
                            if sum(t == expected for t in texts) > n:
                                break
                            await asyncio.sleep(0.02)
                        firsts.append(first if first is not None else time.monotonic() - asked)
                        latencies.append(time.monotonic() - asked)

                started = time.monotonic()
                await asyncio.gather(*(chat(1000 + i) for i in range(chats)))
                elapsed = time.monotonic() - started
        calls = [c for c in telegram.calls() if c.chat_id is not None]
    paced = [c for c in calls if c.method in flood.methods]
    per_chat: dict[int, list[float]] = {}
    for call in paced:
        per_chat.setdefault(int(call.chat_id or 0), []).append(call.at)
    peak, closest = 0, float("inf")
    for times in per_chat.values():
        times.sort()
        closest = min([closest, *(b - a for a, b in itertools.pairwise(times))])
        for i, t in enumerate(times):
            peak = max(peak, sum(1 for u in times[i:] if u - t < 1.0))
    answers = chats * messages
    latencies.sort()
    methods: dict[str, int] = {}
    for call in calls:
        methods[call.method] = methods.get(call.method, 0) + 1
    print(
        f"  {mode}: Telegram calls per answer by method: "
        + ", ".join(f"{m} {n / answers:.2f}" for m, n in sorted(methods.items()))
    )
    firsts.sort()
    return {
        "answers/s": answers / elapsed,
        "first text p50 s": statistics.median(firsts),
        "p50 s": statistics.median(latencies),
        "p95 s": latencies[int(0.95 * (len(latencies) - 1))],
        "calls/answer": len(paced) / answers,
        "peak calls/chat/s": peak,
        "min gap s": closest if closest != float("inf") else 0.0,
        "429s": sum(1 for c in calls if c.status == 429),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--piece-ms", type=int, default=30)
    parser.add_argument(
        "--bot-rate",
        type=float,
        default=30.0,
        help="the bot's Telegram calls a second across chats (Telegram's ~30; 1000 lifts it)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        recording(Path(root), args.piece_ms)
        with serve_chat_recordings(Path(root)) as llm:
            url = llm.url("bench", "answer")
            print(
                f"coach bot, {args.chats} chats x {args.messages} questions, answers of "
                f"{len(ANSWER)} characters in {PIECES} pieces {args.piece_ms} ms apart, "
                f"fake Telegram with flood control at 1 call/s per chat, the bot paced at "
                f"{args.bot_rate:g} calls/s "
                f"(python {platform.python_version()})"
            )
            results = {}
            for mode in ("whole", "streaming"):
                results[mode] = await run(mode, args.chats, args.messages, url, args.bot_rate)
    columns = list(results["streaming"])
    print(f"{'mode':<10}" + "".join(f"{c:>19}" for c in columns))
    for mode, figures in results.items():
        print(f"{mode:<10}" + "".join(f"{figures[c]:>19.3f}" for c in columns))
    ratio = results["streaming"]["answers/s"] / results["whole"]["answers/s"]
    print(
        f"streaming/whole: answers/s ×{ratio:.2f}, p95 ×"
        f"{results['streaming']['p95 s'] / results['whole']['p95 s']:.2f}, calls/answer ×"
        f"{results['streaming']['calls/answer'] / results['whole']['calls/answer']:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
