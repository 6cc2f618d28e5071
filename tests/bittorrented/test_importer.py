"""bitmagnet's JSON-lines import: good lines kept, each bad line named by number and skipped."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from keel.bittorrented import importer
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


@given(st.text(max_size=300))
def test_any_line_parses_or_is_a_bad_line(line: str) -> None:
    for item in importer.read([line]):
        assert isinstance(item, importer.BadLine | importer.Metainfo)


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
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"read": 2, "added": 2, "bad_lines": 2}
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
