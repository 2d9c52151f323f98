"""``warp-sink decode``: show what the sink would do with one Kafka message.

    warp-sink decode [--key-format json|avro|string] [--value-format json|avro]
                     [--registry URL] [--topic T] [--key FILE] VALUE_FILE

``VALUE_FILE`` holds the message value bytes exactly as on Kafka (``-`` reads stdin; an
empty file is a tombstone); ``--key FILE`` the key bytes. Without ``--key``, a MongoDB
document's id comes from the event itself: the full document's ``_id``, or the ``filter``
of a legacy (1.x oplog) update or delete. Avro needs ``--registry`` (or
``WARP__SOURCE__SCHEMA_REGISTRY_URL``); registry credentials come from
``WARP__SOURCE__SCHEMA_REGISTRY_USERNAME`` / ``_PASSWORD`` / ``_TOKEN`` / ``_CAFILE``, never
from the command line.

Prints one JSON object: ``op`` (``c``/``r``/``u``/``d``/``tombstone``, or ``skip`` with a
``reason``), ``action`` (upsert/patch/delete/truncate), ``schema``, ``table``, ``key``,
``values`` and their PostgreSQL ``types``, ``patch`` (``set``/``unset``/``truncate`` by
dotted path) for partial updates, ``source_position`` and ``source_ts``. Values are
rendered as JSON: timestamps ISO-8601 (with their offset when they have a zone),
decimals as strings, bytes as base64, UUIDs as text, intervals as ISO-8601 durations.
Exit 0; 1 with ``{"error": code, "message": ...}`` when the message cannot be decoded or
the registry cannot be reached; 2 for usage errors (unreadable file, missing registry).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import math
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import structlog

from sink.decode import KEY_FORMATS, VALUE_FORMATS, DecoderOptions, MessageDecoder, SchemaRegistry
from sink.errors import ConfigError, WarpError
from sink.logs import CurrentStderr, scrub
from sink.postgres import natural_type
from sink.records import (
    BitString,
    DocText,
    JsonText,
    Path,
    Point,
    Record,
    Skip,
    TemporalText,
)

__all__ = ["add_parser", "describe", "main", "render"]

_ENV = "WARP__SOURCE__SCHEMA_REGISTRY_"


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key-format", choices=sorted(KEY_FORMATS), default="json",
                   help="how the key bytes are written (default json)")
    p.add_argument("--value-format", choices=sorted(VALUE_FORMATS), default="json",
                   help="how the value bytes are written (default json)")
    p.add_argument("--registry", metavar="URL",
                   help="schema registry URL for avro (default $WARP__SOURCE__SCHEMA_REGISTRY_URL)")
    p.add_argument("--topic", default="", help="the topic the message came from")
    p.add_argument("--key", metavar="FILE", help="a file with the key bytes")
    p.add_argument("value_file", metavar="VALUE_FILE",
                   help="a file with the value bytes ('-' reads stdin; empty = tombstone)")


def add_parser(subparsers: Any) -> None:
    """Register ``decode`` on the ``warp-sink`` sub-command parsers (``fn`` = :func:`main`)."""
    p = subparsers.add_parser("decode", help="show what the sink would do with one message",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(p)
    p.set_defaults(fn=main)


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run ``decode``; ``args`` is the parsed namespace, or an argv list (tests, scripts)."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="warp-sink decode")
        _arguments(parser)
        args = parser.parse_args(None if args is None else list(args))
    try:
        value = _read(args.value_file)
        key = _read(args.key) if args.key else None
        decoder = _decoder(args)
    except ConfigError as exc:
        _emit({"error": "usage", "message": scrub(str(exc))})
        return 2
    try:
        with _logs_to_stderr():
            out = asyncio.run(decoder.decode(key or None, value or None, args.topic or ""))
    except WarpError as exc:
        _emit({"error": exc.code, "message": scrub(str(exc))})
        return 1
    _emit(describe(out))
    return 0


@contextlib.contextmanager
def _logs_to_stderr() -> Iterator[None]:
    """Registry retry warnings go to stderr while decoding; the previous set-up returns."""
    saved = structlog.get_config()
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )  # fmt: skip
    try:
        yield
    finally:
        structlog.configure(**saved)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


def _decoder(args: argparse.Namespace) -> MessageDecoder:
    registry = None
    if "avro" in (args.key_format, args.value_format):
        url = args.registry or os.environ.get(_ENV + "URL")
        if not url:
            raise ConfigError("avro needs --registry URL (or WARP__SOURCE__SCHEMA_REGISTRY_URL)")
        registry = SchemaRegistry(
            url,
            username=os.environ.get(_ENV + "USERNAME") or None,
            password=os.environ.get(_ENV + "PASSWORD") or None,
            token=os.environ.get(_ENV + "TOKEN") or None,
            cafile=os.environ.get(_ENV + "CAFILE") or None,
            attempts=3,
            not_found_attempts=1,
        )
    return MessageDecoder(DecoderOptions(), args.key_format, args.value_format, registry)


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def _dotted(path: Path) -> str:
    return ".".join(path)


def describe(out: Record | Skip) -> dict[str, Any]:
    """The JSON-ready description of a decoded message (what ``decode`` prints)."""
    if isinstance(out, Skip):
        return {"op": "skip", "reason": out.reason}
    desc: dict[str, Any] = {
        "op": out.op,
        "action": out.kind.value,
        "schema": out.schema,
        "table": out.table,
        "key": render(out.key),
    }
    if out.values is not None:
        desc["values"] = render(out.values)
        hints = out.column_types or {}
        desc["types"] = {col: hints.get(col) or natural_type(v) for col, v in out.values.items()}
    if out.patch is not None:
        p = out.patch
        desc["patch"] = {
            "set": {_dotted(k): render(v) for k, v in p.set.items()},
            "unset": [_dotted(k) for k in p.unset],
            "truncate": {_dotted(k): n for k, n in p.truncate.items()},
        }
        # a top-level path sets a column; a deeper one sets a value inside a jsonb column
        desc["types"] = {
            _dotted(k): natural_type(v) if len(k) == 1 else "jsonb" for k, v in p.set.items()
        }
    desc["source_position"] = list(out.position)
    desc["source_ts"] = render(out.source_ts)
    return desc


def render(v: Any) -> Any:
    """A decoded value as JSON: see the module doc for the conventions."""
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, str):  # ObjectId and other str subclasses
        return str(v)
    if isinstance(v, float):
        if math.isfinite(v):
            return float(v)
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, timedelta):
        return _duration(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, BitString):
        return v.bits
    if isinstance(v, Point):
        return {"x": render(v.x), "y": render(v.y)}
    if isinstance(v, JsonText):  # shown parsed; written to jsonb as its exact text
        return json.loads(v.text)
    if isinstance(v, DocText):  # a MongoDB sub-document, shown as its jsonb rendering
        return json.loads(v.text)
    if isinstance(v, TemporalText):  # BC, past 9999, ±infinity, 24:00:00: PostgreSQL's text
        return v.text
    if isinstance(v, dict):
        return {str(k): render(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [render(x) for x in v]
    return str(v)


def _duration(td: timedelta) -> str:
    """ISO-8601 duration: ``P1DT2H3M4.5S`` (``-P...`` when negative)."""
    us = td // timedelta(microseconds=1)
    sign = "-" if us < 0 else ""
    us = abs(us)
    days, us = divmod(us, 86_400_000_000)
    secs, micro = divmod(us, 1_000_000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    sec = f"{s}.{micro:06d}".rstrip("0").rstrip(".") if micro else str(s)
    out = f"{sign}P{days}D" if days else f"{sign}P"
    if h or m or s or micro or not days:
        out += "T" + (f"{h}H" if h else "") + (f"{m}M" if m else "")
        out += f"{sec}S" if (s or micro or not (h or m)) else ""
    return out
