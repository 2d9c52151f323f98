"""SMT-flattened rows (ExtractNewDocumentState / ExtractNewRecordState): encodings,
metadata fields and rewritten deletes."""

from __future__ import annotations

import json

import orjson

from sink.records import DocText, Kind
from tests.decode.support import (
    OID,
    TOPIC,
    dumps,
    error,
    fx,
    mkey,
    mongo_event,
    ms,
    record,
)

# --------------------------------------------------------------------------- SMT-flattened rows


def test_extract_new_document_state_array_encoding() -> None:
    doc = json.loads(
        fx("debezium-mongodb/smt-extract-new-document-state/array_encoding.input_document.json")
    )
    out = json.loads(
        fx("debezium-mongodb/smt-extract-new-document-state/array_encoding_document.output.json")
    )
    raw = record(mongo_event("c", after=json.dumps(doc)), mkey("1"))
    # The sub-document as the writer stores it (docjson): its jsonb text.
    a1 = DocText(orjson.dumps(doc["a1"]).decode())
    assert raw.values == {"_id": '{"$numberLong":"1"}', "a1": a1}
    flat = record(dumps(out), dumps({"id": 1}), topic_tables={TOPIC: ("inventory", "customers")})
    assert (flat.kind, flat.key) == (Kind.UPSERT, {"_id": '{"$numberLong":"1"}'})
    assert flat.values == {
        "_id": '{"$numberLong":"1"}',
        "a1": {"_0": {"a": 1, "b": "none"}, "_1": {"a": "c", "d": "something"}},
    }
    assert (flat.schema, flat.table) == ("inventory", "customers")


def test_extract_new_document_state_flatten_struct() -> None:
    doc = json.loads(
        fx("debezium-mongodb/smt-extract-new-document-state/flatten_struct.input_document.json")
    )
    out = json.loads(
        fx("debezium-mongodb/smt-extract-new-document-state/flatten_struct_true.output.json")
    )
    assert record(mongo_event("c", after=json.dumps(doc)), mkey("1")).values == {
        "_id": '{"$numberLong":"1"}',
        "a": DocText('{"b":1,"c":"none"}'),
        "d": 100,
    }
    flat = record(dumps(out), dumps({"id": 1}), topic_tables={TOPIC: ("inventory", "customers")})
    assert flat.values == {"_id": '{"$numberLong":"1"}', "a_b": 1, "a_c": "none", "d": 100}


def test_extract_new_document_state_unset_outputs() -> None:
    tables = {TOPIC: ("inventory", "customers")}
    streams = record(
        fx(
            "debezium-mongodb/smt-extract-new-document-state/unset_update_change_streams_mode.output.json"
        ),
        dumps({"id": 1}),
        topic_tables=tables,
    )
    assert (streams.key, streams.values) == (
        {"_id": '{"$numberLong":"1"}'},
        {"a": None, "_id": '{"$numberLong":"1"}'},
    )
    for name in (
        "unset_update_full_document_mode.output.json",
        "v1x_oplog_unset_patch.output.json",
    ):
        full = record(
            fx(f"debezium-mongodb/smt-extract-new-document-state/{name}"),
            dumps({"id": 1}),
            topic_tables=tables,
        )
        assert full.kind is Kind.UPSERT
        assert full.values == {"id": 1, "a": None}  # the docs print "id", a relational-looking row


def test_extract_new_document_state_metadata_and_deletes() -> None:
    row = {
        "_id": OID,
        "name": "x",
        "__v": 3,
        "__op": "u",
        "__db": "shop",
        "__collection": "users",
        "__source_ts_ms": 1700000000000,
        "__deleted": False,
        "__updateDescription_updatedFields": '{"a": 22}',
    }
    rec = record(dumps(row), dumps({"id": OID}))
    assert (rec.schema, rec.table, rec.op, rec.kind) == ("shop", "users", "u", Kind.UPSERT)
    assert rec.key == {"_id": OID}
    assert rec.values == {"_id": OID, "name": "x", "__v": 3}  # __v is a user field, kept
    assert rec.position == (1700000000000, 0, 0) and rec.source_ts == ms(1700000000000)
    deleted = record(
        dumps({"__deleted": True, "__db": "shop", "__collection": "users"}), dumps({"id": OID})
    )
    assert (deleted.kind, deleted.op, deleted.key) == (Kind.DELETE, "d", {"_id": OID})
    assert deleted.values is None
    # No __db/__collection: the Connect schema name decides the table.
    framed = {
        "schema": {
            "type": "struct",
            "name": "dbserver1.shop.orders",
            "optional": False,
            "fields": [
                {"field": "_id", "type": "string", "optional": True},
                {
                    "field": "at",
                    "type": "int64",
                    "optional": True,
                    "name": "org.apache.kafka.connect.data.Timestamp",
                },
            ],
        },
        "payload": {"_id": OID, "at": 1700000000000},
    }
    typed = record(dumps(framed), dumps({"id": OID}))
    assert (typed.schema, typed.table) == ("shop", "orders")
    assert typed.values == {"_id": OID, "at": ms(1700000000000)}  # aware: MongoDB dates are UTC
    assert error(dumps({"_id": OID, "x": 1}), dumps({"id": OID})) == "no_table"


def test_extract_new_record_state_rewritten_delete() -> None:
    value = fx("debezium-relational/smt-extract-new-record-state/delete_rewrite.value.json")
    rec = record(value, dumps({"pk": 2}), topic_tables={TOPIC: ("public", "t")})
    assert (rec.kind, rec.op, rec.key, rec.table) == (Kind.DELETE, "d", {"pk": 2}, "t")


def test_serde_unwrapped_row() -> None:
    rec = record(
        fx("debezium-relational/debezium-serde-testdata/serde-unwrapped.json"),
        dumps({"id": 1004}),
        topic_tables={TOPIC: ("inventory", "customers")},
    )
    assert (rec.kind, rec.key) == (Kind.UPSERT, {"id": 1004})
    assert rec.values == {
        "id": 1004,
        "first_name": "Anne",
        "last_name": "Kretchmar",
        "email": "annek@noanswer.org",
    }
