"""The curated catalogue the offline generator plans from, loaded and checked once.

A :class:`Topic` is something people ask to learn (SQL, React, Spanish), with the words that
name it (aliases), the topics a beginner needs first (prerequisites) and 6 to 12 ordered
steps, each tagged with the level it serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from keel.roadmaps.generation.draft import Resource
from keel.roadmaps.generation.request import Level

CATALOGUE_PACKAGE: Final = "keel.roadmaps.generation.catalogue"
# Stored as the model of offline drafts: bump it when the catalogue changes meaningfully, so a
# roadmap says which edition it came from.
CATALOGUE_VERSION: Final = "catalogue-2026.1"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _https_only(resources: tuple[Resource, ...]) -> tuple[Resource, ...]:
    # Drafts may link over http (a model's answer); what we ship ourselves is https.
    for resource in resources:
        if not resource.url.startswith("https://"):
            raise ValueError(f"catalogue links must be https: {resource.url}")
    return resources


class TopicStep(_Frozen):
    """One step of a topic: plain-text description, hours for someone new to the topic."""

    title: Annotated[str, Field(min_length=3, max_length=120)]
    level: Level
    hours: Annotated[Decimal, Field(gt=0, le=100, decimal_places=2)]
    description: Annotated[str, Field(min_length=40, max_length=1200)]
    resources: Annotated[
        tuple[Resource, ...], Field(min_length=1, max_length=3), AfterValidator(_https_only)
    ]


class Topic(_Frozen):
    """A subject people ask for, with the words that name it and its ordered steps.

    ``name`` reads after "Learn " ("the Linux command line"); ``label`` prefixes its steps in
    a roadmap combining several topics ("Linux"). ``aliases`` match whole words of a
    normalised goal; ``case_sensitive_aliases`` match the goal as typed ("Go", which is
    also a verb).
    """

    slug: Annotated[str, Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=40)]
    name: Annotated[str, Field(min_length=1, max_length=80)]
    label: Annotated[str, Field(min_length=1, max_length=30)]
    summary: Annotated[str, Field(min_length=20, max_length=400)]
    aliases: Annotated[tuple[str, ...], Field(min_length=1)]
    case_sensitive_aliases: tuple[str, ...] = ()
    prerequisites: tuple[str, ...] = ()
    steps: Annotated[tuple[TopicStep, ...], Field(min_length=6, max_length=12)]

    def __hash__(self) -> int:
        # Topics key the matching caches; pydantic's hash walks every field of every step.
        return hash(self.slug)


@dataclass(frozen=True)
class Catalogue:
    """Topics in a fixed order (by slug), with prerequisites that exist and form no cycle."""

    topics: tuple[Topic, ...]

    def __post_init__(self) -> None:
        slugs = [topic.slug for topic in self.topics]
        if len(set(slugs)) != len(slugs):
            raise ValueError("duplicate topic slugs")
        known = set(slugs)
        for topic in self.topics:
            missing = set(topic.prerequisites) - known
            if missing:
                raise ValueError(f"{topic.slug}: unknown prerequisites {sorted(missing)}")
        for topic in self.topics:
            self.prerequisites_of(topic)  # raises on a cycle

    def get(self, slug: str) -> Topic:
        for topic in self.topics:
            if topic.slug == slug:
                return topic
        raise KeyError(slug)

    def prerequisites_of(self, topic: Topic) -> tuple[Topic, ...]:
        """Every topic ``topic`` needs first, transitively, the deepest first."""
        ordered: list[Topic] = []

        def visit(current: Topic, path: tuple[str, ...]) -> None:
            for slug in current.prerequisites:
                if slug in path:
                    raise ValueError(f"prerequisite cycle: {' -> '.join((*path, slug))}")
                needed = self.get(slug)
                visit(needed, (*path, slug))
                if needed not in ordered:
                    ordered.append(needed)

        visit(topic, (topic.slug,))
        return tuple(ordered)


def parse_topic(text: str) -> Topic:
    """One catalogue file's topic; raises ``pydantic.ValidationError`` when it is wrong."""
    return Topic.model_validate(json.loads(text, parse_float=Decimal))


@cache
def load_catalogue() -> Catalogue:
    """The shipped catalogue (package data), parsed and checked once per process."""
    folder = resources.files(CATALOGUE_PACKAGE)
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".json")),
        key=lambda entry: entry.name,
    )
    topics = []
    for entry in files:
        topic = parse_topic(entry.read_text("utf-8"))
        if f"{topic.slug}.json" != entry.name:
            raise ValueError(f"{entry.name} holds topic {topic.slug!r}")
        topics.append(topic)
    return Catalogue(tuple(topics))
