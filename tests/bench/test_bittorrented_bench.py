"""The bittorrented search benchmark still runs, end to end, at a tiny size (a few seconds),
so the scripts cannot rot between the runs that feed docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_generator_makes_the_same_rows_from_any_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import bittorrented_names as names

    corpus = names.Corpus(rows=10_000, seed=3)
    whole = [r.name for r in names.releases(corpus, 6000)]
    tail = [r.name for r in names.releases(corpus, 6000, start=4500)]
    assert tail == whole[4500:]
    assert len(set(whole)) > 5000  # realistic names, not one name repeated
    assert [r.name for r in names.releases(names.Corpus(rows=10_000, seed=3), 50)] == whole[:50]


def test_the_search_benchmark_runs_and_ours_is_exact(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/bench.db"
    result = subprocess.run(
        [sys.executable, str(BENCH / "bittorrented_search.py"), "--engine", "sqlite",
         "--rows", "2000", "--queries", "20", "--database-url", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| ours | 40 |" in result.stdout
    assert "ours: exact on 40/40 runs" in result.stdout
