"""Log lines go to the stderr of the moment, so a stream swapped and closed (a CLI run under a
test runner, a daemon reopening its streams) never breaks logging later."""

from __future__ import annotations

import io
import sys

import pytest

from keel.core import logging as keel_logging


def test_logging_after_the_configured_stream_closed_writes_to_the_current_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary = io.StringIO()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", temporary)
        keel_logging.configure("INFO", json=True)
    temporary.close()
    keel_logging.get_logger("test").warning("still_logging", secret="hunter2")
    line = capsys.readouterr().err
    assert "still_logging" in line
    assert "hunter2" not in line
