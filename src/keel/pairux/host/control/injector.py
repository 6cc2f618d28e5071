"""Putting input on the host's display: the :class:`Injector` Protocol, the XTest backend
(python-xlib), and :class:`RecordingInjector` for tests.

Nothing here decides whether input may be injected: the only caller is
:class:`keel.pairux.host.control.arbitration.Arbiter`, which holds the injector and lets an
event through only for a controller granted at that instant. Coordinates are absolute pixels
of the X screen; keys are X keycodes obtained from :meth:`Injector.keycode`.

python-xlib ships no type information, so it is used only inside :class:`XTestInjector`, which
converts everything to ``int``/``bool`` at its edge.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

MouseButton = Literal["left", "right", "middle"]
X_BUTTONS: Final[dict[MouseButton, int]] = {"left": 1, "middle": 2, "right": 3}
SCROLL_UP, SCROLL_DOWN, SCROLL_LEFT, SCROLL_RIGHT = 4, 5, 6, 7


class Injector(Protocol):
    def enable(self) -> bool:
        """Get ready to inject; False (and nothing injected later) when this backend can't,
        e.g. no display or no XTEST extension."""
        ...

    def close(self) -> None:
        """Release the display connection; safe to call twice."""
        ...

    def keycode(self, keysym: int) -> int | None:
        """The key to press for an X keysym on this display, None when the keymap has none."""
        ...

    def pointer(self) -> tuple[int, int] | None:
        """Where the real pointer is, in screen pixels (None when unknown)."""
        ...

    def move(self, x: int, y: int) -> None:
        """Move the real pointer to screen pixel (x, y)."""
        ...

    def button(self, button: MouseButton, down: bool) -> None:
        """Press or release a mouse button where the pointer is."""
        ...

    def scroll(self, dx: int, dy: int) -> None:
        """Scroll by whole notches: positive ``dy`` down, positive ``dx`` right."""
        ...

    def key(self, keycode: int, down: bool) -> None:
        """Press or release one key."""
        ...


class ScrollAccumulator:
    """DOM wheel deltas to whole notches, keeping the remainder so a trackpad's many small
    deltas still add up. A notch is 100 pixels or 3 lines; a page is 10 notches (about what
    browsers and GTK use). At most :attr:`MAX_NOTCHES` per event per axis, so one message
    can't scroll a document to its end."""

    PIXELS_PER_NOTCH: Final = 100.0
    LINES_PER_NOTCH: Final = 3.0
    NOTCHES_PER_PAGE: Final = 10.0
    MAX_NOTCHES: Final = 10

    def __init__(self) -> None:
        self._x = 0.0
        self._y = 0.0

    def add(self, dx: float, dy: float, mode: int) -> tuple[int, int]:
        """Whole notches (dx, dy) for one scroll event in ``mode`` 0 pixels, 1 lines, 2 pages."""
        scale = {
            0: 1 / self.PIXELS_PER_NOTCH,
            1: 1 / self.LINES_PER_NOTCH,
            2: self.NOTCHES_PER_PAGE,
        }[mode]
        self._x += dx * scale
        self._y += dy * scale
        nx, ny = int(self._x), int(self._y)  # toward zero: the remainder keeps its sign
        self._x -= nx
        self._y -= ny
        cap = self.MAX_NOTCHES
        return max(-cap, min(cap, nx)), max(-cap, min(cap, ny))


@dataclass
class EchoFilter:
    """What we injected, so a listener on the display can tell our events from the host's own
    hands: XRecord reports both alike. An expectation lives :attr:`ttl_s` seconds."""

    ttl_s: float = 2.0
    _expected: deque[tuple[float, str, int | tuple[int, int]]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, kind: str, detail: int | tuple[int, int]) -> None:
        with self._lock:
            self._expected.append((time.monotonic(), kind, detail))

    def is_echo(self, kind: str, detail: int | tuple[int, int]) -> bool:
        """True (and forgotten) when this event is one we injected."""
        now = time.monotonic()
        with self._lock:
            while self._expected and now - self._expected[0][0] > self.ttl_s:
                self._expected.popleft()
            for index, (_, seen_kind, seen_detail) in enumerate(self._expected):
                if seen_kind == kind and seen_detail == detail:
                    del self._expected[index]
                    return True
        return False


class XTestInjector:
    """Injects through the XTEST extension on one X display (python-xlib ``fake_input``)."""

    def __init__(self, display_name: str | None, *, echoes: EchoFilter | None = None) -> None:
        self._display_name = display_name
        self._echoes = echoes
        self._display: Any = None
        self._keycodes: dict[int, int | None] = {}
        self._lock = threading.Lock()

    def enable(self) -> bool:
        if self._display is not None:
            return True
        if not self._display_name:
            return False
        try:
            from Xlib import display as xdisplay

            connection = xdisplay.Display(self._display_name)
        except Exception:  # Xlib raises its own errors and OSError alike for "cannot connect"
            return False
        if not connection.query_extension("XTEST").present:
            connection.close()
            return False
        self._display = connection
        return True

    def close(self) -> None:
        with self._lock:
            if self._display is not None:
                self._display.close()
                self._display = None

    def keycode(self, keysym: int) -> int | None:
        if self._display is None:
            return None
        if keysym not in self._keycodes:
            with self._lock:
                code = int(self._display.keysym_to_keycode(keysym))
            self._keycodes[keysym] = code or None
        return self._keycodes[keysym]

    def pointer(self) -> tuple[int, int] | None:
        if self._display is None:
            return None
        with self._lock:
            reply = self._display.screen().root.query_pointer()
        return int(reply.root_x), int(reply.root_y)

    def move(self, x: int, y: int) -> None:
        from Xlib import X

        self._send(X.MotionNotify, 0, x=x, y=y, echo=("motion", (x, y)))

    def button(self, button: MouseButton, down: bool) -> None:
        from Xlib import X

        number = X_BUTTONS[button]
        self._send(X.ButtonPress if down else X.ButtonRelease, number, echo=("button", number))

    def scroll(self, dx: int, dy: int) -> None:
        from Xlib import X

        for number, count in (
            (SCROLL_DOWN if dy > 0 else SCROLL_UP, abs(dy)),
            (SCROLL_RIGHT if dx > 0 else SCROLL_LEFT, abs(dx)),
        ):
            for _ in range(count):
                self._send(X.ButtonPress, number, echo=("button", number))
                self._send(X.ButtonRelease, number, echo=("button", number))

    def key(self, keycode: int, down: bool) -> None:
        from Xlib import X

        self._send(X.KeyPress if down else X.KeyRelease, keycode, echo=("key", keycode))

    def _send(
        self,
        event_type: int,
        detail: int,
        *,
        echo: tuple[str, int | tuple[int, int]],
        x: int = 0,
        y: int = 0,
    ) -> None:
        from Xlib.ext import xtest

        with self._lock:
            if self._display is None:
                return
            if self._echoes is not None:
                self._echoes.expect(*echo)
            xtest.fake_input(self._display, event_type, detail, x=x, y=y)
            self._display.sync()  # processed before we return: revoke means nothing in flight


@dataclass
class RecordingInjector:
    """Remembers what it was asked to inject (tests): ``calls`` holds tuples like
    ``("key", keycode, True)``; keycodes are the keysyms themselves."""

    can_inject: bool = True
    calls: list[tuple[object, ...]] = field(default_factory=list)
    position: tuple[int, int] = (0, 0)
    enabled: bool = False

    def enable(self) -> bool:
        self.enabled = self.can_inject
        return self.enabled

    def close(self) -> None:
        self.enabled = False

    def keycode(self, keysym: int) -> int | None:
        return keysym

    def pointer(self) -> tuple[int, int] | None:
        return self.position

    def move(self, x: int, y: int) -> None:
        self._record("move", x, y)
        self.position = (x, y)

    def button(self, button: MouseButton, down: bool) -> None:
        self._record("button", button, down)

    def scroll(self, dx: int, dy: int) -> None:
        self._record("scroll", dx, dy)

    def key(self, keycode: int, down: bool) -> None:
        self._record("key", keycode, down)

    def _record(self, *call: object) -> None:
        if not self.enabled:
            raise AssertionError(f"injected {call} before enable()")
        self.calls.append(call)
