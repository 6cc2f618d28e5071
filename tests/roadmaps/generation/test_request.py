"""A generation request is normalised and checked once, on construction."""

from __future__ import annotations

import pytest

from keel.roadmaps.generation.errors import InvalidRequest
from keel.roadmaps.generation.request import GOAL_MAX_CHARS, SYLLABUS_MAX_CHARS, GenerationRequest


def test_goal_whitespace_and_invisible_characters_are_normalised() -> None:
    request = GenerationRequest(goal="  SQL\tSELECT \n basics\u202e\x00 ")
    assert request.goal == "SQL SELECT basics"


def test_syllabus_keeps_its_lines_and_is_cut() -> None:
    assert GenerationRequest(goal="x", syllabus=" a\nb \n").syllabus == "a\nb"
    assert GenerationRequest(goal="x", syllabus=" \n\x00 ").syllabus is None
    long = GenerationRequest(goal="x", syllabus="y" * (SYLLABUS_MAX_CHARS * 3))
    assert long.syllabus is not None
    assert len(long.syllabus) == SYLLABUS_MAX_CHARS


@pytest.mark.parametrize(
    "kwargs",
    [
        {"goal": ""},
        {"goal": " \n\t\x00"},
        {"goal": "x" * (GOAL_MAX_CHARS + 1)},
        {"goal": "x", "level": "expert"},
        {"goal": "x", "hours_per_week": 0},
        {"goal": "x", "hours_per_week": 81},
        {"goal": "x", "hours_per_week": True},
    ],
)
def test_unusable_requests_are_refused_with_a_typed_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest) as raised:
        GenerationRequest(**kwargs)  # type: ignore[arg-type]
    assert raised.value.code == "invalid_generation_request"
    assert raised.value.status == 422
