"""bitmagnet's JSON-lines import: good lines kept, each bad line named by number and skipped."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from keel.bittorrented.ingest import jsonlines as importer
from keel.cli import app

GOOD = {
    "infoHash": "aa" * 20,
    "name": "Some.Show.S02E03.720p.WEB.h264-GRP",
    "size": 123456,
    "publishedAt": "2024-05-06T07:08:09Z",
    "source": "mysource",
    "files": [{"path": "Some.Show.S02E03.mkv", "size": 123000}, {"path": "x.nfo", "size": 456}],
}


def test_a_good_line_keeps_every_field() -> None:
    m = importer.parse_line(json.dumps(GOOD), default_source="import", max_files=10)
    assert m.info_hash == bytes.fromhex("aa" * 20)
    assert (m.name, m.size, m.source) == (GOOD["name"], 123456, "mysource")
    assert m.published_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert [f.path for f in m.files] == ["Some.Show.S02E03.mkv", "x.nfo"]


def test_files_over_the_cap_are_flagged() -> None:
    m = importer.parse_line(json.dumps(GOOD), default_source="import", max_files=1)
    assert len(m.files) == 1
    assert m.files_count == 2
    assert m.files_over_cap


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"infoHash": "abc"}, "infoHash"),
        ({"name": ""}, "name"),
        ({"size": -1}, "size"),
        ({"size": 1.5}, "size"),
        ({"publishedAt": "yesterday"}, "publishedAt"),
        ({"source": "has space"}, "source"),
        ({"files": [{"size": 1}]}, "files[0].path"),
        ({"files": "nope"}, "files"),
    ],
)
def test_bad_fields_say_which(change: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        importer.parse_line(json.dumps(GOOD | change), default_source="import", max_files=10)


@given(st.lists(st.binary(max_size=300), max_size=5))
def test_any_bytes_parse_or_are_bad_lines(lines: list[bytes]) -> None:
    bad: list[importer.BadLine] = []
    data = b"\n".join(lines)
    reader = importer.Reader(io.BytesIO(data), on_bad=bad.append, max_line_bytes=200)
    good = list(reader)
    assert all(isinstance(m, importer.Metainfo) for m in good)
    assert reader.position == len(data)
    assert reader.bad == len(bad)
    assert [b.line_number for b in bad] == sorted({b.line_number for b in bad})


def test_a_line_past_the_limit_is_skipped_and_the_next_one_read() -> None:
    good = json.dumps(GOOD).encode()
    data = good + b"\n" + b"x" * 5000 + b"\n" + good.replace(b"aa", b"bb") + b"\n"
    bad: list[importer.BadLine] = []
    reader = importer.Reader(io.BytesIO(data), on_bad=bad.append, max_line_bytes=1000)
    assert [m.info_hash.hex()[:2] for m in reader] == ["aa", "bb"]
    assert bad == [importer.BadLine(2, "longer than 1000 bytes")]
    assert reader.position == len(data)


def test_cli_import_keeps_good_lines_and_reports_bad_ones(tmp_path: Path) -> None:
    lines = [
        json.dumps(GOOD),
        "{not json",
        "",
        json.dumps(GOOD | {"infoHash": "bb" * 20, "name": "Other.Movie.2019.1080p"}),
        json.dumps(GOOD | {"infoHash": "zz" * 20}),
    ]
    path = tmp_path / "dump.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = {"KEEL_DATA_DIR": str(tmp_path / "var"), "KEEL_BITTORRENTED_DATABASE_URL": ""}
    result = CliRunner().invoke(app, ["bittorrented", "import", str(path), "--json"], env=env)
    assert result.exit_code == 1, result.stderr  # some lines were bad
    assert json.loads(result.stdout) == {
        "read": 2,
        "added": 2,
        "bad_lines": 2,
        "interrupted": False,
    }
    assert "line 2: not JSON" in result.stderr
    assert "line 5: infoHash" in result.stderr
    again = CliRunner().invoke(app, ["bittorrented", "import", str(path), "--json"], env=env)
    assert json.loads(again.stdout)["added"] == 0
    found = CliRunner().invoke(app, ["bittorrented", "search", "other 1080p", "--json"], env=env)
    assert [r["name"] for r in json.loads(found.stdout)["results"]] == ["Other.Movie.2019.1080p"]


def test_cli_import_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    env = {"KEEL_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(app, ["bittorrented", "import", str(tmp_path / "nope")], env=env)
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no such file" in result.stderr
