"""Every MongoDB fixture (Debezium 0.x to 3.x, as the connectors wrote them) decodes to
the record it describes; non-data records are skipped with their reason."""

from __future__ import annotations

import json
import re

import pytest

from sink.decode.extjson import ObjectId
from sink.records import Kind, Patch, Skip
from tests.decode.support import (
    FIXTURES,
    LONG_1004,
    OID,
    decode,
    dumps,
    error,
    fx,
    mkey,
    ms,
    record,
)

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
    payload = json.loads(values["payload"].text)  # a DocText: the jsonb rendering
    assert payload["_id"] == {"$oid": payload["_id"]["$oid"]}
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
