"""The chat stream reader gives the same answer however the network cuts the bytes.

Every recorded event stream (roadmaps' and coach's OpenRouter recordings) is cut into two reads
at every byte boundary, and into many reads at random cuts, and read by the real reader
(``chat._streamed_answer`` over an httpx response): the text, the model and the finish reason
are identical every time. Cuts land inside lines, inside ``\\r\\n`` pairs, inside JSON and
inside UTF-8 characters.

A two-way cut costs a whole read, so the sweep is quadratic: streams up to 8 kB are cut at every
byte; in longer ones, every byte within 8 of a line end or a non-ASCII character (where the
decoder's line and character buffers are exercised) plus every 97th byte elsewhere, since
every other cut is a cut in the middle of an ASCII line, which the decoder cannot tell apart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.core.llm import chat

ROOT = Path(__file__).parents[2]
RECORDINGS = sorted(
    [
        *(ROOT / "coach/recordings/openrouter").glob("*.json"),
        *(ROOT / "roadmaps/generation/recordings/chat").glob("*.json"),
    ]
)


def streams() -> list[tuple[str, bytes]]:
    found = []
    for path in RECORDINGS:
        for index, exchange in enumerate(json.loads(path.read_text())["exchanges"]):
            response = exchange["response"]
            if response.get("status") == 200 and "body_text" in response:
                found.append(
                    (f"{path.parent.name}/{path.stem}#{index}", response["body_text"].encode())
                )
    return found


STREAMS = streams()


class Pieces(httpx.AsyncByteStream):
    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


async def read(pieces: Sequence[bytes]) -> tuple[str, str, str | None] | str:
    response = httpx.Response(
        200, headers={"content-type": "text/event-stream; charset=utf-8"}, stream=Pieces(pieces)
    )
    try:
        answer = await chat._streamed_answer(response, "requested/model", None)
    except chat.ProviderDown as exc:
        return f"down: {exc}"
    return answer.content, answer.model, answer.finish_reason


def boundaries(body: bytes) -> list[int]:
    if len(body) <= 8_000:
        return list(range(1, len(body)))
    near = set(range(97, len(body), 97))
    for at, byte in enumerate(body):
        if byte in b"\r\n" or byte >= 0x80:
            near.update(range(at - 8, at + 9))
    return sorted(cut for cut in near if 0 < cut < len(body))


def test_there_are_recorded_streams_to_cut() -> None:
    names = [name for name, _ in STREAMS]
    assert len(STREAMS) >= 8, names
    assert any("primary_503" in n for n in names)  # a mid-stream error frame among them


@pytest.mark.parametrize(("name", "body"), STREAMS, ids=[n for n, _ in STREAMS])
async def test_every_byte_boundary_gives_the_same_answer(name: str, body: bytes) -> None:
    whole = await read([body])
    assert whole != ("", "requested/model", None)  # the recording holds an answer (or an error)
    for cut in boundaries(body):
        assert await read([body[:cut], body[cut:]]) == whole, f"{name}: cut at byte {cut}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
async def test_any_number_of_cuts_gives_the_same_answer(data: st.DataObject) -> None:
    name, body = data.draw(st.sampled_from(STREAMS))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(body) - 1), max_size=200)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    assert await read(pieces) == await read([body]), name


def test_a_crlf_stream_with_multibyte_text_reads_the_same_at_every_boundary() -> None:
    text = "Zürich → 東京 🚀 risk, not price.\nSecond line."
    frames = [
        ": OPENROUTER PROCESSING\r\n\r\n",
        *(
            "data: "
            + json.dumps(
                {"model": "m/x", "choices": [{"delta": {"content": c}}]}, ensure_ascii=False
            )
            + "\r\n\r\n"
            for c in (text[:9], text[9:20], text[20:])
        ),
        'data: {"model": "m/x", "choices": [{"delta": {}, "finish_reason": "stop"}]}\r\n\r\n',
        "data: [DONE]\r\n\r\n",
    ]
    body = "".join(frames).encode()

    async def check() -> None:
        for cut in range(1, len(body)):
            assert await read([body[:cut], body[cut:]]) == (text, "m/x", "stop"), cut

    asyncio.run(check())
