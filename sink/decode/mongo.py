"""MongoDB Debezium envelopes (every generation) → ``Record``.

* 0.x / 1.x oplog: ``after`` for r/c, ``patch`` (``$set``/``$unset`` or a whole new
  document) for u, nothing or ``filter`` for d. Source ``ns``/``sec`` (0.x) or
  ``db``/``collection``/``ts_ms``.
* 1.8+ change streams: ``after`` (full document, the latest state) and/or
  ``updateDescription`` (updatedFields JSON text, removedFields, truncatedArrays); 2.x+
  ``before`` pre-images are ignored for values.

The document id comes from the Kafka key (``{"id": "<extended JSON>"}``, either the
pre-1.4 or the 1.4+ rendering, or an SMT-rewritten ``{"id": <plain value>}``); without a
key (``warp-sink decode`` with no ``--key``), from a legacy oplog event's ``filter`` or the
document's own ``_id``. It is canonicalised with
:func:`sink.decode.extjson.canonical_key_text`; the ``_id`` column of every upserted
document is set to that same text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sink.decode import docjson, extjson
from sink.decode.common import DecoderOptions, as_int, as_name, fail, show, topic_table, utc_from_ms
from sink.errors import DecodeError
from sink.records import IdText, Kind, Patch, Path, Record, Skip

# {"$oid": "<24 hex>"} as Debezium renders an ObjectId key (any JSON whitespace).
_OID_KEY = re.compile(r'[ \t\n\r]*\{[ \t\n\r]*"\$oid"[ \t\n\r]*:[ \t\n\r]*'
                      r'"([0-9a-fA-F]{24})"[ \t\n\r]*\}[ \t\n\r]*')


def mongo_key(
    key_payload: Any, options: DecoderOptions, *, plain: bool = False
) -> dict[str, Any] | None:
    """The Kafka key → ``{"_id": canonical text}``; None when the message has no key.

    ``plain``: the key was rewritten by ExtractNewDocumentState (``{"id": <plain value>}``,
    an ObjectId as its hex string) rather than holding the extended-JSON text of the id.
    """
    if key_payload is None:
        return None
    if type(key_payload) is not dict or len(key_payload) != 1 or "id" not in key_payload:
        raise fail("bad_key", f'MongoDB key must be {{"id": ...}}, got {show(key_payload)}')
    raw = key_payload["id"]
    typed = type(raw) is str and not plain
    if typed:
        m = _OID_KEY.fullmatch(raw)
        if m is not None:  # the usual id, an ObjectId: no need for the general parser
            return {"_id": IdText(m.group(1).lower())}
        try:
            value = extjson.loads(raw, max_depth=options.max_depth)
        except DecodeError as exc:
            raise fail("bad_key", f"key id is not extended JSON: {exc}") from None
    elif raw is None:
        raise fail("bad_key", "MongoDB key id is null")
    else:  # ExtractNewDocumentState rewrote the key to {"id": <plain value>}
        value = raw
    return {"_id": extjson.canonical_key_text(value, plain=not typed)}


def _document(
    text: Any, what: str, options: DecoderOptions, *, row: bool = False
) -> dict[str, Any]:
    """``row``: the document is a row image, its sub-documents become jsonb as `DocText`."""
    if type(text) is not str:
        raise fail("bad_envelope", f"{what} must be a JSON string, got {show(text)}")
    try:
        if row:
            doc = docjson.loads_document(text, max_depth=options.max_depth)
        else:
            doc = extjson.loads(text, max_depth=options.max_depth)
    except DecodeError as exc:
        raise fail(exc.code, f"{what}: {exc}") from None
    if type(doc) is not dict:
        raise fail("bad_envelope", f"{what} must hold a JSON document, got {show(doc)}")
    return doc


def _path(dotted: Any, what: str) -> Path:
    if type(dotted) is not str or not dotted:
        raise fail("bad_envelope", f"{what} path must be a non-empty string, got {show(dotted)}")
    return tuple(dotted.split("."))


def _table(source: Mapping[str, Any], topic: str, options: DecoderOptions) -> tuple[str, str]:
    db = as_name(source.get("db"), "source.db")
    coll = as_name(source.get("collection"), "source.collection")
    if db is None or coll is None:
        ns = as_name(source.get("ns"), "source.ns")  # 0.x: "db.collection"
        if ns is not None and "." in ns.strip("."):
            db, coll = ns.split(".", 1)
    if db is not None and coll is not None:
        return db, coll
    found = topic_table(topic, options)
    if found is None:
        raise fail("no_table", "MongoDB event has no source.db/source.collection (nor ns)")
    return found


def _position(payload: Mapping[str, Any], source: Mapping[str, Any]) -> tuple[int, int, int]:
    ts = as_int(source.get("ts_ms"), "source.ts_ms")
    if ts is None:
        sec = as_int(source.get("sec"), "source.sec")
        if sec is None:
            raise fail("bad_envelope", "MongoDB source has neither ts_ms nor sec")
        ts = sec * 1000
    order = as_int(source.get("ord"), "source.ord") or 0
    txn = payload.get("transaction")
    total = 0
    if isinstance(txn, dict):
        total = as_int(txn.get("total_order"), "transaction.total_order") or 0
    elif txn is not None:
        raise fail("bad_envelope", f"transaction must be a struct, got {show(txn)}")
    return ts, order, total


def decode_mongo(
    key_payload: Any, payload: Mapping[str, Any], op: str, topic: str, options: DecoderOptions
) -> Record | Skip:
    source = payload.get("source")
    if type(source) is not dict:
        raise fail("bad_envelope", f"source must be a struct, got {show(source)}")
    schema, table = _table(source, topic, options)
    position = _position(payload, source)
    key = mongo_key(key_payload, options)

    def record(kind: Kind, key: dict[str, Any], **kw: Any) -> Record:
        return Record(
            schema=schema, table=table, key=key, kind=kind, op=op, position=position,
            source_ts=utc_from_ms(position[0]), **kw,
        )  # fmt: skip

    if key is None:  # no Kafka key (warp-sink decode without --key): a legacy oplog filter
        key = _filter_key(payload.get("filter"), options)
    if op == "d":
        if key is None:
            raise fail("missing_key", "MongoDB delete without a Kafka key (the id is only there)")
        return record(Kind.DELETE, key)
    if op in ("c", "r"):
        after = payload.get("after")
        if after is None:
            raise fail("missing_after", f"MongoDB op={op} without an after document")
        return _upsert(record, key, _document(after, "after", options, row=True))
    if op == "u":
        after = payload.get("after")
        if after is not None:  # full document (update_full / replace): the latest state
            return _upsert(record, key, _document(after, "after", options, row=True))
        desc = payload.get("updateDescription")
        if desc is not None:
            patch = _description_patch(desc, options)
        elif payload.get("patch") is not None:
            doc = _document(payload["patch"], "patch", options)
            if not any(k[:1] == "$" for k in doc):  # oplog replacement: the whole document
                return _upsert(record, key, doc)
            patch = _oplog_patch(doc)
        else:  # change_streams lookup failed (after=null) and nothing else to apply
            return Skip("update_without_content")
        if patch.is_empty():
            return Skip("empty_update")
        if key is None:
            raise fail("missing_key", "MongoDB partial update without a Kafka key")
        return record(Kind.PATCH, key, patch=patch)
    raise fail("unknown_op", f"MongoDB events have no op={op!r}")


def _filter_key(text: Any, options: DecoderOptions) -> dict[str, Any] | None:
    """``{"_id": text}`` from a legacy oplog event's ``filter`` (the oplog's ``o2``,
    ``{"_id": <id>}``), or None when there is none."""
    if text is None:
        return None
    doc = _document(text, "filter", options)
    if "_id" not in doc:
        return None
    return {"_id": extjson.canonical_key_text(doc["_id"])}


def _upsert(make: Any, key: dict[str, Any] | None, doc: dict[str, Any]) -> Record:
    if key is None:  # no Kafka key (unusual producer): fall back to the document's _id
        if "_id" not in doc:
            raise fail("missing_key", "MongoDB event has neither a Kafka key nor an _id")
        key = {"_id": extjson.canonical_key_text(doc["_id"])}
    if "_id" in doc:
        doc["_id"] = key["_id"]
    else:
        doc = {"_id": key["_id"], **doc}
    rec: Record = make(Kind.UPSERT, key, values=doc)
    return rec


def _description_patch(desc: Any, options: DecoderOptions) -> Patch:
    if type(desc) is not dict:
        raise fail("bad_envelope", f"updateDescription must be a struct, got {show(desc)}")
    patch = Patch()
    truncated = desc.get("truncatedArrays")
    if truncated is not None:
        if type(truncated) is not list:
            raise fail("bad_envelope", "updateDescription.truncatedArrays must be an array")
        for item in truncated:
            if type(item) is not dict:
                raise fail("bad_envelope", f"truncatedArrays entry {show(item)} is not a struct")
            size = as_int(item.get("size"), "truncatedArrays.size")
            if size is None or size < 0:
                raise fail("bad_envelope", f"truncatedArrays size must be >= 0: {show(item)}")
            patch.truncate[_path(item.get("field"), "truncatedArrays")] = size
    updated = desc.get("updatedFields")
    if updated is not None:
        for dotted, value in _document(updated, "updatedFields", options).items():
            patch.set[_path(dotted, "updatedFields")] = value
    removed = desc.get("removedFields")
    if removed is not None:
        if type(removed) is not list:
            raise fail("bad_envelope", "updateDescription.removedFields must be an array")
        patch.unset.extend(_path(p, "removedFields") for p in removed)
    return patch


def _oplog_patch(doc: dict[str, Any]) -> Patch:
    patch = Patch()
    for op, arg in doc.items():
        if op == "$v":
            if arg not in (1, "1"):
                raise fail("unsupported_patch", f"oplog update format $v={show(arg)}")
        elif op == "$set" or op == "$unset":
            if type(arg) is not dict:
                raise fail("bad_envelope", f"oplog {op} must be a document, got {show(arg)}")
            for dotted, value in arg.items():
                if op == "$set":
                    patch.set[_path(dotted, "$set")] = value
                else:
                    patch.unset.append(_path(dotted, "$unset"))
        else:
            raise fail("unsupported_patch", f"oplog patch operator {op!r} is not supported")
    return patch
