"""The coach never tells anyone to buy or sell: a last check on every answer.

The system prompt forbids trade calls, but a model can still write one (a user can talk it
into it). Before an answer is sent, each sentence that tells the reader to buy, sell, hold,
long or short something, calls a "strong buy", or names a price target is replaced by a
sentence saying the coach does not make trade calls. Warnings against impulses ("don't sell
in a panic") are process, not calls, and stay. Every answer ends with the not-financial-advice
line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

REPLACEMENT: Final = "(I don't make buy or sell calls; that decision is yours.)"
FOOTER: Final = "NFA · DYOR"

_TRADE = (
    r"(?:buy(?:ing)?|sell(?:ing)?|short(?:ing)?|long(?:ing)?|hold(?:ing)?|dump(?:ing)?|"
    r"ape\s+into|aping\s+into|go(?:ing)?\s+(?:long|short|all[- ]in)|take\s+profits?|"
    r"load(?:ing)?\s+up(?:\s+on)?|accumulat(?:e|ing))"
)
_ADVISING = (
    r"(?:you\s+(?:should|must|need\s+to|have\s+to|ought\s+to|could|might\s+want\s+to)|"
    r"i\s*(?:'d|would)?\s*(?:strongly\s+)?(?:recommend|suggest|advise)(?:\s+that)?(?:\s+you)?(?:\s+to)?|"
    r"my\s+(?:advice|recommendation|call)\s+(?:is|would\s+be)\s+to|"
    r"go\s+ahead\s+and|it'?s\s+(?:a\s+good|the\s+right|the\s+perfect)\s+time\s+to|"
    r"now\s+is\s+(?:a\s+good|the|the\s+perfect)\s+time\s+to|time\s+to|definitely|"
    r"consider|think\s+about|don'?t\s+hesitate\s+to)"
)
_PATTERNS: Final = (
    re.compile(rf"\b{_ADVISING}\s+(?:\w+\s+)?{_TRADE}\b", re.IGNORECASE),
    # An imperative at the start of a sentence: "Buy the dip.", "Sell now", "Long ETH here".
    re.compile(rf"^\W*{_TRADE}\b(?!\s+(?:is|are|was|were|means|feels)\b)", re.IGNORECASE),
    re.compile(r"\b(?:strong|clear|obvious)\s+(?:buy|sell)\b", re.IGNORECASE),
    re.compile(r"\b(?:price\s+)?targets?\s*(?:of|is|at|around|:)\s*[$€£]?\s*\d", re.IGNORECASE),
)
# "Don't sell in a panic", "never buy on impulse", "avoid shorting out of anger": warnings.
_NEGATED = re.compile(
    rf"\b(?:don'?t|do\s+not|never|avoid|stop|refrain\s+from|not\s+to)\s+(?:\w+\s+)?{_TRADE}\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Checked:
    text: str
    removed: int  # sentences replaced


def is_trade_call(sentence: str) -> bool:
    # Warnings are cut out first, so a call beside a warning is still a call.
    rest = _NEGATED.sub(" … ", sentence)
    return any(p.search(rest) for p in _PATTERNS)


def check(text: str) -> Checked:
    """``text`` with trade calls replaced and the NFA footer present."""
    out: list[str] = []
    removed = 0
    position = 0
    previous_was_call = False
    for separator in [*_SENTENCE.finditer(text), None]:
        end = separator.start() if separator else len(text)
        sentence = text[position:end]
        gap = separator.group() if separator else ""
        if sentence.strip() and is_trade_call(sentence):
            removed += 1
            if previous_was_call and "\n" not in out[-1]:
                out[-1] = gap  # one notice for a run of calls in a paragraph
            else:
                out += [REPLACEMENT, gap]
            previous_was_call = True
        else:
            out += [sentence, gap]
            previous_was_call = previous_was_call and not sentence.strip()
        if separator:
            position = separator.end()
    result = re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()
    if "nfa" not in result.lower():
        result = f"{result}\n\n{FOOTER}" if result else FOOTER
    return Checked(result, removed)


class Gate:
    """The same check while an answer streams: text is let through a sentence at a time, each
    checked when it ends, so a trade call is never shown, not even for a moment."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, piece: str) -> str:
        """What may be shown now (whole sentences, checked), possibly empty."""
        self._pending += piece
        shown: list[str] = []
        position = 0
        for separator in _SENTENCE.finditer(self._pending):
            sentence = self._pending[position : separator.start()]
            checked = REPLACEMENT if sentence.strip() and is_trade_call(sentence) else sentence
            shown.append(checked + separator.group())
            position = separator.end()
        self._pending = self._pending[position:]
        return "".join(shown)

    def reset(self) -> None:
        self._pending = ""
