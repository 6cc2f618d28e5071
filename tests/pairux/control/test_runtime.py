"""One host session's control side, assembled and ticking."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

from keel.core.clock import FrozenClock
from keel.pairux.host.control import audit, messages, runtime
from keel.pairux.host.control.arbitration import CaptureRect
from keel.pairux.host.control.injector import RecordingInjector


async def test_a_session_ticks_broadcasts_cursors_and_closes_its_audit_log(tmp_path: Path) -> None:
    clock = FrozenClock()
    control = runtime.build(
        clock=clock,
        rect=CaptureRect(0, 0, 100, 100),
        session_id="s1",
        data_dir=tmp_path,
        injector=RecordingInjector(),
    )
    assert control.start()
    inbox: list[messages.HostMessage] = []

    def send(text: str) -> None:
        parsed = messages.parse_from_host(text)
        assert not isinstance(parsed, messages.Rejected)
        inbox.append(parsed)

    ann = control.hub.open("ann", "Ann", send)
    ann.receive('{"type":"control-request"}')
    control.grants.grant("ann", duration=timedelta(minutes=1))
    ann.receive('{"type":"cursor","x":0.5,"y":0.5}')
    task = asyncio.create_task(control.run(tick_s=0.01, cursors_s=0.01))
    await asyncio.sleep(0.05)
    clock.advance(timedelta(minutes=1))
    await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    control.close()
    kinds = [m.type for m in inbox]
    assert kinds == ["control-grant", "cursors", "control-revoke"]
    assert inbox[1] == messages.Cursors(
        participants=[messages.ParticipantCursor(id="ann", name="Ann", x=0.5, y=0.5)]
    )
    log = tmp_path / "pairux-audit" / "s1.jsonl"
    assert audit.verify(log, audit.audit_key(tmp_path)).closed


def test_without_a_display_the_session_is_view_only() -> None:
    control = runtime.build(clock=FrozenClock(), rect=CaptureRect(0, 0, 10, 10), session_id="s")
    assert not control.start()
    control.close()
