"""MongoDB envelope shapes: keys before and after 1.4, every BSON type in ``after``,
change-stream patches, oplog patches, tombstones and envelope errors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sink.decode.envelope import DecoderOptions, mongo_key
from sink.records import DocText, Kind, Patch, Skip
from tests.decode.support import (
    KEY,
    LEGACY_KEY,
    LONG_1004,
    OID,
    TOPIC,
    decode,
    dumps,
    error,
    fx,
    mkey,
    mongo_event,
    ms,
    record,
)

# --------------------------------------------------------------------------- MongoDB shapes


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
    assert values["nested"] == DocText('{"arr":[1,{"x":2}]}')  # as jsonb stores it
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
    # ... and offers the plain MongoDB reading for a table keyed by _id to pick.
    assert smt.alt_keys == ({"_id": OID},)
    assert record(None, dumps({"id": "k2"})).alt_keys == ({"_id": "k2"},)
    # A Debezium key whose id text is valid extended JSON: every reading, Debezium's first.
    both = record(None, dumps({"id": "123"}))
    assert (both.key, both.alt_keys) == ({"_id": '{"$numberLong":"123"}'},
                                         ({"id": "123"}, {"_id": "123"}))
    assert record(None, dumps({"id": 7})).alt_keys == ({"_id": '{"$numberLong":"7"}'},)
    assert record(None, dumps({"a": 1, "b": 2})).alt_keys == ()


def test_tombstone_without_key_is_skipped() -> None:
    # Debezium's tombstone of a DELETE on a table without a primary key: null key and
    # value. Nothing names a row; never a dead letter (the DLQ could not carry it either).
    assert decode(None, None) == Skip("tombstone_without_key")
    assert decode(b"", None) == Skip("tombstone_without_key")
    assert decode(None, b"") == Skip("tombstone_without_key")


def test_names_postgresql_cannot_hold_are_bad_identifiers() -> None:
    # As a JSON escape in the event (valid JSON; PostgreSQL refuses NUL in any text).
    for db, coll in ((r"sh\u0000op", "users"), ("shop", r"us\u0000ers")):
        event = mongo_event("c", after='{"_id": 1}').replace(b'"shop"', f'"{db}"'.encode())
        event = event.replace(b'"users"', f'"{coll}"'.encode())
        assert error(event, KEY) == "bad_identifier", (db, coll)
    assert record(mongo_event("c", after='{"_id": 1}'), KEY).table == "users"
