"""The personalities ``/mode`` switches between, loaded from ``personas.yaml``.

A persona is data: a name, an emoji, a description, a temperature and a voice. The shared
rules (no buy or sell calls, not financial advice, length) go with every voice, so switching
mid-conversation changes how the coach speaks, never what it will not say.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

PERSONAS_FILE = Path(__file__).with_name("personas.yaml")


class Persona(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = ""
    name: str = Field(min_length=1, max_length=40)
    emoji: str = Field(min_length=1, max_length=8)
    description: str = Field(min_length=1, max_length=120)
    temperature: float = Field(ge=0, le=1.5)  # a sampling setting, not money
    voice: str = Field(min_length=1, max_length=2000)


class Personas(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: str
    rules: str = Field(min_length=1)
    personas: dict[str, Persona] = Field(min_length=1)

    @model_validator(mode="after")
    def _keys(self) -> Self:
        for key, persona in self.personas.items():
            if not key.isidentifier() or not key.islower():
                raise ValueError(f"persona key {key!r}: lower-case letters, digits and _")
            object.__setattr__(persona, "key", key)
        if self.default not in self.personas:
            raise ValueError(f"default persona {self.default!r} is not defined")
        return self

    def get(self, key: str) -> Persona:
        """The persona ``key``, else the default (a persona removed from the file since)."""
        return self.personas.get(key) or self.personas[self.default]

    def find(self, text: str) -> Persona | None:
        """The persona a user named: its key or its name, any case, with or without "the"."""
        wanted = " ".join(text.lower().replace("_", " ").split())
        for persona in self.personas.values():
            names = {persona.key.replace("_", " "), persona.name.lower()}
            names.add(persona.name.lower().removeprefix("the "))
            if wanted in names or wanted.removeprefix("the ") in names:
                return persona
        return None

    def system_prompt(self, key: str) -> str:
        persona = self.get(key)
        return f"{self.rules.strip()}\n\nYour voice ({persona.name}):\n{persona.voice.strip()}"


def load(path: Path = PERSONAS_FILE) -> Personas:
    """Parse and validate a personas file; ValueError says what is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return Personas.model_validate(data)


@cache
def shipped() -> Personas:
    """The personas shipped with coach."""
    return load()
