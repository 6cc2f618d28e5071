"""structlog configuration: JSON lines that carry the request id."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

import structlog

request_id_var: ContextVar[str | None] = ContextVar("keel_request_id", default=None)

_SECRET_KEYS = frozenset({"secret", "password", "mnemonic", "api_key", "authorization", "token"})


def _add_request_id(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    request_id = request_id_var.get()
    if request_id and "request_id" not in event:
        event["request_id"] = request_id
    return event


def _redact(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    # Defence in depth: a secret passed by mistake is never written out.
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def _current_stderr(*_args: object) -> structlog.PrintLogger:
    # sys.stderr as it is when a line is logged, not when logging was configured: a CLI run
    # under a test runner (or a daemon that reopens its streams) swaps it, and the old stream
    # is closed by then.
    return structlog.PrintLogger(sys.stderr)


def configure(level: str = "INFO", *, json: bool = True) -> None:
    """Configure structlog and the stdlib root logger once per process."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_current_stderr,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
