"""The schema every provider's output must pass, and the wire schema derived from it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from keel.roadmaps.generation.draft import RoadmapDraft, RoadmapPlan, StepDraft, draft_from
from keel.roadmaps.generation.schema import response_format, roadmap_schema


def step(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": "Joins",
        "description": "Combine tables.",
        "hours": "2",
        "resources": [{"title": "Docs", "url": "https://example.org/joins", "kind": "docs"}],
    }
    values.update(overrides)
    return values


def plan(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"title": "SQL", "summary": "", "steps": [step(), step(), step()]}
    values.update(overrides)
    return values


def test_hours_are_quantised_to_cents() -> None:
    assert StepDraft.model_validate(step(hours=Decimal("2.345"))).hours == Decimal("2.35")
    assert StepDraft.model_validate(step(hours=3)).hours == Decimal("3.00")


@pytest.mark.parametrize("hours", ["0", "0.004", "-1", "500.01", "NaN", "Infinity", True])
def test_hours_outside_the_range_are_refused(hours: object) -> None:
    with pytest.raises(ValidationError):
        StepDraft.model_validate(step(hours=hours))


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>",
        "ftp://example.org/x",
        "https://",
        "https://exa mple.org",
        "//example.org/x",
        "https://[::1",
        "https://example.org/" + "a" * 2048,
    ],
)
def test_only_http_and_https_links_with_a_host_pass(url: str) -> None:
    with pytest.raises(ValidationError):
        StepDraft.model_validate(step(resources=[{"title": "x", "url": url, "kind": "docs"}]))


def test_resource_kinds_are_a_fixed_set() -> None:
    with pytest.raises(ValidationError):
        StepDraft.model_validate(
            step(resources=[{"title": "x", "url": "https://example.org", "kind": "podcast"}])
        )


def test_bounds_on_counts_and_lengths() -> None:
    with pytest.raises(ValidationError):
        RoadmapPlan.model_validate(plan(steps=[step(), step()]))
    with pytest.raises(ValidationError):
        RoadmapPlan.model_validate(plan(steps=[step()] * 31))
    with pytest.raises(ValidationError):
        RoadmapPlan.model_validate(plan(title="x" * 201))
    with pytest.raises(ValidationError):
        StepDraft.model_validate(step(description="x" * 4001))
    with pytest.raises(ValidationError):
        StepDraft.model_validate(step(resources=[step()["resources"][0]] * 11))
    with pytest.raises(ValidationError):
        RoadmapPlan.model_validate(plan(extra="field"))


def test_control_characters_are_removed_and_an_empty_title_refused() -> None:
    cleaned = StepDraft.model_validate(step(title=" Joins\x00 and\n  views ", description="a\x07b"))
    assert cleaned.title == "Joins and views"
    assert cleaned.description == "ab"
    with pytest.raises(ValidationError):
        StepDraft.model_validate(step(title="\x00\x01 "))
    with pytest.raises(ValidationError):
        StepDraft.model_validate(step(title="\ud800"))  # a lone surrogate is not text


def test_a_draft_is_frozen_and_cut_to_its_columns() -> None:
    draft = draft_from(RoadmapPlan.model_validate(plan()), provider="p" * 50, model="m" * 200)
    assert (len(draft.provider), len(draft.model)) == (40, 120)
    assert draft.total_hours == Decimal("6.00")
    with pytest.raises(ValidationError):
        draft.title = "changed"  # type: ignore[misc]
    assert RoadmapDraft.model_validate(draft.model_dump()) == draft


def _objects(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for key, value in node.items():
            if key == "properties":
                for sub in value.values():
                    found += _objects(sub)
            else:
                found += _objects(value)
    elif isinstance(node, list):
        for item in node:
            found += _objects(item)
    return found


def test_the_wire_schema_is_strict_mode_shaped() -> None:
    schema = roadmap_schema()
    text = str(schema)
    assert "$ref" not in text
    assert "$defs" not in text
    for unsupported in ("maxLength", "minLength", "maxItems", "minItems", "maximum"):
        assert unsupported not in text
    objects = _objects(schema)
    assert len(objects) == 3  # roadmap, step, resource
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    assert list(schema["properties"]) == ["title", "summary", "steps"]
    step_schema = schema["properties"]["steps"]["items"]
    assert step_schema["properties"]["hours"]["type"] == "number"
    kinds = step_schema["properties"]["resources"]["items"]["properties"]["kind"]["enum"]
    assert "docs" in kinds
    assert "practice" in kinds


def test_response_formats() -> None:
    assert response_format("json_object") == {"type": "json_object"}
    strict = response_format("json_schema")
    assert strict["json_schema"]["strict"] is True
    with pytest.raises(ValueError, match="unknown response format"):
        response_format("yaml")
