"""Find the JSON object in a model's answer, however it was wrapped.

Models asked for bare JSON still answer with ```json fences, a sentence before or after, or a
``<think>`` block first (reasoning models served by llama.cpp or Ollama). This finds the first
JSON object in such text; the schema check comes after.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Final

from keel.core.llm.chat import ANSWER_MAX_CHARS  # longer answers are cut before searching

# Decoding is tried from at most this many "{" positions, so prose full of braces stays cheap.
_MAX_STARTS: Final = 64

_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:json[c5]?)?[ \t]*\r?\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=lambda name: _refuse(name))


class NoJsonObject(ValueError):
    """The answer holds no JSON object; the message says what was found instead."""


def _refuse(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _object_at(text: str, start: int) -> dict[str, Any] | None:
    try:
        value, _end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _first_object(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    tries = 0
    while start != -1 and tries < _MAX_STARTS:
        found = _object_at(text, start)
        if found is not None:
            return found
        tries += 1
        start = text.find("{", start + 1)
    return None


def extract_json_object(answer: str) -> dict[str, Any]:
    """The first JSON object in ``answer``: bare, fenced or surrounded by prose.

    Numbers with a fraction come back as ``Decimal``; ``NaN`` and ``Infinity`` are refused.
    Raises :class:`NoJsonObject` when there is none.
    """
    text = _THINKING.sub("", answer[:ANSWER_MAX_CHARS]).strip()
    if not text:
        raise NoJsonObject("the answer is empty")
    # The answer is the object itself (the common case under structured output).
    if text.startswith("{"):
        found = _object_at(text, 0)
        if found is not None:
            return found
    for fenced in _FENCE.finditer(text):
        found = _first_object(fenced.group(1))
        if found is not None:
            return found
    found = _first_object(text)
    if found is not None:
        return found
    if "{" not in text:
        raise NoJsonObject("the answer holds no JSON object")
    raise NoJsonObject("the answer holds no complete, valid JSON object (cut off or malformed)")
