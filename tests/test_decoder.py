"""Debezium message → Record/Skip: every fixture, every event shape, and a fuzz run."""

from __future__ import annotations

import base64
import json
import random
import re
import time as _time
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sink.decode.envelope import DecoderOptions, decode_envelope, decode_json, mongo_key
from sink.decode.extjson import ObjectId
from sink.errors import DecodeError
from sink.records import Kind, Patch, Record, Skip

FIXTURES = Path(__file__).parent / "fixtures"
MONGO = FIXTURES / "debezium-mongodb"
REL = FIXTURES / "debezium-relational"
OID = "596e275826f08b2730779e1f"
LONG_1004 = '{"$numberLong":"1004"}'
TOPIC = "dbserver1.inventory.customers"


def fx(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def mkey(id_text: str) -> bytes:
    """A MongoDB Debezium key: {"id": "<extended JSON of _id>"}."""
    return dumps({"id": id_text})


def decode(value: bytes | None, key: bytes | None = None, topic: str = TOPIC, **opts: Any) -> Any:
    return decode_json(key, value, topic, DecoderOptions(**opts))


def record(value: bytes | None, key: bytes | None = None, **kw: Any) -> Record:
    rec = decode(value, key, **kw)
    assert isinstance(rec, Record), rec
    return rec


def error(value: bytes | None, key: bytes | None = None, **kw: Any) -> str:
    with pytest.raises(DecodeError) as err:
        decode(value, key, **kw)
    return err.value.code


def ms(n: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=n)


# --------------------------------------------------------------------------- MongoDB fixtures


def test_v0x_read_initsync() -> None:
    rec = record(fx("debezium-mongodb/v0x-docs/read_r_initsync.payload.json"), mkey("1004"))
    assert (rec.schema, rec.table, rec.kind, rec.op) == ("inventory", "customers", Kind.UPSERT, "r")
    assert rec.key == {"_id": LONG_1004}
    assert rec.values == {
        "_id": LONG_1004,
        "first_name": "Anne",
        "last_name": "Kretchmar",
        "email": "annek@noanswer.org",
    }
    assert rec.position == (1468448871000, 31, 0)  # sec * 1000, ord, no transaction
    assert rec.source_ts == ms(1468448871000)


def test_v0x_update_patch() -> None:
    rec = record(fx("debezium-mongodb/v0x-docs/update_u_patch.payload.json"), mkey("1004"))
    assert (rec.kind, rec.op, rec.key) == (Kind.PATCH, "u", {"_id": LONG_1004})
    assert rec.patch == Patch(set={("first_name",): "Anne Marie"})
    assert rec.position == (1465491461000, 6, 0)


def test_v0x_delete_takes_the_id_from_the_key() -> None:
    value = fx("debezium-mongodb/v0x-docs/delete_d.payload.json")
    rec = record(value, mkey("1004"))
    assert (rec.kind, rec.op, rec.key, rec.values) == (Kind.DELETE, "d", {"_id": LONG_1004}, None)
    assert (rec.schema, rec.table) == ("inventory", "customers")
    assert error(value, None) == "missing_key"


def test_v1x_create_with_schema_and_framed_key() -> None:
    key = fx("debezium-mongodb/v3x-docs/key_int-id_schema+payload.json")  # {"id": "1004"} + schema
    rec = record(fx("debezium-mongodb/v1x-docs/create_c_oplog_schema+payload.json"), key)
    assert (rec.kind, rec.op, rec.key) == (Kind.UPSERT, "c", {"_id": LONG_1004})
    assert rec.values is not None
    assert rec.values["_id"] == LONG_1004  # the after's {"$numberLong": "1004"} equals the key
    assert rec.values["email"] == "annek@noanswer.org"
    assert rec.position == (1558965508000, 31, 0)


def test_v1x_oplog_delete_with_filter() -> None:
    rec = record(fx("debezium-mongodb/v1x-docs/delete_d_oplog_filter.payload.json"), mkey("1004"))
    assert (rec.kind, rec.key, rec.position) == (
        Kind.DELETE,
        {"_id": LONG_1004},
        (1558965508000, 6, 0),
    )


def test_v1x_oplog_update_patch_and_filter() -> None:
    rec = record(
        fx("debezium-mongodb/v1x-docs/update_u_oplog_patch_filter.payload.json"), mkey("1004")
    )
    assert rec.kind is Kind.PATCH
    assert rec.patch == Patch(set={("first_name",): "Anne Marie"})


def test_v1x_change_stream_update_full_is_an_upsert_of_the_latest_state() -> None:
    value = fx("debezium-mongodb/v1x-docs/update_u_change_streams_update_full.payload.json")
    rec = record(value, mkey('{"$numberLong": "1004"}'))
    assert (rec.kind, rec.op, rec.key) == (Kind.UPSERT, "u", {"_id": LONG_1004})
    assert rec.values == {
        "_id": LONG_1004,
        "first_name": "Anne Marie",
        "last_name": "Kretchmar",
        "email": "annek@noanswer.org",
    }
    assert rec.position == (1558965508000, 1, 0)


def test_v2x_create_with_schema() -> None:
    rec = record(fx("debezium-mongodb/v2x-docs/create_c_schema+payload.json"), mkey("1004"))
    assert (rec.kind, rec.op, rec.schema, rec.table) == (Kind.UPSERT, "c", "inventory", "customers")
    assert rec.values is not None and rec.values["first_name"] == "Anne"


@pytest.mark.parametrize(
    "path",
    [
        "debezium-mongodb/v2x-docs/create_c_transaction_enriched.NOT-VALID-JSON.txt",
        "debezium-relational/postgresql-3x-docs/create_c_transaction_enriched.NOT-VALID-JSON.txt",
    ],
)
def test_not_valid_json_docs_samples(path: str) -> None:
    assert error(fx(path), mkey("1004")) == "bad_json"


def test_v2x_transaction_block_orders_events() -> None:
    """The NOT-VALID-JSON sample with its elision filled in: transaction numbers as strings."""
    text = fx("debezium-mongodb/v2x-docs/create_c_transaction_enriched.NOT-VALID-JSON.txt").decode()
    source = '"source": {"connector": "mongodb", "db": "inventory", "collection": "customers",'
    text = text.replace('"source": {\n...\n  }', source + ' "ts_ms": 1580390884000, "ord": 2}')
    rec = record(text.encode(), mkey("1004"))
    assert rec.position == (1580390884000, 2, 1)


def test_v3x_delete_ignores_the_pre_image() -> None:
    value = fx("debezium-mongodb/v3x-docs/delete_d_with_pre_image.payload.json")
    rec = record(value, mkey(f'{{"$oid": "{OID}"}}'))  # before says _id 1004: the key wins
    assert (rec.kind, rec.key, rec.values) == (Kind.DELETE, {"_id": OID}, None)


def test_v3x_outbox_create_with_object_ids() -> None:
    value = fx("debezium-mongodb/v3x-docs/outbox_raw_create_c_with_oid.payload.json")
    rec = record(value, mkey(f'{{"$oid": "{OID}"}}'))
    assert rec.key == {"_id": OID}
    values = rec.values
    assert values is not None
    assert values["_id"] == OID
    assert (
        type(values["aggregateid"]) is ObjectId
        and values["aggregateid"] == "b2730779e1f596e275826f08"
    )
    payload = values["payload"]
    assert type(payload["_id"]) is ObjectId
    assert payload["lineItems"][0] == {
        "id": 1,
        "item": "Debezium in Action",
        "status": "ENTERED",
        "quantity": 2,
        "totalPrice": 39.98,
    }
    assert payload["orderDate"] == "2019-01-31T12:13:01"  # a plain string in the source document
    assert rec.position == (1558965508000, 31, 0)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("debezium-mongodb/v3x-docs/transaction_BEGIN.json", "transaction_begin"),
        ("debezium-mongodb/v3x-docs/transaction_END.json", "transaction_end"),
        ("debezium-relational/mysql-3x-docs/transaction_BEGIN.json", "transaction_begin"),
        ("debezium-relational/mysql-3x-docs/transaction_END.json", "transaction_end"),
        ("debezium-relational/postgresql-3x-docs/transaction_BEGIN.json", "transaction_begin"),
        ("debezium-relational/postgresql-3x-docs/transaction_END.json", "transaction_end"),
        (
            "debezium-relational/mysql-3x-docs/schema_change_topic_ALTER.payload.json",
            "schema_change",
        ),
        (
            "debezium-relational/postgresql-3x-docs/schema_change_event_schema+payload.json",
            "schema_change",
        ),
        (
            "debezium-relational/postgresql-3x-docs/message_m_transactional.payload.json",
            "logical_message",
        ),
        (
            "debezium-relational/postgresql-3x-docs/message_m_before_DecodeLogicalDecodingMessageContent.json",
            "logical_message",
        ),
    ],
)
def test_non_data_records_are_skipped(path: str, reason: str) -> None:
    assert decode(fx(path), dumps({"id": "x"})) == Skip(reason)


def test_key_fixtures_decode_as_keys() -> None:
    value = fx("debezium-relational/mysql-3x-docs/update_u.payload.json")
    mysql = record(value, fx("debezium-relational/mysql-3x-docs/key_schema+payload.json"))
    assert mysql.key == {"id": 1001}
    tutorial = record(
        value, fx("debezium-relational/mysql-tutorial-0x-output/key_schema+payload.json")
    )
    assert tutorial.key == {"id": 1004}
    # The PostgreSQL docs key is not a real Connect schema (fields with name/index/schema)
    # and prints the id as "1": the field is kept untyped.
    pg = record(value, fx("debezium-relational/postgresql-3x-docs/key_schema+payload.json"))
    assert pg.key == {"id": "1"}


def test_configs_routes_never_decide_the_table() -> None:
    """The example RegexRouter sends dbserver1.inventory.customers to topic 'customers'."""
    source = json.loads(
        fx("debezium-mongodb/configs/debezium-examples_unwrap-mongodb-smt_mongodb-source.json")
    )
    sink_cfg = json.loads(
        fx("debezium-mongodb/configs/debezium-examples_unwrap-mongodb-smt_jdbc-sink.json")
    )
    assert source["config"]["transforms.route.replacement"] == "$3"
    assert sink_cfg["config"]["transforms.mongoflatten.type"].endswith("ExtractNewDocumentState")
    value = fx("debezium-mongodb/v2x-docs/create_c_schema+payload.json")
    rec = record(value, mkey("1004"), topic=sink_cfg["config"]["topics"])
    assert (rec.schema, rec.table) == ("inventory", "customers")


def test_provenance_covers_every_fixture() -> None:
    """The copied fixtures are exactly the ones PROVENANCE.md describes."""
    text = (FIXTURES / "PROVENANCE.md").read_text()
    described = set(re.findall(r"^### `([^`]+)`", text, re.MULTILINE))
    present = {
        str(p.relative_to(FIXTURES))
        for p in FIXTURES.rglob("*")
        if p.is_file() and p.name != "PROVENANCE.md"
    }
    assert described == present
    assert len(present) == 65


# --------------------------------------------------------------------------- MongoDB shapes


def mongo_event(op: str, **fields: Any) -> bytes:
    payload: dict[str, Any] = {
        "source": {
            "version": "2.7.0.Final",
            "connector": "mongodb",
            "name": "dbserver1",
            "ts_ms": 1700000000000,
            "snapshot": "false",
            "db": "shop",
            "collection": "users",
            "ord": 3,
            "lsid": None,
            "txnNumber": None,
            "wallTime": 1700000000123,
        },
        "op": op,
        "ts_ms": 1700000000456,
        "transaction": None,
    }
    payload.update(fields)
    return dumps(payload)


KEY = mkey(f'{{"$oid": "{OID}"}}')
LEGACY_KEY = mkey(f'{{ "$oid" : "{OID}"}}')


def test_pre_and_post_1_4_keys_give_the_same_record_key() -> None:
    after = f'{{"_id": {{"$oid": "{OID}"}},"n": 1}}'
    a = record(mongo_event("c", after=after), KEY)
    b = record(mongo_event("c", after=after), LEGACY_KEY)
    assert a.key == b.key == {"_id": OID}
    assert a.values == b.values == {"_id": OID, "n": 1}
    date_new = record(mongo_event("d"), mkey('{"$date": "2017-10-19T00:00:00Z"}'))
    date_old = record(mongo_event("d"), mkey('{ "$date" : 1508371200000}'))
    assert date_new.key == date_old.key
    sub_new = record(mongo_event("d"), mkey('{"company": 32,"dept": "home improvement"}'))
    sub_old = record(mongo_event("d"), mkey('{ "company" : 32 , "dept" : "home improvement"}'))
    assert sub_new.key == sub_old.key
    assert (
        record(mongo_event("d"), mkey("1234")).key != record(mongo_event("d"), mkey('"1234"')).key
    )


def test_smt_rewritten_key_on_an_envelope() -> None:
    assert record(mongo_event("d"), dumps({"id": 1004})).key == {"_id": LONG_1004}


def test_strict_after_with_every_type() -> None:
    after = (
        f'{{"_id": {{"$oid": "{OID}"}},"i": 5,"l": {{"$numberLong": "9007199254740993"}},'
        '"d": 1.5,"nan": NaN,"inf": -Infinity,"dec": {"$numberDecimal": "1.10"},'
        '"at": {"$date": 1783101585729},"bin": {"$binary": "a2Fma2E=", "$type": "00"},'
        '"u": {"$binary": "FA7YEzXgQXSX9OxmzllH2w==", "$type": "04"},'
        '"ts": {"$timestamp": {"t": 1, "i": 2}},"re": {"$regex": "^a", "$options": "i"},'
        '"nested": {"arr": [1, {"x": {"$numberLong": "2"}}]},"nil": null,'
        '"undef": {"$undefined": true}}'
    )
    values = record(mongo_event("r", after=after), KEY).values
    assert values is not None
    assert values["l"] == 2**53 + 1
    assert values["dec"] == Decimal("1.10") and str(values["dec"]) == "1.10"
    assert values["at"] == datetime(2026, 7, 3, 17, 59, 45, 729000, tzinfo=UTC)
    assert values["bin"] == b"kafka"
    assert values["u"] == uuid.UUID("140ed813-35e0-4174-97f4-ec66ce5947db")
    assert values["ts"] == {"$timestamp": {"t": 1, "i": 2}}
    assert values["re"] == {"$regularExpression": {"pattern": "^a", "options": "i"}}
    assert values["nested"] == {"arr": [1, {"x": 2}]}
    assert values["nil"] is None and values["undef"] is None
    assert values["nan"] != values["nan"] and values["inf"] == float("-inf")


def test_change_stream_update_description_only_is_a_patch() -> None:
    desc = {
        "updatedFields": '{"name": "Mary", "address.city": "Oslo", "items.3": {"qty": 2}, '
        '"at": {"$date": "2026-07-03T17:59:45.729Z"}, "n": 456}',
        "removedFields": ["old", "a.b"],
        "truncatedArrays": [{"field": "items", "size": 2}],
    }
    rec = record(mongo_event("u", after=None, updateDescription=desc), KEY)
    assert (rec.kind, rec.op, rec.values) == (Kind.PATCH, "u", None)
    assert rec.patch == Patch(
        set={
            ("name",): "Mary",
            ("address", "city"): "Oslo",
            ("items", "3"): {"qty": 2},
            ("at",): datetime(2026, 7, 3, 17, 59, 45, 729000, tzinfo=UTC),
            ("n",): 456,
        },
        unset=[("old",), ("a", "b")],
        truncate={("items",): 2},
    )


def test_unset_only_description_fixture() -> None:
    fragment = json.loads(
        fx(
            "debezium-mongodb/smt-extract-new-document-state/unset_update.input_payload_fragment.json"
        )
    )
    desc = fragment["updateDescription"]  # removedFields ["a"], updatedFields null
    rec = record(mongo_event("u", updateDescription=desc), KEY)
    assert rec.patch == Patch(unset=[("a",)])
    # The fragment itself elides before/after as "{ ... }" and has no source: not decodable.
    assert error(
        fx(
            "debezium-mongodb/smt-extract-new-document-state/unset_update.input_payload_fragment.json"
        ),
        KEY,
    ) in (
        "bad_envelope",
        "bad_json",
    )


def test_update_with_after_and_description_upserts_the_document() -> None:
    rec = record(
        mongo_event(
            "u",
            after=f'{{"_id": {{"$oid": "{OID}"}},"a": 2}}',
            updateDescription={
                "updatedFields": '{"a": 1}',
                "removedFields": None,
                "truncatedArrays": None,
            },
        ),
        KEY,
    )
    assert (rec.kind, rec.values) == (Kind.UPSERT, {"_id": OID, "a": 2})


def test_replace_and_lookup_failure() -> None:
    replace = record(mongo_event("u", after=f'{{"_id": {{"$oid": "{OID}"}},"b": 1}}'), KEY)
    assert (replace.kind, replace.values) == (Kind.UPSERT, {"_id": OID, "b": 1})
    assert decode(mongo_event("u", after=None), KEY) == Skip("update_without_content")
    empty = {"updatedFields": None, "removedFields": None, "truncatedArrays": None}
    assert decode(mongo_event("u", updateDescription=empty), KEY) == Skip("empty_update")


def test_oplog_patches() -> None:
    fixture = json.loads(
        fx("debezium-mongodb/smt-extract-new-document-state/v1x_oplog_unset_patch.input.json")
    )
    rec = record(mongo_event("u", **fixture), KEY)
    assert rec.patch == Patch(unset=[("a",)])
    with_v = record(mongo_event("u", patch='{"$v": 1,"$set": {"a.b": {"$numberLong": "5"}}}'), KEY)
    assert with_v.patch == Patch(set={("a", "b"): 5})
    replacement = record(mongo_event("u", patch=f'{{"_id": {{"$oid": "{OID}"}},"x": 1}}'), KEY)
    assert (replacement.kind, replacement.values) == (Kind.UPSERT, {"_id": OID, "x": 1})
    assert (
        error(mongo_event("u", patch='{"$v": 2, "diff": {"u": {"a": 1}}}'), KEY)
        == "unsupported_patch"
    )
    assert error(mongo_event("u", patch='{"$inc": {"a": 1}}'), KEY) == "unsupported_patch"


def test_transaction_and_source_metadata() -> None:
    txn = {"id": "1462833718356672513", "total_order": 7, "data_collection_order": 2}
    rec = record(mongo_event("c", after=f'{{"_id": {{"$oid": "{OID}"}}}}', transaction=txn), KEY)
    assert rec.position == (1700000000000, 3, 7)
    assert rec.source_ts == ms(1700000000000)


def test_mongo_without_kafka_key_falls_back_to_the_document_id() -> None:
    rec = record(mongo_event("c", after='{"_id": 1004, "a": 1}'), None)
    assert rec.key == {"_id": LONG_1004}
    assert (
        error(mongo_event("u", updateDescription={"updatedFields": '{"a": 1}'}), None)
        == "missing_key"
    )


def test_mongo_envelope_errors() -> None:
    assert error(mongo_event("c"), KEY) == "missing_after"
    assert error(mongo_event("c", after='{"_id": {"$oid": 5}}'), KEY) == "bad_extjson"
    assert error(mongo_event("c", after="[1]"), KEY) == "bad_envelope"
    assert error(mongo_event("c", after='{"a": ' * 300 + "1" + "}" * 300), KEY) == "too_deep"
    assert error(mongo_event("c", after='{"a": 1}'), dumps({"id": "not json"})) == "bad_key"
    assert error(mongo_event("c", after='{"a": 1}'), dumps({"x": "1"})) == "bad_key"
    assert error(mongo_event("x", after='{"a": 1}'), KEY) == "unknown_op"
    assert error(mongo_event("t"), KEY) == "unknown_op"
    assert error(mongo_event("c", after=5), KEY) == "bad_envelope"
    no_source = json.loads(mongo_event("d"))
    no_source["source"] = {"connector": "mongodb", "ts_ms": 1}
    assert error(dumps(no_source), KEY) == "no_table"
    assert decode(dumps(no_source), KEY, topic_tables={TOPIC: ("s", "t")}).table == "t"
    missing_op = json.loads(mongo_event("c", after="{}"))
    del missing_op["op"]
    assert error(dumps(missing_op), KEY) == "missing_op"


def test_tombstones() -> None:
    rec = record(None, KEY)
    assert (rec.kind, rec.op, rec.schema, rec.table, rec.key) == (
        Kind.DELETE,
        "tombstone",
        None,
        None,
        {"_id": OID},
    )
    assert record(b"", LEGACY_KEY).key == {"_id": OID}
    printed = fx(
        "debezium-relational/mysql-tutorial-0x-output/tombstone_value_as_printed_by_watch-topic.json"
    )
    old = record(
        printed, fx("debezium-relational/mysql-tutorial-0x-output/key_schema+payload.json")
    )
    assert (old.kind, old.op, old.key, old.position) == (Kind.DELETE, "tombstone", {"id": 1004}, ())
    assert record(b"null", dumps({"id": 7})).key == {"id": 7}
    # An SMT-keyed MongoDB tombstone keeps {"id": ...}; mongo_key() maps it when needed.
    smt = record(None, dumps({"id": OID}))
    assert smt.key == {"id": OID}
    assert mongo_key(smt.key, DecoderOptions(), plain=True) == {"_id": OID}
    assert error(None, None) == "missing_key"


# --------------------------------------------------------------------------- SMT-flattened rows


def test_extract_new_document_state_array_encoding() -> None:
    doc = json.loads(
        fx("debezium-mongodb/smt-extract-new-document-state/array_encoding.input_document.json")
    )
    out = json.loads(
        fx("debezium-mongodb/smt-extract-new-document-state/array_encoding_document.output.json")
    )
    raw = record(mongo_event("c", after=json.dumps(doc)), mkey("1"))
    assert raw.values == {"_id": '{"$numberLong":"1"}', "a1": doc["a1"]}
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
        "a": {"b": 1, "c": "none"},
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


# --------------------------------------------------------------------------- relational fixtures

ANNE = {"id": 1004, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"}


@pytest.mark.parametrize(
    ("path", "op", "values", "position"),
    [
        (
            "debezium-relational/debezium-serde-testdata/serde-with-schema.json",
            "c",
            ANNE,
            (3, 154, 0),
        ),
        (
            "debezium-relational/debezium-serde-testdata/serde-without-schema.json",
            "c",
            ANNE,
            (3, 154, 0),
        ),
        ("debezium-relational/debezium-serde-testdata/serde-update.json", "u", ANNE, (3, 154, 0)),
        (
            "debezium-relational/debezium-serde-testdata/serde-unknown-property.json",
            "u",
            {**ANNE, "middle_name": "L"},
            (3, 154, 0),
        ),
        ("debezium-relational/mysql-3x-docs/create_c_schema+payload.json", "c", ANNE, (3, 154, 0)),
        (
            "debezium-relational/mysql-3x-docs/update_u.payload.json",
            "u",
            {**ANNE, "first_name": "Anne Marie"},
            (3, 484, 0),
        ),
        (
            "debezium-relational/mysql-tutorial-0x-output/read_r_snapshot_schema+payload.json",
            "r",
            ANNE,
            (3, 154, 0),
        ),
        (
            "debezium-relational/mysql-tutorial-0x-output/update_u.payload.json",
            "u",
            {**ANNE, "first_name": "Anne Marie"},
            (3, 364, 0),
        ),
        (
            "debezium-relational/postgresql-2.1.4-captured/create_c.payload.json",
            "c",
            {"id": 1005, "first_name": "Bob", "last_name": "Marley", "email": "bob@marley.com"},
            (34466480,),
        ),
        (
            "debezium-relational/postgresql-3x-docs/create_c_schema+payload.json",
            "c",
            {**ANNE, "id": 1},
            (24023128,),
        ),
        (
            "debezium-relational/postgresql-3x-docs/update_u_default_replica_identity.payload.json",
            "u",
            {**ANNE, "id": 1, "first_name": "Anne Marie"},
            (24023128,),
        ),
    ],
)
def test_relational_upserts(
    path: str, op: str, values: dict[str, Any], position: tuple[int, ...]
) -> None:
    rec = record(fx(path), dumps({"id": values["id"]}))
    assert (rec.kind, rec.op, rec.key, rec.values, rec.position) == (
        Kind.UPSERT,
        op,
        {"id": values["id"]},
        values,
        position,
    )
    assert rec.table == "customers"
    assert rec.schema in ("inventory", "public")


def test_relational_schema_and_table_come_from_source() -> None:
    pg = record(
        fx("debezium-relational/postgresql-2.1.4-captured/create_c.payload.json"),
        dumps({"id": 1005}),
        topic="x",
    )
    assert (pg.schema, pg.table, pg.source_ts) == ("inventory", "customers", ms(1733906311010))
    mysql = record(
        fx("debezium-relational/mysql-3x-docs/update_u.payload.json"),
        dumps({"id": 1004}),
        topic="x",
    )
    assert (mysql.schema, mysql.table) == ("inventory", "customers")  # MySQL: source.db
    tutorial = record(
        fx("debezium-relational/mysql-tutorial-0x-output/update_u.payload.json"),
        dumps({"id": 1004}),
    )
    assert tutorial.source_ts == ms(1486501486000)  # 0.x ts_sec


@pytest.mark.parametrize(
    ("path", "position"),
    [
        ("debezium-relational/mysql-3x-docs/delete_d.payload.json", (3, 805, 0)),
        ("debezium-relational/mysql-tutorial-0x-output/delete_d.payload.json", (3, 725, 0)),
        ("debezium-relational/postgresql-3x-docs/delete_d.payload.json", (46523128,)),
    ],
)
def test_relational_deletes(path: str, position: tuple[int, ...]) -> None:
    rec = record(fx(path), dumps({"id": 1004}))
    assert (rec.kind, rec.op, rec.key, rec.values, rec.position) == (
        Kind.DELETE,
        "d",
        {"id": 1004},
        None,
        position,
    )
    assert error(fx(path), None) == "missing_key"


@pytest.mark.parametrize(
    "path",
    [
        "debezium-relational/mysql-3x-docs/truncate_t.payload.json",
        "debezium-relational/postgresql-3x-docs/truncate_t.payload.json",
    ],
)
def test_truncate(path: str) -> None:
    assert decode(fx(path)) == Skip("truncate_ignored")
    rec = record(fx(path), truncate="apply")
    assert (rec.kind, rec.op, rec.key, rec.table) == (Kind.TRUNCATE, "t", {}, "customers")


def test_watch_topic_raw_lines() -> None:
    lines = fx(
        "debezium-relational/mysql-tutorial-0x-output/watch-topic_raw_key-TAB-value.tsv"
    ).splitlines()
    recs = [record(v, k) for k, v in (line.split(b"\t") for line in lines if line)]
    assert [(r.op, r.key, r.values["first_name"] if r.values else None) for r in recs] == [
        ("c", {"id": 1005}, "Sarah"),
        ("c", {"id": 1006}, "Kenneth"),
    ]
    assert recs[0].position == (3, 1046, 0) and recs[0].source_ts == ms(1490635153000)


def test_timezone_converter_fixtures_with_a_zoned_timestamp_schema() -> None:
    instants = []
    for name in ("timezone_converter.before.json", "timezone_converter.after.json"):
        payload = json.loads(fx(f"debezium-relational/postgresql-3x-docs/{name}"))
        plain = record(dumps(payload), dumps({"id": 1}))
        assert isinstance(plain.values, dict) and isinstance(
            plain.values["created_at"], str
        )  # schemaless
        schema = envelope_schema(
            [
                ("id", {"type": "int32"}),
                ("created_at", {"type": "string", "name": "io.debezium.time.ZonedTimestamp"}),
            ]
        )
        typed = record(dumps({"schema": schema, "payload": payload}), dumps({"id": 1}))
        assert typed.values is not None
        instants.append(typed.values["created_at"])
    assert instants[0] == instants[1] == datetime(2011, 1, 11, 16, 40, 30, 123456, tzinfo=UTC)
    assert instants[1].utcoffset() == timedelta(hours=-5)


def test_logical_decoding_message_after_smt_has_no_table() -> None:
    value = fx(
        "debezium-relational/postgresql-3x-docs/message_m_after_DecodeLogicalDecodingMessageContent.json"
    )
    assert error(value, dumps({"id": 1})) == "no_table"
    rec = record(value, dumps({"id": 1}), topic_tables={TOPIC: ("public", "orders")})
    assert (rec.table, rec.values) == (
        "orders",
        {
            "id": 1,
            "item": "Debezium in Action",
            "status": "ENTERED",
            "quantity": 2,
            "totalPrice": 39.98,
        },
    )


def test_cloudevents() -> None:
    rec = record(
        fx("debezium-relational/cloudevents/postgresql_cloudevent_json_data.json"), dumps({"pk": 1})
    )
    assert (rec.schema, rec.table, rec.op, rec.key, rec.values) == (
        "s1",
        "a",
        "r",
        {"pk": 1},
        {"pk": 1, "name": "Bob"},
    )
    assert rec.position == (29274832,) and rec.source_ts == ms(1578923739738)
    assert (
        error(
            fx("debezium-relational/cloudevents/postgresql_cloudevent_avro_data.json"),
            dumps({"pk": 1}),
        )
        == "unsupported_format"
    )


# ------------------------------------------------------------------ relational logical types


def envelope_schema(fields: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    row = {
        "type": "struct",
        "name": "srv.public.t.Value",
        "optional": True,
        "fields": [{"field": name, "optional": True, **spec} for name, spec in fields],
    }
    return {
        "type": "struct",
        "name": "srv.public.t.Envelope",
        "optional": False,
        "fields": [
            {**row, "field": "before"},
            {**row, "field": "after"},
            {
                "type": "struct",
                "field": "source",
                "name": "io.debezium.connector.postgresql.Source",
                "fields": [],
            },
            {"type": "string", "field": "op"},
        ],
    }


def pg_payload(after: dict[str, Any], op: str = "c") -> dict[str, Any]:
    return {
        "before": None,
        "after": after,
        "op": op,
        "ts_ms": 1700000000999,
        "source": {
            "connector": "postgresql",
            "db": "db",
            "schema": "public",
            "table": "t",
            "ts_ms": 1700000000000,
            "lsn": 42,
        },
    }


def b64_unscaled(n: int) -> str:
    return base64.b64encode(n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True)).decode()


LOGICAL_FIELDS: list[tuple[str, dict[str, Any], Any, Any]] = [
    ("d", {"type": "int32", "name": "io.debezium.time.Date"}, 19000, date(2022, 1, 8)),
    ("d2", {"type": "int32", "name": "org.apache.kafka.connect.data.Date"}, -1, date(1969, 12, 31)),
    ("t", {"type": "int32", "name": "io.debezium.time.Time"}, 3723004, time(1, 2, 3, 4000)),
    ("t2", {"type": "int32", "name": "org.apache.kafka.connect.data.Time"}, 1000, time(0, 0, 1)),
    ("mt", {"type": "int64", "name": "io.debezium.time.MicroTime"}, 3723000004, time(1, 2, 3, 4)),
    ("nt", {"type": "int64", "name": "io.debezium.time.NanoTime"}, 3723000004999, time(1, 2, 3, 4)),
    (
        "neg",
        {"type": "int64", "name": "io.debezium.time.MicroTime"},
        -3600000000,
        timedelta(hours=-1),
    ),
    (
        "ts",
        {"type": "int64", "name": "io.debezium.time.Timestamp"},
        1529507596945,
        datetime(2018, 6, 20, 15, 13, 16, 945000),
    ),
    (
        "ts2",
        {"type": "int64", "name": "org.apache.kafka.connect.data.Timestamp"},
        0,
        datetime(1970, 1, 1),
    ),
    (
        "mts",
        {"type": "int64", "name": "io.debezium.time.MicroTimestamp"},
        1529507596945104,
        datetime(2018, 6, 20, 15, 13, 16, 945104),
    ),
    (
        "nts",
        {"type": "int64", "name": "io.debezium.time.NanoTimestamp"},
        1529507596945104999,
        datetime(2018, 6, 20, 15, 13, 16, 945104),
    ),
    (
        "inf",
        {"type": "int64", "name": "io.debezium.time.MicroTimestamp"},
        9223372036825200000,
        datetime.max,
    ),
    (
        "ninf",
        {"type": "int64", "name": "io.debezium.time.MicroTimestamp"},
        -9223372036832400000,
        datetime.min,
    ),
    (
        "zts",
        {"type": "string", "name": "io.debezium.time.ZonedTimestamp"},
        "2011-01-11T16:40:30.123456789Z",
        datetime(2011, 1, 11, 16, 40, 30, 123456, tzinfo=UTC),
    ),
    (
        "zt",
        {"type": "string", "name": "io.debezium.time.ZonedTime"},
        "10:15:30+01:00",
        time(10, 15, 30, tzinfo=timezone(timedelta(hours=1))),
    ),
    (
        "dec",
        {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "2"},
        },
        "AeJA",
        Decimal("1234.56"),
    ),
    (
        "decneg",
        {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "3"},
        },
        b64_unscaled(-12345678901234567890123456789012345),
        Decimal("-12345678901234567890123456789012.345"),
    ),
    (
        "decnum",
        {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "2"},
        },
        1234.56,
        Decimal("1234.56"),
    ),
    (
        "vsd",
        {
            "type": "struct",
            "name": "io.debezium.data.VariableScaleDecimal",
            "fields": [{"field": "scale", "type": "int32"}, {"field": "value", "type": "bytes"}],
        },
        {"scale": 2, "value": "AeJA"},
        Decimal("1234.56"),
    ),
    (
        "uuid",
        {"type": "string", "name": "io.debezium.data.Uuid"},
        "140ed813-35e0-4174-97f4-ec66ce5947db",
        uuid.UUID("140ed813-35e0-4174-97f4-ec66ce5947db"),
    ),
    (
        "json",
        {"type": "string", "name": "io.debezium.data.Json"},
        '{"a": [1, 2.5, null]}',
        {"a": [1, 2.5, None]},
    ),
    (
        "enum",
        {"type": "string", "name": "io.debezium.data.Enum", "parameters": {"allowed": "a,b"}},
        "b",
        "b",
    ),
    (
        "set",
        {"type": "string", "name": "io.debezium.data.EnumSet", "parameters": {"allowed": "a,b"}},
        "a,b",
        "a,b",
    ),
    (
        "bits",
        {"type": "bytes", "name": "io.debezium.data.Bits", "parameters": {"length": "8"}},
        "Dw==",
        b"\x0f",
    ),
    ("xml", {"type": "string", "name": "io.debezium.data.Xml"}, "<a/>", "<a/>"),
    ("raw", {"type": "bytes"}, "a2Fma2E=", b"kafka"),
    (
        "dur",
        {"type": "int64", "name": "io.debezium.time.MicroDuration"},
        90000000,
        timedelta(seconds=90),
    ),
    ("f", {"type": "float64"}, 1.5, 1.5),
    ("finf", {"type": "float64"}, "Infinity", float("inf")),
    ("big", {"type": "int64"}, 2**63 - 1, 2**63 - 1),
    (
        "arr",
        {"type": "array", "items": {"type": "int32", "name": "io.debezium.time.Date"}},
        [0, 1],
        [date(1970, 1, 1), date(1970, 1, 2)],
    ),
    (
        "geo",
        {
            "type": "struct",
            "name": "io.debezium.data.geometry.Point",
            "fields": [
                {"field": "wkb", "type": "bytes"},
                {"field": "srid", "type": "int32", "optional": True},
            ],
        },
        {"wkb": "AQ==", "srid": None},
        {"wkb": b"\x01", "srid": None},
    ),
    ("none", {"type": "string"}, None, None),
]


def test_relational_logical_types_with_connect_json_schema() -> None:
    schema = envelope_schema([(name, spec) for name, spec, _, _ in LOGICAL_FIELDS])
    payload = pg_payload({name: raw for name, _, raw, _ in LOGICAL_FIELDS})
    rec = record(dumps({"schema": schema, "payload": payload}), dumps({"id": 1}))
    assert rec.values is not None
    for name, _, _, expected in LOGICAL_FIELDS:
        assert rec.values[name] == expected, name
        assert type(rec.values[name]) is type(expected), name
    assert rec.values["ts"].tzinfo is None and rec.values["zts"].tzinfo is not None
    assert rec.position == (42,) and rec.source_ts == ms(1700000000000)


def _avro(spec: dict[str, Any]) -> Any:
    """The Avro schema a registry converter derives from a Connect field schema."""
    kinds = {
        "int32": "int",
        "int64": "long",
        "float64": "double",
        "string": "string",
        "bytes": "bytes",
    }
    t = spec["type"]
    if t == "struct":
        return [
            "null",
            {
                "type": "record",
                "name": spec["name"].rsplit(".", 1)[-1],
                "namespace": spec["name"].rsplit(".", 1)[0],
                "fields": [{"name": f["field"], "type": _avro(f)} for f in spec["fields"]],
                "connect.name": spec["name"],
            },
        ]
    if t == "array":
        return ["null", {"type": "array", "items": _avro(spec["items"])}]
    node: dict[str, Any] = {"type": kinds[t]}
    if "name" in spec:
        node["connect.name"] = spec["name"]
    if "parameters" in spec:
        node["connect.parameters"] = spec["parameters"]
    return ["null", node]


def test_relational_logical_types_with_avro_schema_and_typed_values() -> None:
    """decode_envelope with an Avro schema (connect.name) and Avro-typed payload values."""
    value_record = {
        "type": "record",
        "name": "Value",
        "namespace": "srv.public.t",
        "connect.name": "srv.public.t.Value",
        "fields": [{"name": name, "type": _avro(spec)} for name, spec, _, _ in LOGICAL_FIELDS],
    }
    schema = {
        "type": "record",
        "name": "Envelope",
        "namespace": "srv.public.t",
        "connect.name": "srv.public.t.Envelope",
        "fields": [
            {"name": "before", "type": ["null", value_record]},
            {"name": "after", "type": ["null", "srv.public.t.Value"]},
            {"name": "op", "type": "string"},
        ],
    }
    after: dict[str, Any] = {}
    for name, spec, raw, _ in LOGICAL_FIELDS:  # an Avro reader gives bytes, not base64 text
        binary = spec["type"] == "bytes" and isinstance(raw, str)
        after[name] = base64.b64decode(raw) if binary else raw
    after["vsd"] = {"scale": 2, "value": base64.b64decode("AeJA")}
    after["geo"] = {"wkb": b"\x01", "srid": None}
    after["ts2"] = datetime(1970, 1, 1, tzinfo=UTC)  # already a datetime (Avro logical type)
    rec = decode_envelope({"id": 1}, pg_payload(after), schema, TOPIC, key_schema=None)
    assert isinstance(rec, Record) and rec.values is not None
    for name, _, _, expected in LOGICAL_FIELDS:
        assert rec.values[name] == expected, name


def test_numeric_decimal_beyond_double_precision_is_exact() -> None:
    schema = envelope_schema(
        [
            (
                "n",
                {
                    "type": "bytes",
                    "name": "org.apache.kafka.connect.data.Decimal",
                    "parameters": {"scale": "10"},
                },
            ),
            ("f", {"type": "float64"}),
            ("i", {"type": "int64"}),
        ]
    )
    text = dumps({"schema": schema, "payload": pg_payload({"n": 0, "f": 0.1, "i": 7})})
    text = text.replace(b'"n": 0', b'"n": 12345678901234567890.0123456789')
    rec = record(text, dumps({"id": 1}))
    assert rec.values == {"n": Decimal("12345678901234567890.0123456789"), "f": 0.1, "i": 7}
    assert type(rec.values["f"]) is float


def test_toast_placeholder_is_never_written() -> None:
    schema = envelope_schema(
        [
            ("id", {"type": "int32"}),
            ("body", {"type": "string"}),
            ("blob", {"type": "bytes"}),
            ("doc", {"type": "string", "name": "io.debezium.data.Json"}),
            ("tags", {"type": "array", "items": {"type": "string"}}),
        ]
    )
    placeholder = "__debezium_unavailable_value"
    after = {
        "id": 1,
        "body": placeholder,
        "blob": base64.b64encode(placeholder.encode()).decode(),
        "doc": placeholder,
        "tags": [placeholder],
    }
    rec = record(dumps({"schema": schema, "payload": pg_payload(after, op="u")}), dumps({"id": 1}))
    assert (rec.kind, rec.op, rec.values) == (Kind.PATCH, "u", None)
    assert rec.patch == Patch(set={("id",): 1})
    full = record(dumps(pg_payload({"id": 1, "body": "x"}, op="u")), dumps({"id": 1}))
    assert full.kind is Kind.UPSERT


def test_relational_errors() -> None:
    schema = envelope_schema([("d", {"type": "int32", "name": "io.debezium.time.Date"})])
    bad = [({"d": "x"}, "bad_value"), ({"d": 10**12}, "bad_value")]
    for after, code in bad:
        assert (
            error(dumps({"schema": schema, "payload": pg_payload(after)}), dumps({"id": 1})) == code
        )
    assert error(dumps(pg_payload({"id": 1})), None) == "missing_key"
    assert error(dumps(pg_payload(None)), dumps({"id": 1})) == "missing_after"  # type: ignore[arg-type]
    assert error(dumps(pg_payload({"id": 1})), dumps([1])) == "bad_key"
    assert error(dumps(pg_payload({"id": 1})), b"{nope") == "bad_key"
    deep = envelope_schema([("j", {"type": "string", "name": "io.debezium.data.Json"})])
    assert (
        error(
            dumps({"schema": deep, "payload": pg_payload({"j": "[" * 250 + "]" * 250})}),
            dumps({"id": 1}),
        )
        == "too_deep"
    )
    assert (
        error(dumps(pg_payload({"id": 123456789012345678901234567890})), dumps({"id": 1}))
        == "number_out_of_range"
    )


# --------------------------------------------------------------------------- framing and non-data


def test_heartbeats() -> None:
    hb = dumps({"ts_ms": 1700000000000})
    assert decode(
        hb, dumps({"serverName": "dbserver1"}), topic="__debezium-heartbeat.dbserver1"
    ) == Skip("heartbeat")
    assert decode(hb, None, topic="anything") == Skip("heartbeat")
    framed = dumps(
        {
            "schema": {
                "type": "struct",
                "name": "io.debezium.connector.common.Heartbeat",
                "fields": [{"field": "ts_ms", "type": "int64"}],
            },
            "payload": {"ts_ms": 1},
        }
    )
    assert decode(framed, None, topic="routed") == Skip("heartbeat")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"not json", "bad_json"),
        (b"\xff\xfe{}", "bad_utf8"),
        (b'{"op": "c", "after": "\xc3\x28"}', "bad_utf8"),
        (b"[1, 2]", "bad_envelope"),
        (b'"text"', "bad_envelope"),
        (b'{"op": 5, "source": {}}', "unknown_op"),
        (b'{"op": "z", "source": {}}', "unknown_op"),
        (b'{"op": "c", "source": 5}', "bad_envelope"),
        (
            b'{"op": "c", "source": {"connector": "postgresql", "schema": "s", "table": "t",'
            b' "ts_ms": "x"}}',
            "bad_envelope",
        ),
        (b'{"after": {"a": 1}, "source": {"db": "x"}}', "missing_op"),
        (b"[" * 5000 + b"]" * 5000, "too_deep"),
        (b'{"op": "c", "ts_ms": 1e999}', "bad_json"),
        (
            b'{"op": "c", "source": {"schema": "s", "table": "t",'
            b' "ts_ms": 99999999999999999999999}}',
            "number_out_of_range",
        ),
    ],
)
def test_malformed_messages(value: bytes, code: str) -> None:
    assert error(value, dumps({"id": 1})) == code


def test_schema_wrapper_is_detected_per_message() -> None:
    payload = pg_payload({"id": 1})
    a = record(dumps(payload), dumps({"id": 1}))
    b = record(
        dumps({"schema": None, "payload": payload}), dumps({"schema": None, "payload": {"id": 1}})
    )
    assert a.values == b.values == {"id": 1}
    assert a.key == b.key == {"id": 1}
    assert a.size == len(dumps(payload)) + len(dumps({"id": 1}))


# --------------------------------------------------------------------------- fuzz


def _seeds() -> list[tuple[bytes | None, bytes]]:
    seeds: list[tuple[bytes | None, bytes]] = []
    for path in sorted(FIXTURES.rglob("*")):
        if path.is_file() and path.suffix in (".json", ".txt"):
            seeds.append(
                (KEY if "mongodb" in str(path) else dumps({"id": 1004}), path.read_bytes())
            )
    seeds += [
        (
            KEY,
            mongo_event(
                "c", after=f'{{"_id": {{"$oid": "{OID}"}},"a": [1, {{"$date": 5}}], "b": NaN}}'
            ),
        ),
        (
            KEY,
            mongo_event(
                "u",
                updateDescription={
                    "updatedFields": '{"a.b": 1}',
                    "removedFields": ["c"],
                    "truncatedArrays": [{"field": "x", "size": 1}],
                },
            ),
        ),
        (
            KEY,
            mongo_event("u", patch='{"$set": {"a": {"$numberLong": "5"}}, "$unset": {"b": true}}'),
        ),
        (
            dumps({"id": 1}),
            dumps(
                {
                    "schema": envelope_schema([(n, s) for n, s, _, _ in LOGICAL_FIELDS]),
                    "payload": pg_payload({n: r for n, _, r, _ in LOGICAL_FIELDS}),
                }
            ),
        ),
        (
            dumps({"id": OID}),
            dumps({"_id": OID, "__deleted": "false", "__db": "a", "__collection": "b"}),
        ),
    ]
    return seeds


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.35:
        return rng.choice(
            [
                None,
                True,
                False,
                rng.randint(-(2**70), 2**70),
                rng.random() * 10 ** rng.randint(-5, 300),
                "",
                rng.choice(
                    ["c", "r", "u", "d", "t", "m", "x", "$oid", "$date", "NaN", "__deleted", OID]
                ),
                "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 6))),
            ]
        )
    keys = [
        "op",
        "after",
        "before",
        "source",
        "patch",
        "updateDescription",
        "id",
        "_id",
        "schema",
        "payload",
        "$oid",
        "$date",
        "$binary",
        "$type",
        "$numberLong",
        "ts_ms",
        "db",
        "collection",
        "table",
        "lsn",
        "file",
        "pos",
        "fields",
        "type",
        "name",
        "status",
        "ddl",
        "__deleted",
    ]
    if roll < 0.6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _mutate_structure(rng: random.Random, obj: Any, depth: int = 0) -> Any:
    """Replace one random node of a parsed message by random JSON (or a JSON string of it)."""
    if isinstance(obj, dict) and obj and depth < 6:
        k = rng.choice(list(obj))
        obj[k] = (
            _mutate_structure(rng, obj[k], depth + 1) if rng.random() < 0.6 else _random_json(rng)
        )
    elif isinstance(obj, list) and obj and depth < 6:
        i = rng.randrange(len(obj))
        obj[i] = _mutate_structure(rng, obj[i], depth + 1)
    elif isinstance(obj, str) and obj[:1] in ("{", "[") and rng.random() < 0.7:
        try:
            inner = json.loads(obj)
        except ValueError:
            return _random_json(rng)
        return json.dumps(_mutate_structure(rng, inner, depth + 1))
    else:
        return _random_json(rng)
    return obj


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    choice = rng.randrange(8)
    if choice == 0 and b:
        return bytes(b[: rng.randrange(len(b))])  # truncated
    if choice == 1 and b:
        for _ in range(rng.randint(1, 8)):  # bit flips
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if choice == 2:  # invalid UTF-8 spliced in
        i = rng.randrange(len(b) + 1)
        return (
            bytes(b[:i])
            + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
            + bytes(b[i:])
        )
    if choice == 3:  # deep nesting
        n = rng.choice([150, 199, 201, 300, 1100, 5000])
        return rng.choice([b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"[" * n])
    if choice == 4:  # huge numbers
        return rng.choice(
            [
                b'{"op":"c","ts_ms":' + b"9" * rng.randint(19, 5000) + b"}",
                b'{"op":"c","source":{"ts_ms":1e308,"db":"a","collection":"b"},"after":"{}"}',
                b'{"op":"c","after":"{\\"a\\":'
                + b"1" * rng.randint(19, 400)
                + b'}","source":{"db":"a","collection":"b","ts_ms":1}}',
                b"-" + b"9" * rng.randint(1, 500),
            ]
        )
    if choice == 5:
        return json.dumps(_random_json(rng)).encode()
    try:
        obj = json.loads(data)
    except ValueError:
        return bytes(b)
    return json.dumps(_mutate_structure(rng, obj)).encode()


def test_fuzz_only_decode_errors() -> None:
    """100,000 random and mutated messages: decode_json returns or raises DecodeError only."""
    rng = random.Random(20240531)
    seeds = _seeds()
    keys: list[bytes | None] = [
        None,
        b"",
        KEY,
        LEGACY_KEY,
        dumps({"id": 1}),
        b"{",
        b"\xff",
        b"null",
        dumps({"id": [1]}),
    ]
    topics = [TOPIC] * 8 + ["t"] * 3 + ["__debezium-heartbeat.x"]
    outcomes = {"record": 0, "skip": 0, "error": 0}
    codes: dict[str, int] = {}
    started = _time.monotonic()
    for n in range(100_000):
        key, value = rng.choice(seeds)
        if rng.random() < 0.9:
            value = _mutate_bytes(rng, value)
        if rng.random() < 0.15:
            key = rng.choice(keys)
        elif rng.random() < 0.05 and key:
            key = _mutate_bytes(rng, key)
        topic = rng.choice(topics)
        try:
            result = decode_json(
                key, value, topic, DecoderOptions(topic_tables={"t": ("s", "t")}, truncate="apply")
            )
        except DecodeError as exc:
            assert exc.code != "internal", (n, key, value[:300], exc)
            outcomes["error"] += 1
            codes[exc.code] = codes.get(exc.code, 0) + 1
        else:
            assert isinstance(result, Record | Skip), result
            outcomes["record" if isinstance(result, Record) else "skip"] += 1
    elapsed = _time.monotonic() - started
    assert outcomes["record"] > 1000 and outcomes["error"] > 10000, (outcomes, codes)
    assert elapsed < 60, elapsed
