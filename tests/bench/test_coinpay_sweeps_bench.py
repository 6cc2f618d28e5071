"""The sweep throughput benchmark still runs, end to end on real nodes at a tiny size (a few
seconds), and its own checks pass, so the script cannot rot between the runs that feed
docs/benchmarks.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.chains_nodes import anvil_binary, litecoind_binary, need_node

REPO = Path(__file__).resolve().parents[2]


def test_the_sweep_benchmark_runs_on_both_nodes_and_its_checks_pass() -> None:
    if anvil_binary() is None:
        need_node("anvil (npm @foundry-rs/anvil; .ci/run installs it into .cache/npm)")
    if litecoind_binary() is None:
        need_node("litecoind (apt-get install litecoind)")
    path = [str(REPO / "src"), str(REPO / "bench"), str(REPO), os.environ.get("PYTHONPATH", "")]
    result = subprocess.run(
        [sys.executable, str(REPO / "bench/coinpay_sweeps.py"), "--payments", "4",
         "--merchants", "2"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Checks passed" in result.stdout
    assert result.stdout.count("| ETH |") == 4  # two contenders, two tables
    assert result.stdout.count("| LTC |") == 4
    assert "ETH ratio ours/one-at-a-time" in result.stdout
    assert "LTC ratio ours/one-at-a-time" in result.stdout
