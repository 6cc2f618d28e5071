"""A real X server for the injection tests: ``Xvfb`` on a display number it picks itself
(``-displayfd``: no race for a free number), 1280x720, no TCP, never resetting between
clients, ready once a client can connect and see XTEST, killed at teardown; and the
Tk app that logs what it receives (``input_logger.py``), started fresh for each test.

Without ``Xvfb`` the tests skip, except under ``KEEL_TEST_CHAIN_NODES=1`` or ``CI=true``,
where they fail (``tests.chains_nodes.need_node``).
"""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.chains_nodes import need_node

LOGGER = Path(__file__).with_name("input_logger.py")
WIDTH, HEIGHT = 1280, 720


def _wait_for_clients(display: str, within_s: float) -> None:
    """Return once an X client can connect to ``display`` and finds XTEST there."""
    from Xlib import display as xdisplay

    deadline = time.monotonic() + within_s
    while True:
        try:
            connection = xdisplay.Display(display)
        except Exception as error:  # Xlib's own errors and OSError alike mean "not yet"
            if time.monotonic() > deadline:
                raise RuntimeError(f"Xvfb on {display} refuses clients: {error}") from error
            time.sleep(0.05)
            continue
        try:
            if connection.query_extension("XTEST").present:
                return
            raise RuntimeError(f"Xvfb on {display} has no XTEST extension")
        finally:
            connection.close()


@contextmanager
def run_xvfb(width: int = WIDTH, height: int = HEIGHT) -> Iterator[str]:
    """A private Xvfb until the block ends; yields its display name (``:N``).

    ``-noreset``: by default an X server regenerates when its last client leaves, and a client
    connecting during that (a test starting right after the previous one closed everything)
    is refused; that made one control test fail about one CI run in three."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise FileNotFoundError("Xvfb (Debian xvfb) is not installed")
    read_end, write_end = os.pipe()
    screen = f"{width}x{height}x24"
    options = ["-screen", "0", screen, "-nolisten", "tcp", "-noreset"]
    process = subprocess.Popen(
        [binary, "-displayfd", str(write_end), *options],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 10.0)
        number = os.read(read_end, 32).decode().strip() if ready else ""
        if not number:
            raise RuntimeError("Xvfb did not report its display number within 10 s")
        _wait_for_clients(f":{number}", 10.0)
        yield f":{number}"
    finally:
        os.close(read_end)
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def xvfb() -> Iterator[str]:
    """The display name (``:N``) of a private Xvfb."""
    if shutil.which("Xvfb") is None:
        need_node("Xvfb (Debian xvfb)")
    with run_xvfb() as display:
        yield display


class InputLog:
    """The Tk app's events as they arrive (a reader thread drains its stdout)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))

    def wait_ready(self, timeout: float = 10.0) -> dict[str, Any]:
        first = self.events.get(timeout=timeout)
        assert first.get("ready"), first
        return first

    def settle(self, seconds: float = 0.2) -> list[dict[str, Any]]:
        """Everything received until nothing new has arrived for ``seconds``."""
        while True:
            try:
                self.seen.append(self.events.get(timeout=seconds))
            except queue.Empty:
                return self.seen

    def typed(self) -> str:
        return "".join(e["char"] for e in self.settle() if e["ev"] == "key_down")

    def keysyms(self, kind: str) -> list[str]:
        return [e["keysym"] for e in self.settle() if e["ev"] == kind]


@contextmanager
def run_input_logger(display: str, *args: str) -> Iterator[InputLog]:
    """The Tk input logger on ``display``, full screen and focused, until the block ends."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(LOGGER), f"{WIDTH}x{HEIGHT}", *args],
        env={**os.environ, "DISPLAY": display},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    log = InputLog(process)
    try:
        window = log.wait_ready()
        assert (window["x"], window["y"], window["width"], window["height"]) == (
            0,
            0,
            WIDTH,
            HEIGHT,
        )
        assert time.monotonic() - started < 10
        yield log
    finally:
        process.terminate()
        process.wait(5)


@pytest.fixture
def input_log(xvfb: str) -> Iterator[InputLog]:
    with run_input_logger(xvfb) as log:
        yield log
