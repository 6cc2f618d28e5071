"""The emergency hotkey on a real X server: the host's own Ctrl+Alt+Shift+Escape ends every
grant and releases what controllers hold; the same keys injected by a controller do not."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from keel.core.clock import SystemClock
from keel.pairux.host.control import messages, runtime
from keel.pairux.host.control.arbitration import CaptureRect
from tests.pairux.control.conftest import HEIGHT, WIDTH

pytestmark = pytest.mark.slow

COMBO = ("Control_L", "Alt_L", "Shift_L", "Escape")
MODIFIERS = {"ctrl": True, "alt": True, "shift": True, "meta": False, "accel": True}


@contextmanager
def host_keyboard(display_name: str) -> Iterator[Any]:
    """A second X client pressing keys: to the listener these are the host's own hands (they
    are not in the injector's echo filter)."""
    from Xlib import display

    connection = display.Display(display_name)
    try:
        yield connection
    finally:
        connection.close()


def press_combo(connection: Any) -> None:
    from Xlib import XK, X
    from Xlib.ext import xtest

    codes = [connection.keysym_to_keycode(XK.string_to_keysym(name)) for name in COMBO]
    for code in codes:
        xtest.fake_input(connection, X.KeyPress, code)
    for code in reversed(codes):
        xtest.fake_input(connection, X.KeyRelease, code)
    connection.sync()


@pytest.fixture
async def session(xvfb: str) -> AsyncIterator[tuple[runtime.HostControl, list[Any]]]:
    control = runtime.build(
        clock=SystemClock(), rect=CaptureRect(0, 0, WIDTH, HEIGHT), session_id="s", display=xvfb
    )
    assert control.start()
    assert control.listener is not None  # Xvfb has RECORD
    inbox: list[Any] = []
    ann = control.hub.open("ann", "Ann", lambda text: inbox.append(messages.parse_from_host(text)))
    ann.receive('{"type":"control-request"}')
    control.grants.grant("ann")
    task = asyncio.create_task(control.run(tick_s=0.02, cursors_s=0.02))
    try:
        yield control, inbox
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        control.close()


async def _until(check: Any, within_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_the_hosts_hotkey_revokes_every_grant(
    xvfb: str, session: tuple[runtime.HostControl, list[Any]]
) -> None:
    control, inbox = session
    assert control.grants.is_granted("ann")
    with host_keyboard(xvfb) as keyboard:
        press_combo(keyboard)
    assert await _until(lambda: not control.grants.is_granted("ann"), 1.0)
    assert control.hotkeys == 1
    revokes = [m for m in inbox if isinstance(m, messages.ControlRevoke)]
    assert [m.reason for m in revokes] == ["emergency"]


async def test_a_controller_typing_the_combination_does_not_fire_it(
    session: tuple[runtime.HostControl, list[Any]],
) -> None:
    control, _ = session
    outcomes = [
        control.arbiter.submit("ann", _key("down", code, key))
        for code, key in (("ControlLeft", "Control"), ("AltLeft", "Alt"), ("ShiftLeft", "Shift"))
    ]
    outcomes.append(control.arbiter.submit("ann", _key("down", "Escape", "Escape")))
    outcomes.append(control.arbiter.submit("ann", _key("up", "Escape", "Escape")))
    assert outcomes == ["injected"] * 5  # they reached the X server
    await asyncio.sleep(0.3)
    assert control.hotkeys == 0
    assert control.grants.is_granted("ann")


_sequence = iter(range(1, 1000))


def _key(action: str, code: str, key: str) -> messages.InputMessage:
    message = messages.parse_from_viewer(
        messages.encode(
            messages.InputMessage(
                timestamp=1.0,
                sequence=next(_sequence),
                event=messages.KeyEvent(
                    action=action,  # type: ignore[arg-type]
                    code=code,
                    key=key,
                    modifiers=messages.Modifiers(**MODIFIERS),
                ),
            )
        )
    )
    assert isinstance(message, messages.InputMessage)
    return message
