"""Rows flattened by Debezium's SMTs → ``Record``.

ExtractNewDocumentState (MongoDB) and ExtractNewRecordState (relational) replace the
envelope by the row itself, optionally with metadata fields (``add.fields``, prefix
``__``): ``__op``, ``__deleted`` (boolean from the MongoDB SMT, string ``"true"`` from the
relational one), ``__db``, ``__collection``/``__table``, ``__source_ts_ms``, ... Those
never become columns. Everything else is a column as the SMT shaped it: ``flatten.struct``
names (``a_b``) are kept verbatim, and ``array.encoding=document`` arrays stay the
``{"_0": .., "_1": ..}`` documents the user configured.

Table: ``__db``/``__collection`` (or ``__schema``/``__table``) when present, else the
Connect schema name ``<prefix>.<db>.<coll>``, else ``options.topic_tables``; else the
record is a ``DecodeError(code="no_table")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sink.decode import extjson, schemaless
from sink.decode.common import (
    DecoderOptions,
    as_int,
    as_name,
    fail,
    show,
    table_from_schema_name,
    topic_table,
    utc_from_ms,
)
from sink.decode.connect import convert_row
from sink.decode.schema import SchemaNode, schema_node
from sink.errors import DecodeError
from sink.records import Kind, Patch, Record, Skip

# Envelope and source fields the SMTs can add as "__<field>" / "__source_<field>".
_META_NAMES = frozenset(
    {
        "op", "ts_ms", "ts_us", "ts_ns", "deleted", "db", "collection", "table", "schema",
        "rs", "ord", "h", "tord", "stxnid", "lsid", "txnNumber", "wallTime", "version",
        "connector", "name", "snapshot", "sequence", "lsn", "txId", "xmin", "server_id",
        "gtid", "file", "pos", "row", "thread", "query",
    }
)  # fmt: skip
_META_PREFIXES = ("__source_", "__transaction_", "__updateDescription_")


def is_metadata(field: str) -> bool:
    """True for SMT metadata fields (``__op``, ``__source_ts_ms``...), never a user ``__v``."""
    return field[:2] == "__" and (field[2:] in _META_NAMES or field.startswith(_META_PREFIXES))


def decode_flat(
    key_payload: Any,
    key_schema: Any,
    row: Mapping[str, Any],
    node: SchemaNode | None,
    topic: str,
    options: DecoderOptions,
) -> Record | Skip:
    meta = {k: v for k, v in row.items() if is_metadata(k)}
    fields = {k: v for k, v in row.items() if k not in meta} if meta else dict(row)
    deleted = meta.get("__deleted")
    if deleted not in (None, True, False, "true", "false"):
        raise fail(
            "bad_envelope", f"__deleted must be a boolean or 'true'/'false': {show(deleted)}"
        )
    is_delete = deleted is True or deleted == "true"
    mongo = (
        "_id" in fields
        or "__collection" in meta
        or type(deleted) is bool
        or (_single_id_key(key_payload) and "id" not in fields)
    )
    schema, table = _table(meta, node, topic, options)
    op = meta.get("__op")
    if op not in ("c", "r", "u", "d"):
        op = "d" if is_delete else "u"
    ts = as_int(meta.get("__source_ts_ms"), "__source_ts_ms")
    if mongo:
        order = as_int(meta.get("__source_ord", meta.get("__ord")), "__source_ord") or 0
        position: tuple[int, ...] = (ts, order, 0) if ts is not None else ()
        key = _mongo_key(key_payload, fields)
    else:
        lsn = as_int(meta.get("__lsn", meta.get("__source_lsn")), "__lsn")
        position = (lsn,) if lsn is not None else ((ts,) if ts is not None else ())
        key = _relational_key(key_payload, key_schema, options)
        if node is None:  # schemas.enable=false: the writer infers types from values
            schemaless.note(schema, table, topic, fields, key)

    def record(kind: Kind, **kw: Any) -> Record:
        return Record(
            schema=schema, table=table, key=key, kind=kind, op=op, position=position,
            source_ts=utc_from_ms(ts), **kw,
        )  # fmt: skip

    if is_delete:
        return record(Kind.DELETE)
    values, unavailable = convert_row(fields, node, options.max_depth, aware=mongo)
    if mongo:
        values["_id"] = key["_id"]
    if unavailable:
        return record(Kind.PATCH, patch=Patch(set={(c,): v for c, v in values.items()}))
    return record(Kind.UPSERT, values=values)


def _single_id_key(key_payload: Any) -> bool:
    return type(key_payload) is dict and len(key_payload) == 1 and "id" in key_payload


def _mongo_key(key_payload: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    if _single_id_key(key_payload) and key_payload["id"] is not None:
        return {"_id": extjson.canonical_key_text(key_payload["id"], plain=True)}
    if key_payload is not None:
        raise fail("bad_key", f'flattened MongoDB key must be {{"id": ...}}: {show(key_payload)}')
    if fields.get("_id") is None:
        raise fail("missing_key", "flattened MongoDB record without a key or an _id")
    return {"_id": extjson.canonical_key_text(fields["_id"], plain=True)}


def _relational_key(key_payload: Any, key_schema: Any, options: DecoderOptions) -> dict[str, Any]:
    if type(key_payload) is not dict or not key_payload:
        if key_payload is None:
            raise fail("missing_key", "flattened record without a record key")
        raise fail("bad_key", f"record key must be a non-empty struct, got {show(key_payload)}")
    try:
        return convert_row(key_payload, schema_node(key_schema), options.max_depth)[0]
    except DecodeError as exc:
        raise fail("bad_key", f"key: {exc}") from None


def _table(
    meta: Mapping[str, Any], node: SchemaNode | None, topic: str, options: DecoderOptions
) -> tuple[str, str]:
    schema = as_name(meta.get("__schema"), "__schema") or as_name(meta.get("__db"), "__db")
    table = as_name(meta.get("__collection"), "__collection") or as_name(
        meta.get("__table"), "__table"
    )
    if schema is not None and table is not None:
        return schema, table
    found = table_from_schema_name(node.full_name if node is not None else None)
    if found is None:
        found = topic_table(topic, options)
    if found is None:
        raise fail("no_table", f"flattened record on {topic!r}: no __db/__collection, "
                   "no Connect schema name and no topic_tables entry")  # fmt: skip
    return found
