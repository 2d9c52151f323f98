"""Relational envelopes from every fixture: upserts, deletes, truncates, CloudEvents, the
table from ``source``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sink.records import Kind, Skip
from tests.decode.support import (
    TOPIC,
    decode,
    dumps,
    envelope_schema,
    error,
    fx,
    ms,
    record,
)

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


def fx_json(path: str) -> Any:
    return json.loads(fx(path))


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
    # Without a record key (a table without a primary key): the row is found by its
    # before image, unless the table's keyless mode says otherwise.
    keyless = record(fx(path), None)
    assert (keyless.kind, keyless.key, keyless.keyless, keyless.position) == (
        Kind.DELETE, {}, "match_before", position)
    assert keyless.before == fx_json(path)["before"]
    assert error(fx(path), None, keyless="dead_letter") == "missing_key"


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
