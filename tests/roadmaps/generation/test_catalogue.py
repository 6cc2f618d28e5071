"""The shipped catalogue: every topic loads and validates, every link is https."""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError

from keel.roadmaps.generation.matching import match_topics
from keel.roadmaps.generation.topics import (
    CATALOGUE_PACKAGE,
    Catalogue,
    Topic,
    load_catalogue,
    parse_topic,
)

CATALOGUE = load_catalogue()
TOPICS = CATALOGUE.topics


def test_at_least_twenty_topics_and_not_only_tech() -> None:
    slugs = {topic.slug for topic in TOPICS}
    assert len(TOPICS) >= 20
    assert {"sql", "react", "python", "spanish", "music-theory", "photography"} <= slugs


def test_every_file_holds_the_topic_it_is_named_after() -> None:
    files = sorted(
        entry.name
        for entry in resources.files(CATALOGUE_PACKAGE).iterdir()
        if entry.name.endswith(".json")
    )
    assert files == sorted(f"{topic.slug}.json" for topic in TOPICS)


def test_slugs_and_aliases_are_unique() -> None:
    assert len({t.slug for t in TOPICS}) == len(TOPICS)
    for topic in TOPICS:
        assert len(set(topic.aliases)) == len(topic.aliases), topic.slug


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.slug)
def test_a_topic_is_well_formed(topic: Topic) -> None:
    assert 6 <= len(topic.steps) <= 12
    levels = [step.level for step in topic.steps]
    order = {"beginner": 0, "intermediate": 1, "advanced": 2}
    assert levels == sorted(levels, key=order.__getitem__), "steps go from beginner up"
    assert levels[0] == "beginner"
    assert len({step.title for step in topic.steps}) == len(topic.steps)
    for step in topic.steps:
        assert 1 <= len(step.resources) <= 3
        for resource in step.resources:
            parts = urlsplit(resource.url)
            assert parts.scheme == "https", resource.url
            assert parts.hostname
            assert "." in parts.hostname
            assert "example" not in parts.hostname.split("."), resource.url
        assert len({r.url for r in step.resources}) == len(step.resources)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.slug)
def test_a_topic_is_found_by_its_own_name(topic: Topic) -> None:
    matches = match_topics(f"I want to learn {topic.name}", CATALOGUE)
    assert matches
    assert matches[0].topic.slug == topic.slug


def test_prerequisites_exist_and_form_no_cycle() -> None:
    for topic in TOPICS:
        needed = CATALOGUE.prerequisites_of(topic)
        assert topic not in needed
    assert [t.slug for t in CATALOGUE.prerequisites_of(CATALOGUE.get("react"))] == [
        "html-css",
        "javascript",
    ]


def test_a_cycle_or_a_duplicate_is_refused() -> None:
    sql = CATALOGUE.get("sql")
    looped = sql.model_copy(update={"prerequisites": ("sql",)})
    with pytest.raises(ValueError, match="cycle"):
        Catalogue((looped,))
    with pytest.raises(ValueError, match="duplicate"):
        Catalogue((sql, sql))
    with pytest.raises(ValueError, match="unknown prerequisites"):
        Catalogue((sql.model_copy(update={"prerequisites": ("cobol",)}),))


def test_a_topic_file_with_a_plain_http_link_is_refused() -> None:
    text = resources.files(CATALOGUE_PACKAGE).joinpath("git.json").read_text("utf-8")
    assert parse_topic(text).slug == "git"
    with pytest.raises(ValidationError, match="must be https"):
        parse_topic(text.replace("https://git-scm.com", "http://git-scm.com", 1))
