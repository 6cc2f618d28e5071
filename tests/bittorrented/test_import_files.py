"""`keel bittorrented import` on a real dump: many batches, bad lines anywhere, from disk and
from stdin, and a run killed halfway that a re-run completes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.cli import app

LINES = 20_000  # four import batches
BAD_AT = {
    1: b"{not json",  # the first line
    7_777: b'{"infoHash": "12", "name": "short hash"}',
    10_001: b"\xff\xfe not utf-8",
    13_000: b'{"infoHash": "' + b"ab" * 20 + b'", "name": "' + b"x" * (10 << 20) + b'"}',
    LINES + 1: b'{"infoHash": "' + b"cd" * 20 + b'", "name": "truncated',  # cut-off last line
}


def _good(n: int) -> bytes:
    record = {
        "infoHash": f"{n:040x}",
        "name": f"Show.{n % 97}.S0{n % 9 + 1}E{n % 20 + 1:02d}.1080p.WEB.h264-GRP{n}",
        "size": 1_000_000 + n,
        "publishedAt": "2024-05-06T07:08:09Z",
        "files": [{"path": f"show/{n}.mkv", "size": 1_000_000 + n}],
    }
    return json.dumps(record).encode()


def _dump(path: Path) -> int:
    """Write the dump; returns how many good lines it holds."""
    good = 0
    with path.open("wb") as out:
        for number in range(1, LINES + 2):
            if number in BAD_AT:
                out.write(BAD_AT[number] + (b"" if number == LINES + 1 else b"\n"))
            else:
                out.write(_good(number) + b"\n")
                good += 1
    return good


def _stored(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "bittorrented.db") as db:
        return int(db.execute("SELECT count(*) FROM torrent_search").fetchone()[0])


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("dump") / "dump.jsonl"
    return path, _dump(path)


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_every_good_line_is_stored_and_every_bad_one_named(
    dump: tuple[Path, int], tmp_path: Path, via: str
) -> None:
    path, good = dump
    env = {"KEEL_DATA_DIR": str(tmp_path / "var"), "KEEL_BITTORRENTED_DATABASE_URL": ""}
    args = ["bittorrented", "import", str(path) if via == "file" else "-", "--json"]
    stdin = path.read_bytes() if via == "stdin" else None
    result = CliRunner().invoke(app, args, env=env, input=stdin)
    assert result.exit_code == 1, result.stderr  # 1: some lines were bad
    assert json.loads(result.stdout) == {
        "read": good,
        "added": good,
        "bad_lines": len(BAD_AT),
        "interrupted": False,
    }
    named = [int(line.split(":")[0].split()[1]) for line in result.stderr.splitlines()]
    assert named == sorted(BAD_AT)
    assert "line 10001: not UTF-8" in result.stderr
    assert "line 13000: longer than" in result.stderr
    assert _stored(tmp_path / "var") == good


def test_a_killed_import_is_completed_by_running_it_again(
    dump: tuple[Path, int], tmp_path: Path
) -> None:
    path, good = dump
    env = {
        **os.environ,
        "KEEL_DATA_DIR": str(tmp_path / "var"),
        "KEEL_BITTORRENTED_DATABASE_URL": "",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    command = [sys.executable, "-m", "keel", "bittorrented", "import", str(path), "--json"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            if (tmp_path / "var" / "bittorrented.db").exists() and _stored(tmp_path / "var"):
                break
            time.sleep(0.05)
        assert first.poll() is None, "the import finished before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    partial = _stored(tmp_path / "var")
    assert 0 < partial < good

    second = subprocess.run(command, env=env, capture_output=True, timeout=300, check=False)
    assert second.returncode == 1, second.stderr
    report = json.loads(second.stdout)
    assert report["read"] == good
    assert report["added"] == good - partial
    assert _stored(tmp_path / "var") == good
