"""The incremental SSE decoder: the same events however the stream is cut."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.core.llm.sse import MAX_LINE_CHARS, SSEDecoder, SSEEvent


def decode(chunks: list[str]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


def test_openrouter_stream_with_comments_and_done() -> None:
    stream = (
        ": OPENROUTER PROCESSING\n\n"
        'data: {"choices":[{"delta":{"content":"{\\"ti"}}]}\n\n'
        ": OPENROUTER PROCESSING\n\n"
        'data: {"choices":[{"delta":{"content":"tle\\""}}]}\r\n\r\n'
        "data: [DONE]\n\n"
    )
    events = decode([stream[i : i + 7] for i in range(0, len(stream), 7)])
    assert [e.data for e in events] == [
        '{"choices":[{"delta":{"content":"{\\"ti"}}]}',
        '{"choices":[{"delta":{"content":"tle\\""}}]}',
        "[DONE]",
    ]


def test_fields_multiline_data_and_named_events() -> None:
    events = decode(["event: error\ndata: a\ndata:b\nid: 7\nretry: 10\n\n", "data\n\n"])
    assert events == [SSEEvent(data="a\nb", event="error"), SSEEvent(data="")]


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    assert decode(["data: a\r", "\n\r", "\n"]) == [SSEEvent("a")]


def test_a_final_event_without_blank_line_is_kept() -> None:
    assert decode(["data: last"]) == [SSEEvent("last")]


def test_an_endless_line_is_refused() -> None:
    decoder = SSEDecoder()
    with pytest.raises(ValueError, match="longer than"):
        decoder.feed("data: " + "x" * MAX_LINE_CHARS)


line_text = st.text(
    alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=30
)
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["", "message", "error"]),
        st.lists(line_text, min_size=1, max_size=3),
        st.booleans(),
    ),
    max_size=6,
)


@given(
    events=events_strategy,
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=10),
)
def test_events_survive_any_chunking(
    events: list[tuple[str, list[str], bool]], ending: str, cuts: list[int]
) -> None:
    stream = ""
    expected: list[SSEEvent] = []
    for name, lines, comment in events:
        if comment:
            stream += f": keep-alive{ending}"
        if name:
            stream += f"event: {name}{ending}"
        stream += "".join(f"data: {line}{ending}" for line in lines) + ending
        expected.append(SSEEvent(data="\n".join(lines), event=name or "message"))
    points = sorted({min(cut, len(stream)) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]

    assert decode(chunks) == expected == decode([stream])
