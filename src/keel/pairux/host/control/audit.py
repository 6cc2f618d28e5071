"""The session's control audit log: who asked, who was granted what and until when, who was
denied or revoked (and why), and how many events each controller injected. Never what was
typed or where: the API takes grant events and counts, nothing else.

One JSON line per record, appended and flushed to disk. Each record carries the previous
record's MAC and its own, HMAC-SHA256 under a key kept in the data directory, so editing,
removing, reordering or splicing records from another session is detected by :func:`verify`.
Cutting off the end is detected only if the log was closed: the last record is then ``close``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from keel.core import crypto
from keel.core.clock import Clock
from keel.pairux.host.control.grants import GrantEvent

__all__ = ["AuditLog", "Verification", "audit_key", "verify"]

GENESIS: Final = "0" * 64
KEY_FILE: Final = "pairux-audit.key"
Value = str | int | list[str] | None


def audit_key(data_dir: Path) -> bytes:
    """The audit MAC key: a subkey of ``<data_dir>/pairux-audit.key`` (created, mode 0600,
    on first use)."""
    encoded, _ = crypto.load_or_create_key_file(data_dir / KEY_FILE)
    return crypto.derive_subkey(crypto.parse_key(encoded), b"keel.pairux.audit")


class AuditLog:
    """Appends signed records to ``path``; continues an existing, intact log."""

    def __init__(self, path: Path, key: bytes, *, clock: Clock, session_id: str) -> None:
        self.path = path
        self.session_id = session_id
        self._key = key
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = 0
        self._prev = GENESIS
        if path.exists():
            found = verify(path, key)
            if not found.ok or found.closed:
                raise ValueError(f"audit log {path} cannot be continued: {found.error or 'closed'}")
            self._seq, self._prev = found.records, found.last_mac
        else:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._file = path.open("a", encoding="utf-8")
        if self._seq == 0:
            self.record("open")

    def record(self, kind: str, **fields: Value) -> None:
        """Append one record (``kind`` plus plain fields) and flush it to disk."""
        with self._lock:
            body: dict[str, Value | int] = {
                "seq": self._seq,
                "at": _iso(self._clock.now()),
                "session": self.session_id,
                "kind": kind,
                **{name: value for name, value in fields.items() if value is not None},
                "prev": self._prev,
            }
            mac = _mac(self._key, body)
            self._file.write(json.dumps({**body, "mac": mac}, separators=(",", ":")) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            self._seq += 1
            self._prev = mac

    def on_grant_event(self, event: GrantEvent) -> None:
        """A :class:`GrantAuthority` listener: every change of who may control."""
        self.record(
            event.kind,
            participant=event.participant_id,
            reason=event.reason,
            expires_at=_iso(event.expires_at) if event.expires_at else None,
        )

    def injected(self, participant_id: str, count: int) -> None:
        """How many events a controller injected during the grant that just ended."""
        self.record("injected", participant=participant_id, count=count)

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
        self.record("close")
        with self._lock:
            self._file.close()


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    records: int
    closed: bool
    last_mac: str
    error: str | None = None
    line: int | None = None


def verify(path: Path, key: bytes) -> Verification:
    """Check every record's MAC and the chain; the first broken line is reported."""
    prev, session, count, closed = GENESIS, None, 0, False
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                mac = record.pop("mac")
            except (ValueError, KeyError, AttributeError, TypeError):
                return Verification(False, count, False, prev, "unreadable record", number)
            if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(key, record)):
                return Verification(False, count, False, prev, "bad MAC", number)
            if record.get("prev") != prev or record.get("seq") != count:
                return Verification(False, count, False, prev, "chain broken", number)
            if session is not None and record.get("session") != session:
                return Verification(False, count, False, prev, "another session", number)
            if closed:
                return Verification(False, count, False, prev, "record after close", number)
            session, prev, count = record.get("session"), mac, count + 1
            closed = record.get("kind") == "close"
    return Verification(True, count, closed, prev)


def _mac(key: bytes, body: Mapping[str, object]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
