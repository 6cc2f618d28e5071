"""The classification benchmark still runs both readers on both corpora at a tiny size, so it
cannot rot between the runs that feed docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_classification_benchmark_runs_both_readers_on_both_corpora() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "bittorrented_classify.py"), "--names", "40", "--real", "20"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "**generated, 40 names**" in result.stdout
    assert "**guessit's test corpus, 20 real names**" in result.stdout
    assert result.stdout.count("| guessit (before) |") == 2
    assert result.stdout.count("| release_name (now) |") == 2
    assert result.stdout.count("ratio (ours / guessit, names/s)") == 2
