"""The host's own hands: an XRecord listener on the display that reports every key, button or
pointer motion we did not inject ourselves.

XRecord sees injected and physical events alike, so the injector notes each event it sends in
an :class:`~keel.pairux.host.control.injector.EchoFilter` and the listener skips those. What is
left is the host's input, and ``on_input`` (normally :meth:`Arbiter.host_input`) pauses remote
control. The listener runs on a thread of its own with two display connections (XRecord's
blocks while enabled; the other stops it).

It also watches for the emergency hotkey, :data:`HOTKEY` (Ctrl+Alt+Shift+Escape: no desktop we
know binds it, and unlike Ctrl+Alt+Backspace it cannot zap an X server), pressed by the host's
own hands. Injected keys are echoes and never count, so a controller can neither fire nor hold
it off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from keel.pairux.host.control.injector import EchoFilter

__all__ = ["HOTKEY", "HostInputListener"]

HOTKEY: tuple[tuple[str, ...], ...] = (
    ("Control_L", "Control_R"),
    ("Alt_L", "Alt_R", "Meta_L", "Meta_R"),
    ("Shift_L", "Shift_R"),
    ("Escape",),
)
"""The emergency revoke: one key of each group held, the last group's pressed last."""


class HostInputListener:
    """Calls ``on_input`` from its own thread for each input event not in ``echoes``."""

    def __init__(
        self,
        display_name: str | None,
        *,
        echoes: EchoFilter,
        on_input: Callable[[], None],
        on_hotkey: Callable[[], None] | None = None,
    ) -> None:
        self._display_name = display_name
        self._echoes = echoes
        self._on_input = on_input
        self._on_hotkey = on_hotkey
        self._hotkey: list[frozenset[int]] = []
        self._held: set[int] = set()
        self._record: Any = None
        self._control: Any = None
        self._context: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.seen = 0
        """How many host events were reported (for tests and metrics)."""

    def start(self) -> bool:
        """Start listening; False when the display or its RECORD extension is unavailable."""
        if not self._display_name:
            return False
        try:
            from Xlib import XK, X, display
            from Xlib.ext import record

            self._control = display.Display(self._display_name)
            self._record = display.Display(self._display_name)
            if not self._record.has_extension("RECORD"):
                self.stop()
                return False
            self._hotkey = [
                frozenset(
                    code
                    for name in group
                    if (code := self._control.keysym_to_keycode(XK.string_to_keysym(name)))
                )
                for group in HOTKEY
            ]
            self._context = self._record.record_create_context(
                0,
                [record.AllClients],
                [
                    {
                        "core_requests": (0, 0),
                        "core_replies": (0, 0),
                        "ext_requests": (0, 0, 0, 0),
                        "ext_replies": (0, 0, 0, 0),
                        "delivered_events": (0, 0),
                        "device_events": (X.KeyPress, X.MotionNotify),
                        "errors": (0, 0),
                        "client_started": False,
                        "client_died": False,
                    }
                ],
            )
        except Exception:  # cannot connect, or RECORD refused: no host priority from X
            self.stop()
            return False
        self._thread = threading.Thread(target=self._run, name="pairux-host-input", daemon=True)
        self._thread.start()
        self._ready.wait(2.0)
        return True

    def stop(self) -> None:
        """Stop listening and close both connections; safe to call twice."""
        if self._control is not None and self._context is not None:
            self._control.record_disable_context(self._context)
            self._control.flush()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._record is not None and self._context is not None:
            self._record.record_free_context(self._context)
        for connection in (self._record, self._control):
            if connection is not None:
                connection.close()
        self._record = self._control = self._context = None

    def _run(self) -> None:
        try:
            self._record.record_enable_context(self._context, self._on_reply)
        except Exception:  # the display went away: nothing more to listen to
            self._ready.set()

    def _on_reply(self, reply: Any) -> None:
        from Xlib import X
        from Xlib.ext import record
        from Xlib.protocol import rq

        if reply.category == record.StartOfData:
            self._ready.set()  # events from here on are reported
            return
        if reply.category != record.FromServer or reply.client_swapped:
            return
        data = reply.data
        while len(data) >= 32:
            event, data = rq.EventField(None).parse_binary_value(
                data, self._record.display, None, None
            )
            kind: str
            detail: int | tuple[int, int]
            if event.type in (X.KeyPress, X.KeyRelease):
                kind, detail = "key", int(event.detail)
            elif event.type in (X.ButtonPress, X.ButtonRelease):
                kind, detail = "button", int(event.detail)
            elif event.type == X.MotionNotify:
                kind, detail = "motion", (int(event.root_x), int(event.root_y))
            else:
                continue
            if not self._echoes.is_echo(kind, detail):
                self.seen += 1
                self._on_input()
                if kind == "key" and isinstance(detail, int):
                    self._track_key(detail, pressed=event.type == X.KeyPress)

    def _track_key(self, keycode: int, *, pressed: bool) -> None:
        if not pressed:
            self._held.discard(keycode)
            return
        self._held.add(keycode)
        *modifiers, last = self._hotkey or [frozenset()]
        if (
            self._on_hotkey is not None
            and keycode in last
            and all(group & self._held for group in modifiers)
        ):
            self._on_hotkey()
