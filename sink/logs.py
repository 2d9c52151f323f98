"""structlog set-up: JSON lines when not on a terminal, console on one; secrets scrubbed."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_PATTERNS = [
    re.compile(r"(://[^:/@\s]*:)([^@\s]+)(@)"),  # user:password@ in URLs / DSNs
    re.compile(r"(?i)((?:password|passwd|pwd|token|secret)\s*[=:]\s*)([^\s,;&'\"]+)"),
]


def scrub(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***\3" if pattern.groups == 3 else r"\1***", text)
    return text


def _scrub_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = scrub(value)
        elif isinstance(value, BaseException):
            event[key] = scrub(repr(value))
    return event


def configure(fmt: str = "auto", level: str = "info", stream: Any = None) -> None:
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=out)
