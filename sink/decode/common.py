"""Small helpers shared by the decoder modules: options, errors, field coercion, tables,
JsonConverter text, and the guarded run of one decode."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sink.decode.jsontext import InexactNumber, parse_exact, parse_json
from sink.errors import DecodeError
from sink.records import Record, Skip

__all__ = [
    "EPOCH",
    "UNREAD_SOURCE_FIELDS",
    "UTC",
    "DecoderOptions",
    "as_int",
    "as_name",
    "decode_guarded",
    "fail",
    "parse_message",
    "show",
    "table_from_schema_name",
    "topic_table",
    "unframe",
    "utc_from_ms",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Fields of a change event's ``source`` no decoder reads (the table, position and source
# time come from the others): the Avro reader steps over them (sink.decode.avro_reader).
# tests/decode/test_avro_projection.py fails if decoding code starts to read one.
UNREAD_SOURCE_FIELDS = frozenset({
    "version", "name", "snapshot", "sequence", "ts_us", "ts_ns", "lsid", "txnNumber",
    "wallTime", "txId", "xmin", "server_id", "gtid", "thread", "query",
})  # fmt: skip
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Longest accepted JSON string for identifiers and short fields (db/table names, ops).
_NAME_MAX = 1024
_INT_TEXT = re.compile(r"-?[0-9]{1,20}")


@dataclass(frozen=True, slots=True)
class DecoderOptions:
    """How the decoder treats things the message alone cannot decide.

    ``truncate``: ``"apply"`` turns relational ``op=t`` into a TRUNCATE record, anything
    else skips it. ``topic_tables``: topic → (schema, table) for flattened (SMT) records
    that carry neither ``__db``/``__collection`` nor a Connect schema name.
    ``max_depth``: deepest nesting of documents/arrays accepted in a value.
    ``keyless``: what a change to a table without a primary key becomes (``match_before``,
    ``append`` or ``dead_letter``); ``keyless_tables``: the same per source
    ``schema.table``.
    """

    truncate: str = "ignore"
    topic_tables: Mapping[str, tuple[str, str]] = field(default_factory=dict, hash=False)
    keyless: str = "match_before"
    keyless_tables: Mapping[str, str] = field(default_factory=dict, hash=False)
    max_depth: int = 200


def fail(code: str, message: str) -> DecodeError:
    return DecodeError(message, code=code)


def as_int(value: Any, what: str, *, code: str = "bad_envelope") -> int | None:
    """An int64 field: int, or a decimal string (docs print some int64s as strings)."""
    if value is None:
        return None
    n: int
    t = type(value)
    if t is int:
        n = value
    elif (t is str and _INT_TEXT.fullmatch(value)) or (
        t is float and value.is_integer() and abs(value) < 2**53
    ):
        n = int(value)
    elif t is float and abs(value) >= 2**64:  # orjson's float for a >64-bit literal
        raise InexactNumber
    else:
        raise fail(code, f"{what} must be an integer, got {show(value)}")
    if not INT64_MIN <= n <= INT64_MAX:
        raise fail("number_out_of_range", f"{what} {n} is outside the int64 range")
    return n


def as_name(value: Any, what: str) -> str | None:
    """An identifier-like string field (db, collection, table); None or "" → None."""
    if value is None or value == "":
        return None
    if type(value) is not str or len(value) > _NAME_MAX:
        raise fail("bad_envelope", f"{what} must be a string, got {show(value)}")
    return value


def utc_from_ms(ms: int | None) -> datetime | None:
    """Epoch milliseconds → aware UTC datetime; None when unknown or out of range."""
    if ms is None:
        return None
    return _utc_from_ms(ms)


@functools.lru_cache(maxsize=1024)
def _utc_from_ms(ms: int) -> datetime | None:
    # Events of one stream share their source millisecond far more often than not, and
    # datetimes are immutable: the cache saves a datetime per event.
    try:
        return EPOCH + timedelta(0, 0, 0, ms)
    except OverflowError:
        return None


def table_from_schema_name(name: str | None) -> tuple[str, str] | None:
    """``<prefix>.<db>.<coll>`` (optionally ending ``.Value``/``.Envelope``) → (db, coll)."""
    if not name:
        return None
    parts = name.split(".")
    if parts[-1] in ("Value", "Envelope", "Key"):
        parts.pop()
    if len(parts) < 3 or not parts[-2] or not parts[-1]:
        return None
    return parts[-2], parts[-1]


def topic_table(topic: str, options: DecoderOptions) -> tuple[str, str] | None:
    found = options.topic_tables.get(topic)
    if found is None:
        return None
    schema, table = found
    return str(schema), str(table)


def show(value: Any) -> str:
    """A short printable form of a value for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_message(data: bytes, exact: bool) -> Any:
    """JSON message bytes; ``exact``: integers and decimals without loss (slower)."""
    if not exact:
        return parse_json(data)
    parse_json(data)  # the same validation (UTF-8, syntax, depth) as the fast path
    return parse_exact(data, keep_float_text=True)


def unframe(obj: Any) -> tuple[Any, Any]:
    """Strip JsonConverter's ``{"schema", "payload"}`` wrapper when present."""
    if type(obj) is dict and len(obj) == 2 and "payload" in obj and "schema" in obj:
        schema = obj["schema"]
        if schema is None or (type(schema) is dict and "type" in schema):
            return obj["payload"], schema
    return obj, None


def decode_guarded(
    decode: Callable[..., Record | Skip], key: bytes | None, value: bytes | None, *args: Any
) -> Record | Skip:
    """``decode(key, value, *args, exact=False)``, again with ``exact=True`` when a number
    does not fit a double or an int64. Raises only ``DecodeError``: any other failure
    becomes one (``too_deep``, ``internal``). A record gets its size (key + value bytes)."""
    try:
        try:
            result = decode(key, value, *args, exact=False)
        except InexactNumber:
            try:  # a JSON integer beyond 64 bits or a NUMERIC decimal beyond a double
                result = decode(key, value, *args, exact=True)
            except InexactNumber:
                raise fail("number_out_of_range", "a number is too large to decode") from None
    except DecodeError:
        raise
    except RecursionError:
        raise fail("too_deep", "message nested too deeply") from None
    except Exception as exc:  # defensive: a bug here must not escape as another type
        raise fail("internal", f"decoder failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(result, Record):
        result.size = len(key or b"") + len(value or b"")
        schema, table = result.schema, result.table
        # Inline: this runs for every record; names are nearly always plain ASCII.
        if not ((schema is None or (schema.isascii() and "\x00" not in schema))
                and (table is None or (table.isascii() and "\x00" not in table))):
            _check_name(schema, "schema")
            _check_name(table, "table")
    return result


def _check_name(name: str | None, what: str) -> None:
    """A name PostgreSQL cannot hold (NUL, or text that is not valid Unicode, such as a
    lone surrogate) is the record's fault: a dead letter here, before it reaches any SQL
    (the table registry, the topic memory, DDL)."""
    if name is None or ("\x00" not in name and _utf8(name)):
        return
    raise fail("bad_identifier", f"the {what} name {show(name)} cannot be a PostgreSQL "
                                 "identifier (NUL or invalid Unicode)")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
