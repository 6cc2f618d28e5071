"""Prometheus metrics of roadmap generation: whole generations and each model call."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

GENERATIONS = Counter(
    "roadmaps_generations_total",
    "Roadmap generations by generator (offline, openrouter, ...) and result (ok, failed)",
    ["generator", "result"],
)
GENERATION_SECONDS = Histogram(
    "roadmaps_generation_seconds",
    "Time of one roadmap generation, retries and fallbacks included",
    ["generator"],
    buckets=(0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 300.0),
)
MODEL_CALLS = Counter(
    "roadmaps_generation_model_calls_total",
    "Chat completions by model and outcome (ok, invalid, down, refused, rejected, "
    "circuit_open, resting)",
    ["model", "outcome"],
)
MODEL_CALL_SECONDS = Histogram(
    "roadmaps_generation_model_call_seconds",
    "Time of one chat completion, answered or not",
    ["model"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 300.0),
)
OFFLINE_FALLBACKS = Counter(
    "roadmaps_generation_offline_fallbacks_total",
    "Generations the offline catalogue served because the remote provider could not",
)
