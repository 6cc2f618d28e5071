"""The breaker and cache benchmark still runs at a tiny size (a few seconds) and prints its
tables, so the script cannot rot between the runs that feed docs/benchmarks.md."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REDIS_URL, need_service

REPO = Path(__file__).resolve().parents[2]


def test_the_breaker_benchmark_runs_and_prints_both_tables() -> None:
    if shutil.which("redis-server") is None:
        need_service("the redis-server binary (the benchmark starts one if none answers)")
    urls = []
    if REDIS_URL:
        urls = ["--primary-url", REDIS_URL]
    secondary = os.environ.get("KEEL_TEST_REDIS_SECONDARY_URL", "")
    if secondary:
        urls += ["--secondary-url", secondary]
    path = [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]
    result = subprocess.run(
        [sys.executable, str(REPO / "bench/breaker_overhead.py"), "--calls", "2000",
         "--rounds", "2", "--reads", "200", *urls],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for row in ("| bare |", "| count window + call timeout |", "| raw redis-py GET |",
                "| FailoverCache, 2 providers |"):  # fmt: skip
        assert row in result.stdout
