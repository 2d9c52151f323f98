"""structlog set-up: JSON lines when the stream is not a terminal, coloured console output
when it is; level and format from ``observability``. Standard-library loggers (aiokafka,
asyncpg) are rendered the same way, so stderr stays one JSON object per line.

Secrets are scrubbed from every line: the values registered by ``load_settings``
(passwords, tokens, the DSN's password) wherever they appear, plus anything shaped like
``scheme://user:password@`` or ``password=...``.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

MASK = "***"
_SECRET_PATTERNS = [
    # user:password@ in URLs and DSNs (greedy: a password may itself hold '@')
    (re.compile(r"(://[^:/@\s'\"]*:)([^\s'\"]*)(@)"), rf"\g<1>{MASK}\g<3>"),
    # password=..., sasl_password=..., ?password=...
    (re.compile(r"(?i)([\w.-]*(?:password|passwd|pwd|token|secret)[\w-]*=)([^\s,;&'\"}]+)"),
     rf"\g<1>{MASK}"),
    # "password": "...", 'token': '...' (JSON and Python reprs)
    (re.compile(r"(?i)([\"'][\w.-]*(?:password|passwd|pwd|token|secret)[\w-]*[\"']\s*:\s*[\"']?)"
                r"([^\s,;&'\"}]+)"), rf"\g<1>{MASK}"),
]
_SECRET_KEYS = re.compile(r"(?i)password|passwd|token|secret|connection_string|dsn")
_MIN_SECRET_LEN = 4  # shorter values would mask ordinary words; the patterns still apply
_secrets: list[str] = []
_word_secrets: list[re.Pattern[str]] = []
_HANDLER_NAME = "warp-sink"


def register_secrets(*values: str) -> None:
    """Values that must never be printed (``load_settings`` registers the config's)."""
    known = set(_secrets) | {p.pattern[len(_B):-len(_E)] for p in _word_secrets}
    known.update(v for v in values if v and len(v) >= _MIN_SECRET_LEN)
    ordered = sorted(known, key=len, reverse=True)  # longest first: no partial leftovers
    # A secret that is a plain word ("password", "changeme") is masked as a whole word
    # only, so that "schema_registry_password" stays readable; any other is masked
    # wherever it appears.
    _secrets[:] = [v for v in ordered if not v.isalpha()]
    _word_secrets[:] = [re.compile(_B + re.escape(v) + _E) for v in ordered if v.isalpha()]


_B, _E = r"(?<![A-Za-z0-9_])", r"(?![A-Za-z0-9_])"


def clear_secrets() -> None:
    _secrets.clear()
    _word_secrets.clear()


def scrub(text: str) -> str:
    """``text`` with every registered secret and every password-shaped value masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for word in _word_secrets:
        text = word.sub(MASK, text)
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _scrub_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        return MASK if _SECRET_KEYS.search(key) and "://" not in value else scrub(value)
    if isinstance(value, BaseException):
        return scrub(f"{type(value).__name__}: {value}")
    if isinstance(value, dict):
        return {k: _scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub_value(key, v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))


def scrub_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every value of the event."""
    for key, value in list(event.items()):
        if key == "_record" or key == "_from_structlog":
            continue
        event[key] = _scrub_value(key, value)
    return event


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # closed stream
        return False


def _level(level: str) -> int:
    value = logging.getLevelName(level.upper())
    return value if isinstance(value, int) else logging.INFO


class CurrentStderr:
    """Whatever ``sys.stderr`` is at the moment of writing (it may be replaced after
    configuration, e.g. by a test runner's capture, and the old one closed)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def fileno(self) -> int:
        return sys.stderr.fileno()


def configure(fmt: str = "auto", level: str = "info", stream: Any = None) -> None:
    """Set up structlog and the standard-library root logger to write to ``stream``
    (default stderr): ``fmt`` ``json``, ``console`` or ``auto`` (console on a terminal)."""
    out: Any = stream if stream is not None else CurrentStderr()
    fmt = fmt.lower()
    tty = _is_tty(out)
    use_json = fmt == "json" or (fmt != "console" and not tty)
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if use_json
        else structlog.dev.ConsoleRenderer(
            colors=tty, exception_formatter=structlog.dev.plain_traceback)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.ExtraAdder(allow=("repeated",)),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks become text before scrubbing, in both formats (a console renderer's own
    # exception formatting would bypass it).
    tail: list[Any] = [structlog.processors.format_exc_info]
    structlog.configure(
        processors=[*shared, *tail, scrub_event, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_level(level)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Standard-library loggers (aiokafka, asyncpg): same renderer, same scrubbing. Their
    # INFO chatter is kept out unless the sink itself logs at debug.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tail,
            scrub_event,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    handler.addFilter(_expected_transients)
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    stdlib_level = _level(level)
    root.setLevel(logging.INFO if stdlib_level <= logging.DEBUG else
                  max(stdlib_level, logging.WARNING))


# aiokafka reports these at ERROR although they are routine while a group or topic is
# being created, or a broker restarts; the client retries them itself.
_ROUTINE = ("GroupCoordinatorNotAvailableError", "NodeNotReadyError",
            "not found in cluster metadata", "NotCoordinatorForGroupError",
            "Marking the coordinator dead")


def _expected_transients(record: logging.LogRecord) -> bool:
    if record.name.startswith("aiokafka") and record.levelno >= logging.WARNING:
        text = record.getMessage()
        if any(marker in text for marker in _ROUTINE):
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger().isEnabledFor(logging.INFO)  # shown at debug level
    return True


REPEAT_INTERVAL_S = 10.0


class RepeatLimiter(logging.Filter):
    """One line per ``interval`` for each repeated warning of a library logger.

    While a broker is down, aiokafka retries every node several times a second and logs
    each failure ("Unable connect to node ...": about 50 lines a second). A line counts
    as a repeat when its logger and message template (before the arguments are filled
    in) match an earlier one; the first is printed, the next ``interval`` seconds of
    repeats are held back, and the first line after that carries ``repeated``: how many
    were held back meanwhile."""

    def __init__(self, interval: float = REPEAT_INTERVAL_S) -> None:
        super().__init__()
        self.interval = interval
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # -> [printed at, held]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.repeated = int(seen[1])
        if len(self._seen) > 1000:  # templates are few; this only bounds a pathological case
            self._seen.clear()
        self._seen[key] = [now, 0]
        return True


def quiet(names: Iterable[str], level: int = logging.CRITICAL) -> dict[str, int]:
    """Raise the threshold of some standard-library loggers (e.g. aiokafka in ``check``);
    returns their previous levels, for :func:`restore`."""
    previous = {}
    for name in names:
        logger = logging.getLogger(name)
        previous[name] = logger.level
        logger.setLevel(level)
    return previous


def restore(levels: dict[str, int]) -> None:
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
