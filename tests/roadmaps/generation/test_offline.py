"""The offline generator: a roadmap for any goal, from the shipped catalogue, deterministic."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.roadmaps.generation.base import Progress
from keel.roadmaps.generation.draft import RoadmapDraft, RoadmapPlan
from keel.roadmaps.generation.errors import InvalidRequest
from keel.roadmaps.generation.offline import OfflineGenerator, plan_roadmap, subject_of
from keel.roadmaps.generation.request import GenerationRequest, Level
from keel.roadmaps.generation.topics import CATALOGUE_VERSION


class Recorder:
    def __init__(self) -> None:
        self.reports: list[Progress] = []

    async def __call__(self, progress: Progress) -> None:
        self.reports.append(progress)


def plan(goal: str, **kwargs: object) -> RoadmapPlan:
    return plan_roadmap(GenerationRequest(goal=goal, **kwargs))  # type: ignore[arg-type]


async def test_sql_select_basics_generates_a_sql_roadmap() -> None:
    progress = Recorder()
    draft = await OfflineGenerator().generate(GenerationRequest(goal="SQL SELECT basics"), progress)

    assert draft.title == "Learn the basics of SQL"
    assert (draft.provider, draft.model) == ("offline", CATALOGUE_VERSION)
    assert draft.steps[0].title == "Tables, rows and your first SELECT"
    assert len(draft.steps) >= 3
    assert all("postgresql.org" in str(draft.model_dump()) for _ in [0])
    assert progress.reports[0] == Progress(5, "reading your goal")
    assert Progress(15, "choosing topics") in progress.reports
    count = len(draft.steps)
    assert f"writing step {count} of {count}" in [r.stage for r in progress.reports]
    assert progress.reports[-1] == Progress(100, "done")
    percents = [r.percent for r in progress.reports]
    assert percents == sorted(percents)


async def test_generate_and_plan_roadmap_agree() -> None:
    request = GenerationRequest(goal="Docker and Kubernetes", level="intermediate")
    draft = await OfflineGenerator().generate(request, Recorder())
    assert RoadmapPlan.model_validate(draft.model_dump(exclude={"provider", "model"})) == (
        plan_roadmap(request)
    )


def test_a_beginner_building_react_starts_with_its_foundations() -> None:
    roadmap = plan("I want to build web apps with React", level="beginner")
    labels = [step.title.split(":")[0] for step in roadmap.steps]
    assert labels[0] == "HTML & CSS"
    assert labels.index("JavaScript") < labels.index("React")
    assert labels.count("JavaScript") == 3
    assert roadmap.title == "Learn React"

    without_level = plan("I want to build web apps with React")
    assert without_level.steps[0].title == "Components and JSX"


def test_levels_adjust_what_is_kept_and_the_estimates() -> None:
    base = plan("JavaScript")
    intermediate = plan("JavaScript", level="intermediate")
    advanced = plan("JavaScript", level="advanced")

    assert len(intermediate.steps) == len(base.steps)
    assert intermediate.steps[0].hours == base.steps[0].hours / 2
    assert "quick review" in intermediate.steps[0].description
    assert len(advanced.steps) < len(base.steps)
    assert advanced.total_hours < intermediate.total_hours < base.total_hours


def test_hours_per_week_gives_weeks_and_narrows_a_broad_goal() -> None:
    roomy = plan("Python, SQL and Docker", hours_per_week=10)
    tight = plan("Python, SQL and Docker", hours_per_week=2)

    assert {s.title.split(":")[0] for s in roomy.steps} == {"Python", "SQL", "Docker"}
    assert len({s.title.split(":")[0] for s in tight.steps}) == 2
    weeks = math.ceil(roomy.total_hours / 10)
    assert f"roughly {weeks} weeks at 10 hours a week" in roomy.summary


def test_topics_combine_in_the_order_named_with_prerequisites_first() -> None:
    roadmap = plan("Kubernetes, then Docker")
    labels = [step.title.split(":")[0] for step in roadmap.steps]
    assert labels.index("Docker") < labels.index("Kubernetes")
    assert roadmap.title == "Learn Docker and Kubernetes"
    assert len(roadmap.steps) <= 30


def test_an_unknown_goal_gets_a_general_roadmap_in_its_own_words() -> None:
    roadmap = plan("I want to learn pottery!")
    assert roadmap.title == "Learn pottery"
    assert roadmap.steps[0].title == "What pottery is, and what you want from it"
    urls = [r.url for step in roadmap.steps for r in step.resources]
    assert "https://en.wikipedia.org/w/index.php?search=pottery" in urls
    assert "https://openlibrary.org/search?q=pottery" in urls


def test_user_text_in_descriptions_is_escaped() -> None:
    roadmap = plan("<script>alert(1)</script> juggling")
    assert all("<script>" not in step.description for step in roadmap.steps)
    assert "&lt;script&gt;" in roadmap.steps[0].description


def test_a_syllabus_becomes_steps_in_its_own_order_with_catalogue_resources() -> None:
    syllabus = """CS 145 syllabus
Table of Contents
Week 1: The relational model
Week 2: SQL SELECT and filtering
Week 3: Joins and aggregation
Week 3: Joins and aggregation
Week 4: Indexes and query plans
Week 5: Transactions and isolation levels
Grading
"""
    roadmap = plan("Intro to databases", syllabus=syllabus)
    assert [s.title for s in roadmap.steps] == [
        "CS 145 syllabus",
        "The relational model",
        "SQL SELECT and filtering",
        "Joins and aggregation",
        "Indexes and query plans",
        "Transactions and isolation levels",
    ]
    indexes = roadmap.steps[4]
    assert "https://use-the-index-luke.com/" in [r.url for r in indexes.resources]
    assert indexes.hours == Decimal("6.00")
    assert roadmap.summary.startswith("Follows your syllabus in its own order, 6 sections.")


def test_a_syllabus_without_headings_falls_back_to_the_goal() -> None:
    roadmap = plan("Rust", syllabus="Just one paragraph of prose about the course, nothing more.")
    assert roadmap.title == "Learn Rust"


def test_a_syllabus_address_as_goal_names_the_subject() -> None:
    assert subject_of("https://example.edu/courses/intro-to-databases/") == "databases"
    assert subject_of("https://example.edu/") == "example.edu"
    assert plan("https://example.edu/courses/intro-to-databases").title.endswith("SQL")


@pytest.mark.parametrize(
    "goal",
    [
        "Python",
        "Become a data scientist",
        "system design interview prep",
        "AWS certification",
        "web security for PHP developers",
        "Rust and Go",
        "Spanish for travelling in Mexico",
        "music theory",
        "photography",
        "Git",
        "TypeScript",
        "Java Spring Boot",
        "machine learning with python",
        "statistics for A/B tests",
        "algorithms and data structures",
        "DevOps with GitHub Actions",
        "HTML and CSS",
        "linux",
        "learn to knit",
        "数据库入门",
        "🙂",
    ],
)
@pytest.mark.parametrize("level", [None, "beginner", "intermediate", "advanced"])
def test_a_range_of_goals_give_valid_roadmaps(goal: str, level: Level | None) -> None:
    roadmap = plan(goal, level=level)
    assert 3 <= len(roadmap.steps) <= 30
    assert RoadmapPlan.model_validate(roadmap.model_dump()) == roadmap
    assert len({step.title for step in roadmap.steps}) == len(roadmap.steps)


def test_output_is_deterministic() -> None:
    request = GenerationRequest(goal="machine learning with python", level="beginner")
    assert plan_roadmap(request) == plan_roadmap(request)
    assert plan_roadmap(request).model_dump_json() == plan_roadmap(request).model_dump_json()


levels = st.sampled_from([None, "beginner", "intermediate", "advanced"])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    goal=st.text(max_size=1200),
    syllabus=st.none() | st.text(max_size=2000),
    level=levels,
    hours=st.none() | st.integers(min_value=-5, max_value=100),
)
def test_any_input_gives_a_valid_draft_or_a_typed_error(
    goal: str, syllabus: str | None, level: Level | None, hours: int | None
) -> None:
    try:
        request = GenerationRequest(goal=goal, syllabus=syllabus, level=level, hours_per_week=hours)
    except InvalidRequest:
        return
    roadmap = plan_roadmap(request)
    draft = RoadmapDraft.model_validate({**roadmap.model_dump(), "provider": "p", "model": "m"})
    assert 3 <= len(draft.steps) <= 30
    assert plan_roadmap(request) == roadmap


@settings(max_examples=60)
@given(
    words=st.lists(
        st.sampled_from(
            ["sql", "react", "go", "Go", "spanish", "learn", "the", "and", "k8s", "ml", "stats"]
        ),
        max_size=12,
    ),
    level=levels,
)
def test_any_mix_of_topic_words_gives_a_valid_roadmap(
    words: list[str], level: Level | None
) -> None:
    goal = " ".join(words) or "anything"
    roadmap = plan(goal, level=level)
    assert 3 <= len(roadmap.steps) <= 30
