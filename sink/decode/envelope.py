"""Debezium message → ``Record`` or ``Skip``; anything unreadable → ``DecodeError``.

Entry points:

* :func:`decode_json` — Kafka key/value bytes written by JsonConverter, with or without
  the ``{"schema", "payload"}`` wrapper (detected per message).
* :func:`decode_envelope` — already-parsed key/value payloads plus the optional Connect
  (or Avro) value schema; the Avro path plugs in here.

What is recognised, in order: tombstones (null/empty value, or the old
``{"schema": null, "payload": null}``) → DELETE with the key and no table; heartbeats,
transaction BEGIN/END, relational schema-change records → ``Skip``; envelopes with ``op``
(MongoDB in :mod:`sink.decode.mongo`, relational here); CloudEvents-JSON (relational
envelopes inside ``data``); anything else without ``op`` is an SMT-flattened row
(ExtractNewDocumentState / ExtractNewRecordState, see :mod:`sink.decode.flat`).
Pure: no I/O, no state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from sink.decode import schemaless
from sink.decode.column_types import column_types
from sink.decode.common import (
    DecoderOptions,
    as_int,
    as_name,
    decode_guarded,
    fail,
    parse_message,
    show,
    topic_table,
    unframe,
    utc_from_ms,
)
from sink.decode.connect import convert_row
from sink.decode.flat import decode_flat
from sink.decode.keyless import decode_keyless
from sink.decode.mongo import decode_mongo, mongo_key
from sink.decode.schema import SchemaNode, schema_node
from sink.errors import DecodeError
from sink.records import Kind, Patch, Record, Skip

__all__ = [
    "DecoderOptions",
    "decode_envelope",
    "decode_json",
    "mongo_key",
    "relational_key",
]

_DEFAULT_OPTIONS = DecoderOptions()
_OPS = frozenset({"c", "r", "u", "d", "t", "m"})
_RELATIONAL_CONNECTORS = frozenset(
    {"postgresql", "mysql", "mariadb", "sqlserver", "oracle", "db2", "informix", "spanner"}
)
_HEARTBEAT = "io.debezium.connector.common.Heartbeat"
_TXN_VALUE = "io.debezium.connector.common.TransactionMetadataValue"


def decode_json(
    key: bytes | None,
    value: bytes | None,
    topic: str,
    options: DecoderOptions = _DEFAULT_OPTIONS,
) -> Record | Skip:
    """Decode one Kafka message written by JsonConverter. Raises only ``DecodeError``."""
    return decode_guarded(_decode_json, key, value, topic, options)


def _decode_json(
    key: bytes | None, value: bytes | None, topic: str, options: DecoderOptions, *, exact: bool
) -> Record | Skip:
    key_payload = key_schema = None
    if key:
        try:
            key_payload, key_schema = unframe(parse_message(key, exact))
        except DecodeError as exc:
            raise fail("bad_key" if exc.code == "bad_json" else exc.code, f"key: {exc}") from None
    if not value:
        return _tombstone(key_payload, key_schema, options)
    value_payload, value_schema = unframe(parse_message(value, exact))
    return decode_envelope(
        key_payload, value_payload, value_schema, topic, options, key_schema=key_schema
    )


def decode_envelope(
    key_payload: Any,
    value_payload: Any,
    value_schema: Any,
    topic: str,
    options: DecoderOptions = _DEFAULT_OPTIONS,
    *,
    key_schema: Any = None,
) -> Record | Skip:
    """Decode parsed payloads. ``value_schema``/``key_schema``: Connect schema JSON, an Avro
    schema with ``connect.name`` annotations, a prebuilt :class:`SchemaNode`, or None."""
    if value_payload is None:
        return _tombstone(key_payload, key_schema, options)
    if type(value_payload) is not dict:
        raise fail("bad_envelope", f"value must be a JSON object, got {show(value_payload)}")
    node = schema_node(value_schema)
    name = node.full_name if node is not None else None
    p = value_payload
    if topic.startswith("__debezium-heartbeat") or name == _HEARTBEAT or p.keys() == {"ts_ms"}:
        return Skip("heartbeat")
    op = p.get("op")
    if op is None:
        if name == _TXN_VALUE or (
            p.get("status") in ("BEGIN", "END") and "id" in p and "event_count" in p
        ):
            return Skip("transaction_begin" if p.get("status") == "BEGIN" else "transaction_end")
        if "ddl" in p and ("tableChanges" in p or "databaseName" in p):
            return Skip("schema_change")
        if name is not None and name.endswith("SchemaChangeValue"):
            return Skip("schema_change")
        if "specversion" in p and "data" in p:
            return _cloudevent(key_payload, key_schema, p, topic, options)
        if (name is not None and name.endswith(".Envelope")) or (
            type(p.get("source")) is dict
            and any(k in p for k in ("after", "before", "patch", "updateDescription"))
        ):
            raise fail("missing_op", "change event envelope without an op field")
        return decode_flat(key_payload, key_schema, p, node, topic, options)
    if type(op) is not str or op not in _OPS:
        raise fail("unknown_op", f"unknown op {show(op)}")
    if op == "m":
        return Skip("logical_message")
    try:
        if _is_mongo(p):
            return decode_mongo(key_payload, p, op, topic, options)
        return _decode_relational(key_payload, key_schema, p, node, op, topic, options)
    except DecodeError as exc:
        _name_error(exc, p)
        raise


def _name_error(exc: DecodeError, p: Mapping[str, Any]) -> None:
    """Give a refused change the table its envelope names, for the dead letter's headers."""
    source = p.get("source")
    if exc.schema is not None or type(source) is not dict:
        return
    schema = source.get("schema") or source.get("db")
    table = source.get("table") or source.get("collection")
    if type(schema) is str and type(table) is str and len(schema) + len(table) < 2048:
        exc.schema, exc.table = schema, table


def _tombstone(key_payload: Any, key_schema: Any, options: DecoderOptions) -> Record | Skip:
    """A null value: DELETE for the key; the pipeline resolves the table from the topic.

    No key either: Debezium's tombstone of a DELETE on a table without a primary key
    (nothing names a row, so nothing to delete): a counted skip, never a dead letter.

    A one-field key ``{"id": ...}`` has several readings: a MongoDB Debezium key (the
    extended JSON of the id), an SMT-rewritten MongoDB key (the plain id), or a relational
    ``id`` column. The first that applies is ``key``, the others ``alt_keys``; the table the
    key's records went to decides (its primary key and, if needed, which row exists)."""
    if key_payload is None:
        return Skip("tombstone_without_key")
    forms: list[dict[str, Any]] = []
    single = type(key_payload) is dict and len(key_payload) == 1 and "id" in key_payload
    if single and type(key_payload["id"]) is str:
        with contextlib.suppress(DecodeError):
            forms.append(mongo_key(key_payload, options) or {})
    try:
        forms.append(relational_key(key_payload, key_schema, options) or {})
    except DecodeError:
        if not forms:
            raise
    if single and key_payload["id"] is not None:
        with contextlib.suppress(DecodeError):
            forms.append(mongo_key(key_payload, options, plain=True) or {})
    forms = [f for i, f in enumerate(forms) if f and f not in forms[:i]]
    if not forms:  # pragma: no cover - key_payload is not None here
        raise fail("missing_key", "tombstone without a key")
    return Record(schema=None, table=None, key=forms[0], kind=Kind.DELETE, op="tombstone",
                  alt_keys=tuple(forms[1:]))


def _is_mongo(p: Mapping[str, Any]) -> bool:
    source = p.get("source")
    if type(source) is dict:
        connector = source.get("connector")
        if connector == "mongodb":
            return True
        if type(connector) is str and connector in _RELATIONAL_CONNECTORS:
            return False
        if "collection" in source or "ns" in source:
            return True
    return any(type(p.get(k)) is str for k in ("after", "before", "patch", "filter"))


# --------------------------------------------------------------------------- relational


def relational_key(
    key_payload: Any, key_schema: Any, options: DecoderOptions
) -> dict[str, Any] | None:
    """The record key struct → typed primary-key values (None when the table has no key)."""
    if key_payload is None:
        return None
    if type(key_payload) is not dict or not key_payload:
        raise fail("bad_key", f"record key must be a non-empty struct, got {show(key_payload)}")
    try:
        values, _ = convert_row(key_payload, schema_node(key_schema), options.max_depth)
    except DecodeError as exc:
        raise fail("bad_key", f"key: {exc}") from None
    return values


def _relational_table(
    source: Mapping[str, Any], topic: str, options: DecoderOptions
) -> tuple[str, str]:
    schema = as_name(source.get("schema"), "source.schema") or as_name(
        source.get("db"), "source.db"
    )
    table = as_name(source.get("table"), "source.table")
    if schema is not None and table is not None:
        return schema, table
    found = topic_table(topic, options)
    if found is None:
        raise fail("no_table", "event source names no schema/db and table")
    return found


def _source_ms(source: Mapping[str, Any], payload: Mapping[str, Any]) -> int | None:
    ms = as_int(source.get("ts_ms"), "source.ts_ms")
    if ms is None:
        sec = as_int(source.get("ts_sec"), "source.ts_sec")  # MySQL 0.x
        ms = sec * 1000 if sec is not None else as_int(payload.get("ts_ms"), "ts_ms")
    return ms


def _relational_position(source: Mapping[str, Any], payload: Mapping[str, Any]) -> tuple[int, ...]:
    lsn = as_int(source.get("lsn"), "source.lsn")
    if lsn is not None:
        return (lsn,)
    file, pos = source.get("file"), as_int(source.get("pos"), "source.pos")
    if type(file) is str and pos is not None:
        number = file.rsplit(".", 1)[-1]
        if number.isdigit() and number.isascii() and len(number) <= 18:
            return int(number), pos, as_int(source.get("row"), "source.row") or 0
    ms = _source_ms(source, payload)
    return () if ms is None else (ms,)


def _decode_relational(
    key_payload: Any,
    key_schema: Any,
    p: Mapping[str, Any],
    node: SchemaNode | None,
    op: str,
    topic: str,
    options: DecoderOptions,
) -> Record | Skip:
    source = p.get("source")
    if type(source) is not dict:
        raise fail("bad_envelope", f"source must be a struct, got {show(source)}")
    if op == "t" and options.truncate != "apply":
        return Skip("truncate_ignored")
    schema, table = _relational_table(source, topic, options)
    position = _relational_position(source, p)
    source_ts = utc_from_ms(_source_ms(source, p))
    if op == "t":
        return Record(schema, table, {}, Kind.TRUNCATE, op, position=position, source_ts=source_ts)
    key = relational_key(key_payload, key_schema, options)
    if node is None:  # JsonConverter schemas.enable=false: the writer infers types from values
        row = p.get("after") if type(p.get("after")) is dict else p.get("before")
        schemaless.note(schema, table, topic, row if type(row) is dict else None, key or ())
    if key is None:
        return decode_keyless(p, node, op, schema, table, position, source_ts, options)
    if op == "d":
        return Record(schema, table, key, Kind.DELETE, op, position=position, source_ts=source_ts)
    after = p.get("after")
    if after is None:
        raise fail("missing_after", f"op={op} without an after row")
    if type(after) is not dict:
        raise fail("bad_envelope", f"after must be a struct, got {show(after)}")
    after_node = node.field("after") if node is not None else None
    values, unavailable = convert_row(after, after_node, options.max_depth)
    types = column_types(after_node, list(after))
    if unavailable:  # unchanged TOASTed columns: never write the placeholder
        patch = Patch(set={(col,): v for col, v in values.items()})
        return Record(
            schema, table, key, Kind.PATCH, op, patch=patch, position=position,
            source_ts=source_ts, column_types=types,
        )  # fmt: skip
    return Record(
        schema, table, key, Kind.UPSERT, op, values=values, position=position, source_ts=source_ts,
        column_types=types,
    )


def _cloudevent(
    key_payload: Any,
    key_schema: Any,
    ce: Mapping[str, Any],
    topic: str,
    options: DecoderOptions,
) -> Record | Skip:
    """CloudEventsConverter JSON: ``iodebezium*`` attributes + ``data`` {before, after}."""
    data = ce.get("data")
    if type(data) is not dict:
        raise fail("unsupported_format", "CloudEvents data is not inline JSON (Avro data?)")
    if "payload" in data and "schema" in data:
        data = data["payload"]
        if type(data) is not dict:
            raise fail("bad_envelope", "CloudEvents data payload is not an object")
    attrs = {k[10:]: v for k, v in ce.items() if k.startswith("iodebezium")}
    op = attrs.pop("op", None)
    source = {"ts_ms" if k == "tsms" else k: v for k, v in attrs.items() if not k.startswith("tx")}
    envelope = {**data, "op": op, "source": source}
    return decode_envelope(key_payload, envelope, None, topic, options, key_schema=key_schema)
