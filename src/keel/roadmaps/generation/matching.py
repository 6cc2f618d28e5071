"""Which catalogue topics a goal names: normalised words, aliases matched on word boundaries.

"SQL SELECT basics" names SQL; "build web apps with React" names React; "JavaScript" does not
name Java, because an alias must match whole words of the normalised goal.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Final

from keel.roadmaps.generation.topics import Catalogue, Topic

# Words that carry no subject: left out when comparing a syllabus line with a catalogue step.
STOPWORDS: Final = frozenset(
    {
        "a",
        "about",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "basic",
        "basics",
        "by",
        "can",
        "course",
        "for",
        "from",
        "how",
        "i",
        "in",
        "into",
        "intro",
        "introduction",
        "is",
        "it",
        "its",
        "learn",
        "learning",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "part",
        "the",
        "this",
        "to",
        "understanding",
        "unit",
        "use",
        "using",
        "want",
        "week",
        "what",
        "with",
        "you",
        "your",
    }
)
# Words that ask for the basics of a subject, not all of it.
BASICS_WORDS: Final = frozenset(
    {"basics", "basic", "fundamentals", "introduction", "intro", "beginners", "essentials"}
)
_NOT_WORD = re.compile(r"[^0-9a-z+#]+")


def normalise(text: str) -> str:
    """Lower-case ASCII-folded words separated by single spaces ("Español!" -> "espanol").

    ``+`` and ``#`` stay part of words, so "C++" and "C#" remain themselves.
    """
    folded = unicodedata.normalize("NFKD", text.casefold())
    ascii_text = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.split(ascii_text)).strip()


def content_words(text: str) -> tuple[str, ...]:
    """The normalised words of ``text`` that are not stopwords, in order, each once."""
    seen: dict[str, None] = {}
    for word in normalise(text).split():
        if word not in STOPWORDS:
            seen.setdefault(word, None)
    return tuple(seen)


# Crude English suffixes, longest first: enough for "joins" to meet "joining" and
# "aggregation" to meet "aggregates" when a syllabus heading is compared with a step title.
_SUFFIXES: Final = ("ations", "ation", "ates", "ate", "ings", "ing", "ions", "ion", "ies", "es")
_SUFFIXES_SHORT: Final = ("s", "ed")
_STEM_MIN: Final = 4


def _stem(word: str) -> str:
    for suffix in (*_SUFFIXES, *_SUFFIXES_SHORT):
        if word.endswith(suffix) and len(word) - len(suffix) >= _STEM_MIN:
            return word[: -len(suffix)]
    return word


def stems(text: str) -> frozenset[str]:
    """The stems of ``text``'s content words, for comparing headings with step titles."""
    return frozenset(_stem(word) for word in content_words(text))


@dataclass(frozen=True)
class TopicMatch:
    """A topic a text names: ``score`` sums the words of its matched aliases; ``position``
    is where in the normalised text it was first named."""

    topic: Topic
    score: int
    position: int


@cache
def _aliases(topic: Topic) -> tuple[str, ...]:
    return tuple(sorted({normalise(alias) for alias in topic.aliases} - {""}))


@cache
def alias_stems(topic: Topic) -> frozenset[str]:
    """The stems of a topic's one-word aliases ("sql", "postgres"): a heading naming one
    is about that topic's steps."""
    return frozenset(_stem(alias) for alias in _aliases(topic) if " " not in alias)


@cache
def _case_sensitive(topic: Topic) -> re.Pattern[str] | None:
    if not topic.case_sensitive_aliases:
        return None
    words = "|".join(re.escape(alias) for alias in sorted(topic.case_sensitive_aliases))
    # "Go to the gym": a capitalised verb followed by "to" is not a name.
    return re.compile(rf"(?<![0-9A-Za-z])(?:{words})(?![0-9A-Za-z+#])(?!\s+to\b)")


def match_topics(text: str, catalogue: Catalogue) -> list[TopicMatch]:
    """Every topic ``text`` names, the best first (score, then first mention, then slug)."""
    padded = f" {normalise(text)} "
    found: list[TopicMatch] = []
    for topic in catalogue.topics:
        score = 0
        position = len(padded)
        for alias in _aliases(topic):
            at = padded.find(f" {alias} ")
            if at != -1:
                score += len(alias.split())
                position = min(position, at)
        pattern = _case_sensitive(topic)
        hit = pattern.search(text) if pattern is not None else None
        if hit is not None:
            score += 1
            # An approximate position: the raw text is not the normalised one.
            position = min(position, len(normalise(text[: hit.start()])))
        if score:
            found.append(TopicMatch(topic, score, position))
    found.sort(key=lambda match: (-match.score, match.position, match.topic.slug))
    return found


def asks_for_basics(text: str) -> bool:
    """Whether the goal asks only for the basics ("SQL SELECT basics")."""
    return any(word in BASICS_WORDS for word in normalise(text).split())
