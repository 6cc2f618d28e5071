"""The JSON schema sent to providers as structured output, derived from :class:`RoadmapPlan`.

Shaped for OpenAI-style ``strict`` mode, which llama.cpp, Ollama and OpenRouter's providers
also accept: references inlined (not every server resolves ``$ref``), every object closed and
all its properties required, and only keywords every server understands. Length, count and
range limits are dropped from the wire schema (strict mode refuses several of them) and stated
in the descriptions instead; :class:`RoadmapPlan` enforces them on the answer.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Final

from keel.roadmaps.generation.draft import RoadmapPlan

SCHEMA_NAME: Final = "learning_roadmap"

# Keywords kept in the wire schema; everything else (titles, lengths, bounds) is dropped.
_PORTABLE: Final = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "description"}
)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            return _inline(defs[ref.rsplit("/", 1)[-1]], defs)
        shaped: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties":
                shaped[key] = {name: _inline(sub, defs) for name, sub in value.items()}
            elif key in _PORTABLE:
                shaped[key] = _inline(value, defs)
        if shaped.get("type") == "object":
            shaped["additionalProperties"] = False
            shaped["required"] = list(shaped.get("properties", {}))
        return shaped
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


@cache
def _schema_text() -> str:
    full = RoadmapPlan.model_json_schema()
    # Key order is kept: grammar-constrained servers write properties in schema order.
    return json.dumps(_inline(full, full.get("$defs", {})))


def roadmap_schema() -> dict[str, Any]:
    """The wire schema (a fresh copy each call: callers may embed it in a request body)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


def response_format(mode: str) -> dict[str, Any]:
    """The ``response_format`` of a chat request: ``json_schema`` (strict) or ``json_object``.

    ``json_object`` is for servers without schema support: they promise only some JSON
    object, so the prompt carries the schema as text (see ``prompt.system_message``).
    """
    if mode == "json_object":
        return {"type": "json_object"}
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": roadmap_schema()},
        }
    raise ValueError(f"unknown response format {mode!r}; expected json_schema or json_object")
