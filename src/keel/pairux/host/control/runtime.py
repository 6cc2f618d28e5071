"""The control side of one host session, assembled: grants, arbiter, injector, host-input
listener, audit log and the viewers' channels, plus the periodic work (prompt and grant
expiry, the stuck-key watchdog, the ``cursors`` broadcast).

The host agent builds one with :func:`build`, calls :meth:`HostControl.start`, runs
:meth:`HostControl.run` as a task, and hands each viewer's ``control`` data channel to
``control.hub.open(...)``. The emergency hotkey (``hostinput.HOTKEY``) is heard on the
listener's thread and handled on the loop that runs :meth:`HostControl.run`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from keel.core.clock import Clock
from keel.pairux.host.control import messages
from keel.pairux.host.control.arbitration import Arbiter, CaptureRect
from keel.pairux.host.control.audit import AuditLog, audit_key
from keel.pairux.host.control.channel import ControlHub
from keel.pairux.host.control.grants import GrantAuthority
from keel.pairux.host.control.hostinput import HostInputListener
from keel.pairux.host.control.injector import EchoFilter, Injector, XTestInjector

__all__ = ["HostControl", "build"]


@dataclass
class HostControl:
    hub: ControlHub
    grants: GrantAuthority
    arbiter: Arbiter
    audit: AuditLog | None
    listener: HostInputListener | None
    hotkeys: int = 0
    """Emergency revokes by the hotkey (for tests and the host's terminal)."""
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def hotkey(self) -> None:
        """The host pressed the emergency hotkey (called from the listener's thread): every
        grant ends and everything held is released, on the session's loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._emergency)

    def _emergency(self) -> None:
        self.hotkeys += 1
        self.hub.emergency_revoke()

    def start(self) -> bool:
        """Open the injector and start listening for the host's own input. False when input
        cannot be injected (the session then shares the screen view-only)."""
        injecting = self.arbiter.enable()
        if injecting and self.listener is not None and not self.listener.start():
            self.listener = None  # no RECORD: remote input is not paused for the host's hands
        return injecting

    async def run(self, *, tick_s: float = 0.1, cursors_s: float = 1 / 30) -> None:
        """Expire prompts and grants, release stuck keys, and broadcast cursors when they
        change, until cancelled."""
        last: messages.Cursors | None = None
        next_tick = 0.0
        loop = self._loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if now >= next_tick:
                self.arbiter.tick()
                next_tick = now + tick_s
            cursors = self.hub.cursors()
            if cursors != last:
                self.hub.broadcast(cursors)
                last = cursors
            await asyncio.sleep(cursors_s)

    def close(self) -> None:
        """End every grant, release everything held, stop listening, close the audit log."""
        self.grants.emergency_revoke()
        if self.listener is not None:
            self.listener.stop()
        self.arbiter.close()
        if self.audit is not None:
            self.audit.close()


def build(
    *,
    clock: Clock,
    rect: CaptureRect,
    session_id: str,
    display: str | None = None,
    data_dir: Path | None = None,
    max_controllers: int = 3,
    injector: Injector | None = None,
) -> HostControl:
    """Wire one session: XTest on ``display`` unless an ``injector`` is given (then no
    host-input listener), and an audit log under ``data_dir/pairux-audit/`` when given."""
    grants = GrantAuthority(clock=clock, max_controllers=max_controllers)
    audit = None
    if data_dir is not None:
        path = data_dir / "pairux-audit" / f"{session_id}.jsonl"
        audit = AuditLog(path, audit_key(data_dir), clock=clock, session_id=session_id)
    listener: HostInputListener | None = None
    control_ref: list[HostControl] = []
    if injector is None:
        echoes = EchoFilter()
        injector = XTestInjector(display, echoes=echoes)
        arbiter_ref: list[Arbiter] = []
        listener = HostInputListener(
            display,
            echoes=echoes,
            on_input=lambda: arbiter_ref[0].host_input(),
            on_hotkey=lambda: control_ref[0].hotkey() if control_ref else None,
        )
    arbiter = Arbiter(
        grants=grants,
        injector=injector,
        clock=clock,
        rect=rect,
        on_grant_end=audit.injected if audit is not None else None,
    )
    if listener is not None:
        arbiter_ref.append(arbiter)
    hub = ControlHub(grants=grants, arbiter=arbiter, audit=audit)
    control = HostControl(hub=hub, grants=grants, arbiter=arbiter, audit=audit, listener=listener)
    control_ref.append(control)
    return control
