"""What the caller asks for: a goal, an optional syllabus, a level and the time available."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final, Literal, get_args

from keel.roadmaps.generation.errors import InvalidRequest

Level = Literal["beginner", "intermediate", "advanced"]
LEVELS: Final[tuple[str, ...]] = get_args(Level)

GOAL_MAX_CHARS: Final = 1000
# A syllabus longer than this is cut: the pages of a long PDF add repetition, not order.
SYLLABUS_MAX_CHARS: Final = 50_000
HOURS_PER_WEEK_MAX: Final = 80


# Bidirectional overrides and isolates (they make text read differently from how it is
# stored) and the byte-order mark. Other format characters (ZWJ, ZWNJ) are part of words.
_INVISIBLE: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")


def _without_controls(text: str) -> str:
    # NFC so "é" typed two ways matches the same catalogue alias; control characters and lone
    # surrogates go (neither belongs in a prompt or a database row).
    text = unicodedata.normalize("NFC", text)
    return "".join(
        ch
        for ch in text
        if ch in "\n\t" or (ch not in _INVISIBLE and unicodedata.category(ch) not in ("Cc", "Cs"))
    )


@dataclass(frozen=True)
class GenerationRequest:
    """A request to generate one roadmap; normalised and checked on construction.

    ``goal`` is free text (whitespace collapsed, 1 to 1000 characters); ``syllabus`` is text
    extracted from a syllabus page or PDF (kept line by line, cut at 50 000 characters, None
    when empty). Raises :class:`InvalidRequest` for an empty or too long goal, an unknown
    level, or ``hours_per_week`` outside 1..80.
    """

    goal: str
    syllabus: str | None = None
    level: Level | None = None
    hours_per_week: int | None = None

    def __post_init__(self) -> None:
        goal = " ".join(_without_controls(self.goal).split())
        if not goal:
            raise InvalidRequest("the goal is empty")
        if len(goal) > GOAL_MAX_CHARS:
            raise InvalidRequest(f"the goal is longer than {GOAL_MAX_CHARS} characters")
        syllabus = None
        if self.syllabus is not None:
            syllabus = _without_controls(self.syllabus[: SYLLABUS_MAX_CHARS * 2])
            syllabus = syllabus.strip()[:SYLLABUS_MAX_CHARS] or None
        if self.level is not None and self.level not in LEVELS:
            raise InvalidRequest(f"level must be one of {', '.join(LEVELS)}")
        hours = self.hours_per_week
        if hours is not None and (
            isinstance(hours, bool)
            or not isinstance(hours, int)
            or not 1 <= hours <= HOURS_PER_WEEK_MAX
        ):
            raise InvalidRequest(
                f"hours_per_week must be a whole number from 1 to {HOURS_PER_WEEK_MAX}"
            )
        object.__setattr__(self, "goal", goal)
        object.__setattr__(self, "syllabus", syllabus)
