"""The offline generator: roadmaps planned from the curated catalogue, with no network or key.

It is the embedded default (``keel serve`` works with nothing configured) and the fallback
when a remote provider is down. Output is a pure function of the request: the same goal,
syllabus, level and hours per week always give the same roadmap.

* A syllabus with at least three headings becomes the steps, in its own order, each enriched
  with the resources and estimate of the catalogue step it matches.
* Otherwise the topics the goal names (at most three, two when time is short) are combined in
  the order they were named, prerequisites first; a beginner also gets the first steps of the
  topics they need first ("React" for a beginner starts with JavaScript).
* A goal that names no topic gets a general "how to learn X" roadmap built from its words.

Level adjusts what is kept and the estimates: intermediate learners review beginner steps at
half the time, advanced learners skip them and take intermediate ones at three quarters. A goal
asking for the basics ("SQL SELECT basics") keeps the beginner steps only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Final
from urllib.parse import quote_plus, urlsplit

from keel.roadmaps.generation.base import ProgressCallback, ProgressReporter
from keel.roadmaps.generation.draft import (
    STEPS_MAX,
    STEPS_MIN,
    SUMMARY_MAX,
    TITLE_MAX,
    Resource,
    RoadmapDraft,
    RoadmapPlan,
    StepDraft,
    draft_from,
)
from keel.roadmaps.generation.matching import (
    TopicMatch,
    alias_stems,
    asks_for_basics,
    match_topics,
    stems,
)
from keel.roadmaps.generation.outline import OutlineEntry, parse_outline
from keel.roadmaps.generation.request import GenerationRequest, Level
from keel.roadmaps.generation.topics import (
    CATALOGUE_VERSION,
    Catalogue,
    Topic,
    TopicStep,
    load_catalogue,
)

OFFLINE_PROVIDER: Final = "offline"
MAX_TOPICS: Final = 3
# Below this many hours a week, a goal naming many topics is cut to two: finish something.
LOW_TIME_HOURS_PER_WEEK: Final = 4
MAX_TOPICS_LOW_TIME: Final = 2
# A beginner gets this many first steps of each topic they need first.
FOUNDATION_STEPS: Final = 3
# The part of a syllabus searched for topic names (its start names its subject).
SYLLABUS_MATCH_CHARS: Final = 5000
SUBJECT_MAX_CHARS: Final = 80
_DEFAULT_SYLLABUS_HOURS: Final = Decimal(3)

_ONE: Final = Decimal(1)
# Hours factor per (learner level, step level); None drops the step.
_FACTORS: Final[dict[Level | None, dict[Level, Decimal | None]]] = {
    None: {"beginner": _ONE, "intermediate": _ONE, "advanced": _ONE},
    "beginner": {"beginner": _ONE, "intermediate": _ONE, "advanced": _ONE},
    "intermediate": {"beginner": Decimal("0.5"), "intermediate": _ONE, "advanced": _ONE},
    "advanced": {"beginner": None, "intermediate": Decimal("0.75"), "advanced": _ONE},
}
# Steps that are not catalogue steps (syllabus headings, general roadmaps) scale as a whole.
_OVERALL: Final[dict[Level | None, Decimal]] = {
    None: _ONE,
    "beginner": _ONE,
    "intermediate": Decimal("0.75"),
    "advanced": Decimal("0.6"),
}


@dataclass(frozen=True)
class _Spec:
    """A step to write: plain title, HTML description, hours before quantising, resources."""

    title: str
    description: str
    hours: Decimal
    resources: tuple[Resource, ...]


@dataclass(frozen=True)
class _Composition:
    title: str
    intro: str
    specs: tuple[_Spec, ...]


@dataclass(frozen=True)
class _Part:
    topic: Topic
    steps: tuple[tuple[TopicStep, Decimal], ...]  # each step with its hours factor


def _paragraph(text: str) -> str:
    return f"<p>{html.escape(text, quote=False)}</p>"


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return (text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]) + "…"


def _joined(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _is_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in text


_ASKING = re.compile(
    r"""^(?:\s*(?:
        i\s*(?:want|would\s+like|'d\s+like|need|wish|hope|plan)\s+to
      | i'?m\s+(?:trying|hoping|going)\s+to | i\s+am\s+(?:trying|hoping|going)\s+to
      | how\s+(?:do\s+i|can\s+i|to|does\s+one) | please | teach\s+me | help\s+me | show\s+me
      | learn(?:ing)? | stud(?:y|ying) | master | understand | get\s+(?:better|good)\s+at
      | become\s+an? | start(?:ing)?\s+(?:with|on) | about | the\s+basics\s+of | basics\s+of
      | intro(?:duction)?\s+to | an\s+introduction\s+to
    )\b[\s,:]*)+""",
    re.IGNORECASE | re.VERBOSE,
)


# Words of a syllabus address that name the site's structure, not the subject.
_URL_NOISE: Final = frozenset(
    {"course", "courses", "syllabus", "index", "en", "www", "html", "htm", "pdf", "php", "page"}
    | {"pages", "docs", "learn", "catalog", "catalogue", "class", "classes", "main", "default"}
)


def _url_words(url: str) -> str:
    """The subject words of a syllabus address: its last meaningful path segment."""
    parts = urlsplit(url)
    for segment in reversed(parts.path.split("/")):
        words = [
            word
            for word in re.split(r"[_\-.+%]+", segment)
            if word and not word.isdigit() and word.lower() not in _URL_NOISE
        ]
        if words:
            return " ".join(words)
    return parts.hostname or url


def subject_of(goal: str) -> str:
    """What a goal is about, in its own words ("I want to learn pottery!" -> "pottery")."""
    text = _url_words(goal) if _is_url(goal) else goal
    subject = _ASKING.sub("", text).strip(" \t.!?…,;:")
    return _cut(subject or text, SUBJECT_MAX_CHARS)


def _hours(value: Decimal) -> Decimal:
    return max(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), Decimal("0.25"))


# Topics -------------------------------------------------------------------------------------


def _in_prerequisite_order(chosen: list[Topic], catalogue: Catalogue) -> list[Topic]:
    """``chosen`` in the order named, except that a chosen topic another needs comes first."""
    ordered: list[Topic] = []
    for topic in chosen:
        for needed in catalogue.prerequisites_of(topic):
            if needed in chosen and needed not in ordered:
                ordered.append(needed)
        if topic not in ordered:
            ordered.append(topic)
    return ordered


def _topic_steps(
    topic: Topic, level: Level | None, basics: bool
) -> tuple[tuple[TopicStep, Decimal], ...]:
    factors = _FACTORS[level]
    kept = [(step, factors[step.level]) for step in topic.steps]
    steps = [(step, factor) for step, factor in kept if factor is not None]
    if basics and level != "advanced":
        beginner = [(step, factor) for step, factor in steps if step.level == "beginner"]
        steps = beginner if len(beginner) >= STEPS_MIN else steps[:STEPS_MIN]
    if len(steps) < STEPS_MIN:  # an advanced learner still gets a plan: the last steps
        steps = [(step, factors[step.level] or _ONE) for step in topic.steps[-STEPS_MIN:]]
    return tuple(steps)


def _allocate(parts: list[_Part], budget: int) -> list[_Part]:
    """Cut parts to ``budget`` steps in all, fairly: small parts keep everything, large ones
    share what is left, each keeping its first steps."""
    quota: dict[int, int] = {}
    remaining = budget
    by_size = sorted(range(len(parts)), key=lambda i: (len(parts[i].steps), i))
    for left, index in enumerate(by_size):
        share = remaining // (len(parts) - left)
        quota[index] = min(len(parts[index].steps), share)
        remaining -= quota[index]
    return [_Part(part.topic, part.steps[: quota[i]]) for i, part in enumerate(parts)]


def _from_topics(
    request: GenerationRequest, catalogue: Catalogue, matches: list[TopicMatch]
) -> _Composition:
    low_time = request.hours_per_week is not None and (
        request.hours_per_week < LOW_TIME_HOURS_PER_WEEK
    )
    limit = MAX_TOPICS_LOW_TIME if low_time else MAX_TOPICS
    named = sorted(matches[:limit], key=lambda match: (match.position, match.topic.slug))
    chosen = _in_prerequisite_order([match.topic for match in named], catalogue)
    basics = asks_for_basics(request.goal)

    foundations: list[Topic] = []
    if request.level == "beginner":
        for topic in chosen:
            for needed in catalogue.prerequisites_of(topic):
                if needed not in chosen and needed not in foundations:
                    foundations.append(needed)
    parts = [
        _Part(
            topic,
            tuple((step, _ONE) for step in topic.steps if step.level == "beginner")[
                :FOUNDATION_STEPS
            ],
        )
        for topic in foundations
    ]
    parts += [_Part(topic, _topic_steps(topic, request.level, basics)) for topic in chosen]
    parts = _allocate(parts, STEPS_MAX)

    labelled = len(parts) > 1
    specs: list[_Spec] = []
    for part in parts:
        for step, factor in part.steps:
            description = step.description
            if factor < _ONE and step.level == "beginner":
                description = f"A quick review if you know it already. {description}"
            title = f"{part.topic.label}: {step.title}" if labelled else step.title
            specs.append(
                _Spec(
                    title=_cut(title, TITLE_MAX),
                    description=_paragraph(description),
                    hours=_hours(step.hours * factor),
                    resources=step.resources,
                )
            )

    names = _joined([topic.name for topic in chosen])
    title = f"Learn the basics of {names}" if basics else f"Learn {names}"
    intro = [chosen[0].summary]
    if len(chosen) > 1:
        intro.append(f"It goes on to {_joined([t.name for t in chosen[1:]])}.")
    if foundations:
        intro.append(
            f"As a beginner you start with the foundations of "
            f"{_joined([t.name for t in foundations])}."
        )
    elif request.level == "intermediate":
        intro.append("Steps you may know already are short reviews.")
    elif request.level == "advanced":
        intro.append("Beginner material is left out.")
    return _Composition(_cut(title, TITLE_MAX), " ".join(intro), tuple(specs))


# Syllabus -----------------------------------------------------------------------------------


@cache
def _title_stems(topic: Topic) -> tuple[frozenset[str], ...]:
    return tuple(stems(step.title) for step in topic.steps)


def _best_step(heading: str, catalogue: Catalogue, preferred: Sequence[Topic]) -> TopicStep | None:
    """The catalogue step a syllabus heading is about, if one clearly is: the most words in
    common (a word naming the step's topic counts), steps of the topics the syllabus is
    about first."""
    words = stems(heading)
    if not words:
        return None
    best: tuple[int, int, int, int] | None = None
    found: TopicStep | None = None
    for topic_rank, topic in enumerate(catalogue.topics):
        is_preferred = topic in preferred
        named = words & alias_stems(topic)
        for step_rank, (step, title_stems) in enumerate(
            zip(topic.steps, _title_stems(topic), strict=True)
        ):
            shared = words & title_stems
            if not shared:
                continue  # naming the topic alone does not pick one of its steps
            overlap = len(shared | named)
            if not (overlap >= 2 or (is_preferred and overlap * 3 >= len(words))):
                continue
            rank = (int(is_preferred), overlap, -topic_rank, -step_rank)
            if best is None or rank > best:
                best, found = rank, step
    return found


def _from_syllabus(
    request: GenerationRequest, catalogue: Catalogue, outline: tuple[OutlineEntry, ...]
) -> _Composition:
    syllabus = request.syllabus or ""
    matches = match_topics(f"{request.goal}\n{syllabus[:SYLLABUS_MATCH_CHARS]}", catalogue)
    preferred = [match.topic for match in matches[:MAX_TOPICS]]
    overall = _OVERALL[request.level]
    specs: list[_Spec] = []
    enriched = 0
    for entry in outline:
        step = _best_step(entry.title, catalogue, preferred)
        named = match_topics(entry.title, catalogue)
        resources: tuple[Resource, ...] = ()
        hours = _DEFAULT_SYLLABUS_HOURS
        if step is not None:
            resources, hours = step.resources, step.hours
        elif named:
            resources = named[0].topic.steps[0].resources
        enriched += bool(resources)
        if entry.notes:
            description = entry.notes
        elif step is not None:
            description = step.description
        else:
            description = (
                f"Work through “{entry.title}” as your syllabus presents it, then practise it "
                "on an example of your own before moving on."
            )
        specs.append(
            _Spec(
                title=_cut(entry.title, TITLE_MAX),
                description=_paragraph(description),
                hours=_hours(hours * overall),
                resources=resources,
            )
        )
    if _is_url(request.goal):
        subject = _joined([t.name for t in preferred]) if preferred else outline[0].title
    else:
        subject = subject_of(request.goal)
    intro = f"Follows your syllabus in its own order, {len(specs)} sections."
    if enriched:
        intro += f" {enriched} of them come with resources from Keel's catalogue."
    return _Composition(_cut(f"Learn {subject}", TITLE_MAX), intro, tuple(specs))


# Anything else ------------------------------------------------------------------------------

_GENERAL_STEPS: Final = (
    (
        "What {s} is, and what you want from it",
        "Write down in two or three sentences what being good at {s} would let you do, and "
        "find a short overview that names its main parts. This is the map you will come back to.",
        Decimal(2),
        "article",
    ),
    (
        "The vocabulary of {s}",
        "Collect the twenty or so terms that keep coming up when people talk about {s}, and "
        "explain each in your own words. Knowing the words makes every later resource easier.",
        Decimal(3),
        "article",
    ),
    (
        "The fundamentals of {s}",
        "Pick one well-regarded introductory book or course on {s} and work through its first "
        "part. Prefer one complete source to many fragments.",
        Decimal(10),
        "book",
    ),
    (
        "Deliberate practice",
        "Set yourself small, specific exercises on what you just learnt about {s}, a little "
        "every day, and keep the ones you got wrong to retry later.",
        Decimal(8),
        "course",
    ),
    (
        "A first small project in {s}",
        "Make something small but complete with {s}: finishing teaches what exercises do not. "
        "Keep its scope to a weekend.",
        Decimal(10),
        "course",
    ),
    (
        "Feedback from people who know {s}",
        "Show your project to a community, a class or a mentor who knows {s}, and ask what "
        "they would do differently. Note the gaps they point at.",
        Decimal(3),
        "article",
    ),
    (
        "Going deeper into {s}",
        "Return to your map and study the parts of {s} your project and the feedback showed "
        "you need most, with a more advanced source.",
        Decimal(12),
        "book",
    ),
    (
        "Teach what you learnt",
        "Explain {s} to someone else or write it up: teaching is the quickest way to find what "
        "you only thought you understood.",
        Decimal(4),
        "course",
    ),
)


def _general_resource(kind: str, subject: str) -> Resource:
    query = quote_plus(subject)
    if kind == "article":
        return Resource(
            title=_cut(f"Wikipedia search: {subject}", TITLE_MAX),
            url=f"https://en.wikipedia.org/w/index.php?search={query}",
            kind="article",
        )
    if kind == "book":
        return Resource(
            title=_cut(f"Open Library search: {subject}", TITLE_MAX),
            url=f"https://openlibrary.org/search?q={query}",
            kind="book",
        )
    return Resource(
        title="Learning How to Learn (Coursera, free to audit)",
        url="https://www.coursera.org/learn/learning-how-to-learn",
        kind="course",
    )


def _general(request: GenerationRequest) -> _Composition:
    subject = subject_of(request.goal)
    overall = _OVERALL[request.level]
    escaped = html.escape(subject, quote=False)
    specs = tuple(
        _Spec(
            title=_cut(title.format(s=subject), TITLE_MAX),
            description=f"<p>{description.format(s=escaped)}</p>",
            hours=_hours(hours * overall),
            resources=(_general_resource(kind, subject),),
        )
        for title, description, hours, kind in _GENERAL_STEPS
    )
    intro = (
        f"Keel's catalogue has no roadmap for {subject} yet, so this is a general plan for "
        "learning it: build a map, practise, make something, get feedback, go deeper."
    )
    return _Composition(_cut(f"Learn {subject}", TITLE_MAX), intro, specs)


# Assembly -----------------------------------------------------------------------------------


def _compose(request: GenerationRequest, catalogue: Catalogue) -> _Composition:
    if request.syllabus:
        outline = parse_outline(request.syllabus)
        if len(outline) >= STEPS_MIN:
            return _from_syllabus(request, catalogue, outline)
    about = subject_of(request.goal) if _is_url(request.goal) else request.goal
    matches = match_topics(about, catalogue)
    if matches:
        return _from_topics(request, catalogue, matches)
    return _general(request)


def _step(spec: _Spec) -> StepDraft:
    return StepDraft(
        title=spec.title, description=spec.description, hours=spec.hours, resources=spec.resources
    )


def _summary(intro: str, steps: Sequence[StepDraft], hours_per_week: int | None) -> str:
    total = sum((step.hours for step in steps), Decimal(0))
    whole = max(total.quantize(_ONE, rounding=ROUND_HALF_UP), _ONE)
    figures = f"{len(steps)} steps, about {whole} hours in all"
    if hours_per_week:
        weeks = max(int((total / hours_per_week).to_integral_value(rounding="ROUND_CEILING")), 1)
        figures += f": roughly {weeks} week{'s' if weeks != 1 else ''} at {hours_per_week} "
        figures += f"hour{'s' if hours_per_week != 1 else ''} a week"
    return _cut(f"{intro} {figures}.", SUMMARY_MAX)


def plan_roadmap(request: GenerationRequest, catalogue: Catalogue | None = None) -> RoadmapPlan:
    """The offline roadmap for ``request`` (deterministic; never raises for a valid request)."""
    composition = _compose(request, catalogue or load_catalogue())
    steps = tuple(_step(spec) for spec in composition.specs)
    return RoadmapPlan(
        title=composition.title,
        summary=_summary(composition.intro, steps, request.hours_per_week),
        steps=steps,
    )


class OfflineGenerator:
    """A :class:`~keel.roadmaps.generation.base.Generator` over the shipped catalogue."""

    name = OFFLINE_PROVIDER

    def __init__(self, catalogue: Catalogue | None = None) -> None:
        self._catalogue = catalogue

    async def generate(
        self, request: GenerationRequest, progress: ProgressCallback
    ) -> RoadmapDraft:
        """The catalogue's roadmap for ``request``, reporting each stage; never unavailable."""
        reporter = ProgressReporter(progress)
        await reporter.report(5, "reading your goal")
        catalogue = self._catalogue or load_catalogue()
        await reporter.report(15, "choosing topics")
        composition = _compose(request, catalogue)
        steps: list[StepDraft] = []
        count = len(composition.specs)
        for index, spec in enumerate(composition.specs):
            await reporter.report(20 + 70 * index // count, f"writing step {index + 1} of {count}")
            steps.append(_step(spec))
        await reporter.report(95, "checking the plan")
        plan = RoadmapPlan(
            title=composition.title,
            summary=_summary(composition.intro, steps, request.hours_per_week),
            steps=tuple(steps),
        )
        draft = draft_from(plan, provider=OFFLINE_PROVIDER, model=CATALOGUE_VERSION)
        await reporter.report(100, "done")
        return draft
