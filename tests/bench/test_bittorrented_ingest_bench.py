"""The ingest benchmark still imports one generated dump through both paths (and measures the
alternatives) at a tiny size, so it cannot rot between the runs that feed docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_ingest_benchmark_stores_every_line_through_both_paths(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "bittorrented_ingest.py"), "--names", "200",
         "--old-names", "20", "--alternatives", "20", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "**The old path ran on a sample**: the file's first 20 lines" in out
    # The speed table: the user's path twice around the old path, every line stored.
    assert "| now: keel bittorrented import (1) | 200 | 200 |" in out
    assert "| at filing: guessit classifier | 20 | 20 |" in out
    assert "| now: keel bittorrented import (2) | 200 | 200 |" in out
    assert out.count("stored 200 of 200 rows (200 torrents;") == 2
    assert "stored 20 of 20 rows (20 torrents;" in out
    assert "Ratio now / at filing, rows/s:" in out
    # The accuracy table, from the stored rows, on the sample and on the whole file.
    assert (
        "| path | names scored | content type | title | year | season/episode | resolution |" in out
    )
    assert "| at filing: guessit classifier | 20 |" in out
    assert "| now: keel bittorrented import | 20 |" in out
    assert "| now: keel bittorrented import (whole file) | 200 |" in out
    assert out.count(" points, ") == 5
    # The alternatives.
    assert "| guessit + that day's rules (at filing) |" in out
    assert "| guessit in " in out
    assert "| release_name + classify (now) |" in out
    assert "The user's import with classification off" in out
    assert "Shape cache: 200 generated names have" in out
    assert (tmp_path / "names-200.jsonl").read_text().count("\n") == 200
