"""Run a command in a network namespace of its own that has only loopback (lo up, plus the
alias 127.0.0.2, which aioice gathers as a host candidate; it drops 127.0.0.1 itself). No
packet can leave it and no candidate is gathered on the machine's real interfaces.

Used by the WebRTC tests and ``bench/pairux_fanout.py``: the parent re-executes a small script
under ``unshare -n`` (``-rn`` when not root) and reads the JSON it prints last.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

_SETUP = 'ip link set lo up && ip addr add 127.0.0.2/8 dev lo && exec "$@"'


def _unshare_flags() -> list[str] | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    for flags in (["-n"], ["-rn"]):
        probe = subprocess.run(
            ["unshare", *flags, "sh", "-c", "ip link set lo up"],
            capture_output=True,
            check=False,
            timeout=10,
        )
        if probe.returncode == 0:
            return flags
    return None


def available() -> bool:
    """True when this machine lets us create a network namespace."""
    return _unshare_flags() is not None


def only_loopback() -> bool:
    """True inside such a namespace: the only interface is ``lo``."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def run_isolated(argv: Sequence[str], timeout: float, stream_stderr: bool = False) -> Any:
    """Run ``argv`` in a fresh loopback-only namespace; return the JSON of its last stdout
    line. Raises RuntimeError with its stderr if it fails or prints no JSON."""
    flags = _unshare_flags()
    if flags is None:
        raise RuntimeError("cannot create a network namespace (unshare -n / -rn)")
    command = ["unshare", *flags, "sh", "-c", _SETUP, "sh", *argv]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        command,
        stdout=subprocess.PIPE,
        stderr=None if stream_stderr else subprocess.PIPE,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("{", "["))]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{argv!r} exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
            f"stderr:\n{(proc.stderr or '')[-4000:]}"
        )
    return json.loads(lines[-1])


def python_command(module: str, *args: str) -> list[str]:
    """``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
