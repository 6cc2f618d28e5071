"""Finding the JSON object in a model's answer, however it was wrapped."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.roadmaps.generation.extraction import NoJsonObject, extract_json_object

OBJECT = {"title": "SQL", "steps": [{"hours": 2.5, "note": "a {brace} in text"}]}
EXPECTED = {"title": "SQL", "steps": [{"hours": Decimal("2.5"), "note": "a {brace} in text"}]}
TEXT = json.dumps(OBJECT)


@pytest.mark.parametrize(
    "answer",
    [
        TEXT,
        f"  {TEXT}\n",
        f"```json\n{TEXT}\n```",
        f"```\n{TEXT}\n```",
        f"Here is your roadmap:\n\n```json\n{TEXT}\n```\n\nGood luck!",
        f"Sure! {TEXT} Let me know if you need more.",
        f"<think>Use {{braces}} carefully.</think>\n{TEXT}",
        f"The shape is {{title, steps}}; here it is: {TEXT}",
    ],
)
def test_the_object_is_found_bare_fenced_or_in_prose(answer: str) -> None:
    assert extract_json_object(answer) == EXPECTED


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty"),
        ("<think>only thinking</think>", "empty"),
        ("I cannot help with that.", "no JSON object"),
        ('{"title": "SQL", "steps": [', "cut off or malformed"),
        ("[1, 2, 3]", "no JSON object"),
        ('{"hours": NaN}', "cut off or malformed"),
    ],
)
def test_no_object_is_a_typed_error_saying_why(answer: str, reason: str) -> None:
    with pytest.raises(NoJsonObject, match=reason):
        extract_json_object(answer)


def test_deep_nesting_does_not_crash() -> None:
    with pytest.raises(NoJsonObject):
        extract_json_object("{" * 100_000)
    nested = extract_json_object('{"a": ' + "[" * 50 + "]" * 50 + "}")
    depth, value = 0, nested["a"]
    while value:
        depth, value = depth + 1, value[0]
    assert depth == 49


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=5)
prose = st.text(
    alphabet=st.characters(exclude_characters="{}`", exclude_categories=["Cs"]), max_size=60
)


@given(obj=json_objects, before=prose, after=prose, fenced=st.booleans())
def test_any_object_survives_any_wrapping(
    obj: dict[str, Any], before: str, after: str, fenced: bool
) -> None:
    text = json.dumps(obj, ensure_ascii=False)
    if fenced:
        text = f"```json\n{text}\n```"
    assert extract_json_object(f"{before}{text}{after}") == obj


@given(st.text(max_size=500))
def test_any_text_gives_an_object_or_a_typed_error(answer: str) -> None:
    try:
        found = extract_json_object(answer)
    except NoJsonObject:
        return
    assert isinstance(found, dict)
