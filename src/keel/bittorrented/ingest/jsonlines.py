"""bitmagnet's import format: one JSON object per line.

    {"infoHash": "<40 hex>", "name": "...", "size": 123, "publishedAt": "2024-01-02T03:04:05Z",
     "source": "mysource", "files": [{"path": "a/b.mkv", "size": 100}, ...]}

``files`` is optional (its order gives the file indexes). A bad line (not UTF-8, not JSON, a
wrong field, longer than ``MAX_LINE_BYTES``, a truncated last line) is reported with its line
number and skipped; the good ones are kept. The file is read as bytes, so the reader knows how
far it got (for a progress bar) and a huge line is skipped without being held in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from keel.bittorrented.torrent.values import MAX_PEERS, Metainfo, TorrentFile

_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_SOURCE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_SIZE = 2**63 - 1
# A torrent with 1,000 files is about 100 KB of JSON; anything far past that is not a torrent.
MAX_LINE_BYTES = 1 << 20
_SKIP_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class BadLine:
    line_number: int
    reason: str


def parse_line(line: str, *, default_source: str, max_files: int) -> Metainfo:
    """One import line as a Metainfo; ValueError saying which field is wrong."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from exc
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    info_hash = obj.get("infoHash")
    if not isinstance(info_hash, str) or not _HEX40.fullmatch(info_hash):
        raise ValueError("infoHash must be 40 hexadecimal digits")
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise ValueError("name must be a non-empty string")
    size = _count(obj.get("size", 0), "size", MAX_SIZE)
    source = obj.get("source", default_source)
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        raise ValueError("source must be 1-64 letters, digits, '_', '.' or '-'")
    files = _files(obj.get("files"), max_files)
    return Metainfo(
        info_hash=bytes.fromhex(info_hash),
        name=name,
        size=size,
        files=files[:max_files],
        files_count=len(files) if files else 1,
        source=source,
        published_at=_published(obj.get("publishedAt")),
        seeders=_optional_count(obj.get("seeders"), "seeders"),
        leechers=_optional_count(obj.get("leechers"), "leechers"),
    )


def _count(value: Any, field: str, limit: int) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        raise ValueError(f"{field} must be an integer in [0, {limit}]")
    return value


def _optional_count(value: Any, field: str) -> int | None:
    return None if value is None else _count(value, field, MAX_PEERS)


def _files(value: Any, max_files: int) -> tuple[TorrentFile, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("files must be a list")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValueError(f"files[{index}] must be an object")
        path = item.get("path")
        if not isinstance(path, str) or not path or "\x00" in path:
            raise ValueError(f"files[{index}].path must be a non-empty string")
        out.append(TorrentFile(index, path, _count(item.get("size", 0), "size", MAX_SIZE)))
    return tuple(out)


def _published(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("publishedAt must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("publishedAt must be an RFC 3339 string") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class Reader:
    """The good lines of a JSON-lines stream as Metainfo, in order. Each bad line goes to
    ``on_bad``; ``position`` is how many bytes have been consumed, ``bad`` how many lines
    were skipped."""

    def __init__(
        self,
        stream: BinaryIO,
        *,
        on_bad: Callable[[BadLine], object],
        default_source: str = "import",
        max_files: int = 1000,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self._stream = stream
        self._on_bad = on_bad
        self._source = default_source
        self._max_files = max_files
        self._limit = max_line_bytes
        self.position = 0
        self.bad = 0

    def __iter__(self) -> Iterator[Metainfo]:
        for number, raw in self._lines():
            try:
                if raw is None:
                    raise ValueError(f"longer than {self._limit} bytes")
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                if not text.strip():
                    continue
                yield parse_line(text, default_source=self._source, max_files=self._max_files)
            except UnicodeDecodeError:
                self._skip(BadLine(number, "not UTF-8"))
            except ValueError as exc:
                self._skip(BadLine(number, str(exc)))

    def _skip(self, bad: BadLine) -> None:
        self.bad += 1
        self._on_bad(bad)

    def _lines(self) -> Iterator[tuple[int, bytes | None]]:
        """(line number, its bytes), or None for a line past the limit (skipped unread)."""
        number = 0
        while chunk := self._stream.readline(self._limit + 1):
            number += 1
            self.position += len(chunk)
            if len(chunk) <= self._limit or chunk.endswith(b"\n"):
                yield number, chunk
                continue
            while chunk and not chunk.endswith(b"\n"):
                chunk = self._stream.readline(_SKIP_CHUNK)
                self.position += len(chunk)
            yield number, None
