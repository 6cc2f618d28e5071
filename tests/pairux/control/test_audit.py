"""The signed audit log: what it records, what it never records, and tampering detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.core.clock import FrozenClock
from keel.pairux.host.control import audit
from keel.pairux.host.control.arbitration import Arbiter, CaptureRect
from keel.pairux.host.control.channel import ControlHub
from keel.pairux.host.control.grants import GrantAuthority
from keel.pairux.host.control.injector import RecordingInjector

KEY = b"k" * 32


def session_log(tmp_path: Path) -> Path:
    """A short session: ann granted, types a secret word, is revoked; an emergency revoke."""
    clock = FrozenClock()
    log = audit.AuditLog(tmp_path / "s1.jsonl", KEY, clock=clock, session_id="s1")
    grants = GrantAuthority(clock=clock)
    arbiter = Arbiter(
        grants=grants,
        injector=RecordingInjector(),
        clock=clock,
        rect=CaptureRect(0, 0, 100, 100),
        on_grant_end=log.injected,
    )
    arbiter.enable()
    hub = ControlHub(grants=grants, arbiter=arbiter, audit=log)
    ann = hub.open("ann", "Ann", lambda _: None)
    ann.receive('{"type":"control-request"}')
    grants.grant("ann")
    for seq, char in enumerate("hunter2", start=1):
        for action in ("down", "up"):
            code = f"Key{char.upper()}" if char.isalpha() else f"Digit{char}"
            ann.receive(
                json.dumps(
                    {
                        "type": "input",
                        "timestamp": 1,
                        "sequence": seq * 2 + (action == "up"),
                        "event": {"type": "keyboard", "action": action, "key": char, "code": code},
                    }
                )
            )
    grants.revoke("ann")
    hub.emergency_revoke()
    log.close()
    return log.path


def test_the_log_records_grants_and_counts_but_never_what_was_typed(tmp_path: Path) -> None:
    path = session_log(tmp_path)
    text = path.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["kind"] for r in records] == [
        "open",
        "requested",
        "granted",
        "injected",  # the arbiter releases and counts before the revoke is recorded
        "revoked",
        "emergency-revoke",
        "close",
    ]
    assert records[3] == {**records[3], "participant": "ann", "count": 14}
    assert "hunter" not in text
    assert "KeyH" not in text
    assert audit.verify(path, KEY) == audit.Verification(True, 7, True, records[-1]["mac"])


@pytest.mark.parametrize(
    "tamper",
    [
        lambda lines: [lines[0], lines[1], lines[3], *lines[4:]],  # a record removed
        lambda lines: [lines[0], lines[2], lines[1], *lines[3:]],  # reordered
        lambda lines: [*lines[:3], lines[3].replace('"count":14', '"count":2'), *lines[4:]],
        lambda lines: [*lines[:2], lines[2].replace('"ann"', '"bob"'), *lines[3:]],
        lambda lines: [*lines, lines[-1]],  # appended after close
    ],
)
def test_tampering_is_detected(tmp_path: Path, tamper: object) -> None:
    path = session_log(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(tamper(lines)) + "\n")  # type: ignore[operator]
    assert not audit.verify(path, KEY).ok


def test_a_truncated_log_verifies_but_shows_it_was_not_closed(tmp_path: Path) -> None:
    path = session_log(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-2]) + "\n")
    result = audit.verify(path, KEY)
    assert result.ok
    assert not result.closed


def test_another_key_fails_verification(tmp_path: Path) -> None:
    assert not audit.verify(session_log(tmp_path), b"x" * 32).ok


def test_a_log_is_continued_after_a_restart_and_the_key_lives_in_the_data_dir(
    tmp_path: Path,
) -> None:
    key = audit.audit_key(tmp_path / "data")
    assert key == audit.audit_key(tmp_path / "data")
    assert (tmp_path / "data" / audit.KEY_FILE).stat().st_mode & 0o777 == 0o600
    clock = FrozenClock()
    first = audit.AuditLog(tmp_path / "s.jsonl", key, clock=clock, session_id="s")
    first.record("granted", participant="ann")
    second = audit.AuditLog(tmp_path / "s.jsonl", key, clock=clock, session_id="s")
    second.record("revoked", participant="ann", reason="host")
    second.close()
    assert audit.verify(tmp_path / "s.jsonl", key).records == 4
    with pytest.raises(ValueError, match="closed"):
        audit.AuditLog(tmp_path / "s.jsonl", key, clock=clock, session_id="s")
