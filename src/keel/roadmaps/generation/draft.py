"""What a generated roadmap is: the schema every provider's output must pass.

:class:`RoadmapPlan` is what a model is asked to write (its JSON schema goes to the provider,
see :mod:`keel.roadmaps.generation.schema`); :class:`RoadmapDraft` adds who wrote it. Both are
frozen and validated on construction, so a draft in hand always fits the ``roadmaps`` and
``steps`` tables. Descriptions may hold simple HTML; the pages sanitise it (nh3) before they
store or show it.
"""

from __future__ import annotations

import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Final, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

STEPS_MIN: Final = 3
STEPS_MAX: Final = 30
TITLE_MAX: Final = 200
SUMMARY_MAX: Final = 1000
DESCRIPTION_MAX: Final = 4000
HOURS_MAX: Final = Decimal(500)
RESOURCES_MAX: Final = 10
URL_MAX: Final = 2048
PROVIDER_MAX: Final = 40  # the roadmaps.provider column
MODEL_MAX: Final = 120  # the roadmaps.model column

ResourceKind = Literal["docs", "tutorial", "course", "book", "video", "article", "practice", "tool"]
RESOURCE_KINDS: Final[tuple[str, ...]] = get_args(ResourceKind)

_CENT = Decimal("0.01")
# Kept in text: line breaks and tabs. Dropped: other control characters (PostgreSQL refuses NUL
# in text) and lone surrogates (they cannot be encoded as UTF-8).
_KEEP = frozenset("\n\t")


def _printable(value: object) -> object:
    if not isinstance(value, str):
        return value  # the type check after this refuses it
    return "".join(
        ch for ch in value if ch in _KEEP or unicodedata.category(ch) not in ("Cc", "Cs")
    ).strip()


def _one_line(value: object) -> object:
    cleaned = _printable(value)
    return " ".join(cleaned.split()) if isinstance(cleaned, str) else cleaned


def _quantised_hours(value: Decimal) -> Decimal:
    try:
        hours = value.quantize(_CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:  # NaN, infinity, or too many digits
        raise ValueError("hours must be a finite number") from exc
    if not Decimal(0) < hours <= HOURS_MAX:
        raise ValueError(f"hours must be more than 0 and at most {HOURS_MAX}")
    return hours


def _web_url(value: str) -> str:
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("a URL has no spaces or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError as exc:  # e.g. a malformed IPv6 literal or port
        raise ValueError("not a URL") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("only http and https URLs with a host are allowed")
    return value


# Cleaning runs before the length checks, so a title of control characters is empty, not valid.
Title = Annotated[str, BeforeValidator(_one_line), Field(min_length=1, max_length=TITLE_MAX)]
Hours = Annotated[
    Decimal,
    AfterValidator(_quantised_hours),
    # Sent as a plain number: providers' structured output has no decimal type.
    WithJsonSchema({"type": "number", "description": "Estimated hours, more than 0, at most 500"}),
]
WebUrl = Annotated[str, Field(min_length=1, max_length=URL_MAX), AfterValidator(_web_url)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Resource(_Frozen):
    """A link a step recommends."""

    title: Title = Field(description="Name of the resource, at most 200 characters")
    url: WebUrl = Field(description="An http or https URL you are sure exists")
    kind: ResourceKind = Field(description="What the resource is")


class StepDraft(_Frozen):
    """One step of a roadmap, in the order the learner takes it."""

    title: Title = Field(description="What the step covers, at most 200 characters")
    description: Annotated[
        str, BeforeValidator(_printable), Field(min_length=1, max_length=DESCRIPTION_MAX)
    ] = Field(
        description="What to learn and how to practise it: plain text or simple HTML "
        "paragraphs and lists, at most 4000 characters"
    )
    hours: Hours
    resources: tuple[Resource, ...] = Field(
        max_length=RESOURCES_MAX, description="Up to 10 resources for this step"
    )


class RoadmapPlan(_Frozen):
    """The roadmap a provider writes: a title, a summary and 3 to 30 ordered steps."""

    title: Title = Field(description="Title of the roadmap, at most 200 characters")
    summary: Annotated[str, BeforeValidator(_printable), Field(max_length=SUMMARY_MAX)] = Field(
        description="Two or three sentences on what the roadmap covers, at most 1000 characters"
    )
    steps: tuple[StepDraft, ...] = Field(
        min_length=STEPS_MIN, max_length=STEPS_MAX, description="3 to 30 steps, in order"
    )

    @property
    def total_hours(self) -> Decimal:
        return sum((step.hours for step in self.steps), Decimal(0))


class RoadmapDraft(RoadmapPlan):
    """A validated roadmap and what produced it (stored in ``roadmaps.provider``/``model``)."""

    provider: Annotated[str, Field(min_length=1, max_length=PROVIDER_MAX)]
    model: Annotated[str, Field(min_length=1, max_length=MODEL_MAX)]


def draft_from(plan: RoadmapPlan, *, provider: str, model: str) -> RoadmapDraft:
    """``plan`` signed by ``provider``/``model`` (cut to fit their columns)."""
    return RoadmapDraft(
        title=plan.title,
        summary=plan.summary,
        steps=plan.steps,
        provider=provider[:PROVIDER_MAX],
        model=model[:MODEL_MAX],
    )
