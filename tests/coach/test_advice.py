"""The last check on every answer: trade calls go, process advice stays, the footer is there."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coach.advice import FOOTER, REPLACEMENT, Gate, check, is_trade_call

CALLS = [
    "You should buy ETH now.",
    "I'd recommend selling half before the weekend.",
    "I recommend you buy the dip.",
    "Buy the dip.",
    "Sell now while you can!",
    "Long BTC here with a tight stop.",
    "This is a strong buy.",
    "My advice is to go all-in on SOL.",
    "It's a good time to load up on PEPE.",
    "Definitely take profits at this level.",
    "Consider shorting this pump.",
    "Price target: $4,200.",
    "My target is 3.5k",
    "you might want to hold until the halving",
]
PROCESS = [
    "Don't sell in a panic; check your plan first.",
    "Never buy on impulse after a loss.",
    "Before you buy anything, write down where you would be wrong.",
    "Selling is a decision that belongs to your plan, not to your fear.",
    "Avoid shorting out of anger.",
    "What made you want to buy at the top?",
    "Your stop was where your plan said it would be.",
    "Buying is easy; sizing is the hard part.",
    "The urge to hold a loser is called the disposition effect.",
]


@pytest.mark.parametrize("sentence", CALLS)
def test_trade_calls_are_recognised(sentence: str) -> None:
    assert is_trade_call(sentence)


@pytest.mark.parametrize("sentence", PROCESS)
def test_process_advice_is_not_a_trade_call(sentence: str) -> None:
    assert not is_trade_call(sentence)


def test_calls_are_replaced_and_the_rest_kept() -> None:
    text = (
        "That loss hurts. You should buy ETH now. Sell your alts too!\n\n"
        "What does your plan say? NFA."
    )
    checked = check(text)
    assert checked.removed == 2
    assert checked.text == f"That loss hurts. {REPLACEMENT}\n\nWhat does your plan say? NFA."


def test_the_footer_is_added_once() -> None:
    assert check("Breathe first.").text == f"Breathe first.\n\n{FOOTER}"
    assert check("Breathe first. NFA, DYOR.").text == "Breathe first. NFA, DYOR."
    assert check("").text == FOOTER


@given(st.text(max_size=400))
def test_any_text_comes_back_with_the_footer_and_no_call(text: str) -> None:
    checked = check(text)
    assert "nfa" in checked.text.lower()
    assert checked.removed >= 0
    for sentence in CALLS:
        assert sentence not in checked.text or sentence not in text


@given(
    st.lists(st.sampled_from([*CALLS, *PROCESS, " ", "\n\n", "Breathe."]), max_size=12), st.data()
)
def test_the_streaming_gate_never_lets_a_call_through(
    parts: list[str], data: st.DataObject
) -> None:
    text = " ".join(parts)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=20)))
    gate = Gate()
    shown = "".join(
        gate.feed(text[a:b]) for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)
    )
    assert text.startswith(shown.replace(REPLACEMENT, "")) or REPLACEMENT in shown
    for sentence in CALLS:
        assert sentence.rstrip(".!") not in shown
