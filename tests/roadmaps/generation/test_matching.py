"""Which catalogue topics a goal names."""

from __future__ import annotations

import pytest

from keel.roadmaps.generation.matching import asks_for_basics, match_topics, normalise
from keel.roadmaps.generation.topics import load_catalogue


def named(goal: str) -> list[str]:
    return [match.topic.slug for match in match_topics(goal, load_catalogue())]


def test_normalise_folds_case_accents_and_punctuation() -> None:
    assert normalise("Español, por favor!") == "espanol por favor"
    assert normalise("C++ and C# / Node.js") == "c++ and c# node js"
    assert normalise("  ") == ""


@pytest.mark.parametrize(
    ("goal", "first"),
    [
        ("SQL SELECT basics", "sql"),
        ("I want to build web apps with React", "react"),
        ("JavaScript for beginners", "javascript"),
        ("Java", "java"),
        ("golang microservices", "go"),
        ("Learn Go", "go"),
        ("k8s", "kubernetes"),
        ("Quiero aprender español", "spanish"),
        ("CI/CD pipelines", "devops"),
        ("data analysis with pandas", "pandas"),
        ("linux command line", "linux-command-line"),
        ("music theory for guitar", "music-theory"),
        ("how to take better photos: photography basics", "photography"),
        ("A/B testing and hypothesis testing", "statistics"),
        ("prepare for coding interviews", "algorithms"),
    ],
)
def test_goals_name_the_topic_people_mean(goal: str, first: str) -> None:
    assert named(goal)[0] == first


def test_aliases_match_whole_words_only() -> None:
    assert "java" not in named("JavaScript")
    assert "go" not in named("I want to go to the gym and do algorithms")
    assert "go" not in named("Go to the shops")
    assert named("mongo") == []


def test_several_topics_are_found_best_first() -> None:
    assert named("Docker and Kubernetes")[:2] == ["docker", "kubernetes"]
    assert set(named("TypeScript with React")) >= {"typescript", "react"}


def test_asking_for_the_basics() -> None:
    assert asks_for_basics("SQL SELECT basics")
    assert asks_for_basics("An introduction to Rust")
    assert not asks_for_basics("Advanced SQL")
