"""Column types from the source type Debezium propagates (``column.propagate.source.type``:
``__debezium.source.column.*`` schema parameters), and Bits/Point/Enum without it (issue 13
item 2), written to the real PostgreSQL. Values are the ones the real PostgreSQL connector
3.6.1 sent for the same source values (tests/e2e/debezium), and each column is compared
with what PostgreSQL itself makes of the source literal."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from sink.decode import decode_json
from sink.errors import RecordError
from sink.postgres import PostgreSQLDestinationConnector
from sink.postgres.names import qualified
from tests.decode.support import envelope_schema, pg_payload
from tests.postgres.support import META, column_types

pytestmark = pytest.mark.integration

Db = Callable[..., Awaitable[tuple["asyncpg.Connection[Any]", PostgreSQLDestinationConnector]]]


def src(spec: dict[str, Any], name: str, length: int = 2147483647, scale: int = 0
        ) -> dict[str, Any]:
    """``spec`` with the parameters column.propagate.source.type adds (as the connector
    spells them: upper-case type names, length 2147483647 when there is none)."""
    params = {**spec.get("parameters", {}), "__debezium.source.column.type": name,
              "__debezium.source.column.length": str(length),
              "__debezium.source.column.scale": str(scale)}
    return {**spec, "parameters": params}


S = {"type": "string"}
BITS = "io.debezium.data.Bits"
POINT = {"type": "struct", "name": "io.debezium.data.geometry.Point", "fields": [
    {"field": "x", "type": "double"}, {"field": "y", "type": "double"},
    {"field": "wkb", "type": "bytes", "optional": True},
    {"field": "srid", "type": "int32", "optional": True}]}
DEC2 = {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
        "parameters": {"scale": "2"}}

# column, field schema, [(the connector's value, the source literal)], source type
CASES: list[tuple[str, dict[str, Any], list[tuple[Any, str | None]], str]] = [
    ("vc", src(S, "VARCHAR", 20), [("varchar", "varchar"), ("", "")], "varchar(20)"),
    ("ch", src(S, "BPCHAR", 5), [("ab   ", "ab"), ("     ", "")], "char(5)"),
    ("ip", src(S, "INET"), [("192.168.1.5/24", "192.168.1.5/24"), ("::1", "::1/128")], "inet"),
    ("net", src(S, "CIDR"), [("10.0.0.0/8", "10.0.0.0/8"), ("::/0", "::/0")], "cidr"),
    ("mac", src(S, "MACADDR"), [("08:00:2b:01:02:03", "08:00:2b:01:02:03")] * 2, "macaddr"),
    ("m", src(DEC2, "MONEY"), [("BNI=", "12.34"), ("gAAAAAAAAAA=", "-92233720368547758.08")],
     "money"),
    ("ms", src(S, "MONEY"), [("12.34", "12.34"), ("-0.01", "-0.01")], "money"),
    ("x", src({"type": "string", "name": "io.debezium.data.Xml"}, "XML"),
     [('<r a="1">x</r>', '<r a="1">x</r>'), ("<big>é</big>", "<big>é</big>")], "xml"),
    ("j", src({"type": "string", "name": "io.debezium.data.Json"}, "JSON"),
     [('{"a": 2.500,  "b": [1, 2], "a": 3}', '{"a": 2.500,  "b": [1, 2], "a": 3}'),
      ("null", "null")], "json"),
    ("p", src(POINT, "POINT"), [({"x": 1e300, "y": -1e-300, "wkb": None, "srid": None},
                                 "(1e300,-1e-300)"),
                                ({"x": -0.0, "y": 1.5, "wkb": None, "srid": None}, "(-0,1.5)")],
     "point"),
    ("b12", src({"type": "bytes", "name": BITS, "parameters": {"length": "12"}}, "BIT", 12),
     [("qgo=", "101010101010"), ("", "000000000000")], "bit(12)"),
    ("vb", src({"type": "bytes", "name": BITS, "parameters": {"length": "64"}}, "VARBIT", 64),
     [("DQ==", "1101"), ("//////////8=", "1" * 64)], "varbit(64)"),
    ("b1", src({"type": "boolean"}, "BIT", 1), [(True, "1"), (False, "0")], "bit(1)"),
    ("r4", src(S, "INT4RANGE"), [("[1,10)", "[1,10)"), ("empty", "empty")], "int4range"),
    ("rtz", src(S, "TSTZRANGE"), [('["2024-01-01 00:00:00+00",)', "[2024-01-01 00:00+00,)"),
                                  ("(,)", "(,)")], "tstzrange"),
    ("n", src(S, "NUMERIC", 10, 2), [("12345.67", "12345.67"), ("-99999999.99", "-99999999.99")],
     "numeric(10,2)"),  # decimal.handling.mode=string
    ("nv", src(S, "NUMERIC", 0), [("2.500", "2.500"), ("NaN", "NaN")], "numeric"),
    ("ts2", src({"type": "string", "name": "io.debezium.time.ZonedTimestamp"}, "TIMESTAMPTZ",
                30, 2), [("2024-02-29T12:45:30.12Z", "2024-02-29 12:45:30.12+00")] * 2,
     "timestamptz(2)"),
    ("e", src({"type": "string", "name": "io.debezium.data.Enum",
               "parameters": {"allowed": "sad,happy"}}, '"APP"."MOOD"'),
     [("happy", "happy"), ("sad", "sad")], "text"),
]


def _event(fields: list[tuple[str, dict[str, Any]]], row: dict[str, Any], db: str) -> Any:
    payload = pg_payload(row)
    payload["source"]["schema"] = db
    value = json.dumps({"schema": envelope_schema(fields), "payload": payload}).encode()
    key = json.dumps({"schema": {"type": "struct", "fields": [{"field": "id", "type": "int64"}]},
                      "payload": {"id": row["id"]}}).encode()
    rec = decode_json(key, value, "topic")
    rec.offset = row["id"]
    return rec


@pytest.fixture
async def fresh_db(stack: Any) -> AsyncIterator[Db]:
    """``await fresh_db(*extensions)``: a new database (with those extensions) and a
    connected sink on it; the test's own connection to it comes first."""
    opened: list[Any] = []

    async def make(*extensions: str) -> tuple[asyncpg.Connection[Any],
                                              PostgreSQLDestinationConnector]:
        name = f"srctypes_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(stack.pg_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        dsn = f"{stack.pg_dsn.rpartition('/')[0]}/{name}"
        conn = await asyncpg.connect(dsn, server_settings={"TimeZone": "UTC"})
        opened.append(conn)
        for ext in extensions:
            await conn.execute(f"CREATE EXTENSION {ext}")
        dest = PostgreSQLDestinationConnector(dsn, min_connections=1, max_connections=2,
                                              metadata_schema=META)
        await dest.connect()
        opened.append(dest)
        return conn, dest

    yield make
    for o in reversed(opened):
        await (o.disconnect() if isinstance(o, PostgreSQLDestinationConnector) else o.close())


async def test_propagated_source_types_create_the_source_column_and_land_exactly(
    fresh_db: Db,
) -> None:
    conn, dest = await fresh_db()
    fields = [("id", {"type": "int64"}), *((c, spec) for c, spec, _, _ in CASES)]
    rows = [{"id": i + 1, **{c: vals[i][0] for c, _, vals, _ in CASES}} for i in range(2)]
    await dest.write_batch("app", [_event(fields, r, "app") for r in rows])

    # the source's own declarations, and PostgreSQL's reading of the source's literals
    await conn.execute("CREATE TEMP TABLE src (" + ", ".join(f"{c} {t}" for c, _, _, t in CASES)
                       + ")")
    declared = {r["attname"]: r["t"] for r in await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute "
        "WHERE attrelid = 'src'::regclass AND attnum > 0")}
    types = await column_types(conn, "app", "t")
    assert {c: types[c] for c, _, _, _ in CASES} == declared
    casts = [f"${k + 1}::text" + ("::numeric" if t == "money" else "") + f"::{t}"
             for k, (_, _, _, t) in enumerate(CASES)]
    for i in range(2):
        await conn.execute(f"INSERT INTO src VALUES ({', '.join(casts)})",
                           *[vals[i][1] for _, _, vals, _ in CASES])
    cols = ", ".join(f"{c}::text" for c, _, _, _ in CASES)
    source = [tuple(r) for r in await conn.fetch(f"SELECT {cols} FROM src")]
    target = [tuple(r) for r in await conn.fetch(
        f"SELECT {cols} FROM {qualified('app', 't')} ORDER BY id")]
    assert target == source
    assert await conn.fetchval(f"SELECT count(*) FROM {qualified('app', 't')} "
                               "WHERE _cartridge_overflow IS NOT NULL") == 0


HSTORE = src({"type": "string", "name": "io.debezium.data.Json"}, "HSTORE")
CITEXT = src(S, "CITEXT")
EXT_FIELDS = [("id", {"type": "int64"}), ("h", HSTORE), ("ci", CITEXT)]
EXT_ROWS = [{"id": 1, "h": '{"a":"1","b c":null,"q\\"\\\\":"x\\"y"}', "ci": "MiXeD"},
            {"id": 2, "h": "{}", "ci": ""}]


async def test_citext_and_hstore_when_the_target_has_the_extensions(fresh_db: Db) -> None:
    conn, dest = await fresh_db("hstore", "citext")
    await dest.write_batch("app", [_event(EXT_FIELDS, r, "app") for r in EXT_ROWS])
    types = await column_types(conn, "app", "t")
    assert (types["h"], types["ci"]) == ("hstore", "citext")
    got = await conn.fetch(f"SELECT h, ci, ci = 'mixed' AS folded FROM {qualified('app', 't')} "
                           "ORDER BY id")
    # hstore keeps a NULL value apart from the text 'NULL', and quotes and backslashes
    assert got[0]["h"] == await conn.fetchval(
        """SELECT '"a"=>"1", "b c"=>NULL, "q\\"\\\\"=>"x\\"y"'::hstore::text""")
    assert await conn.fetchval(f"SELECT h -> 'q\"\\' FROM {qualified('app', 't')} "
                               "WHERE id = 1") == 'x"y'
    assert (got[0]["ci"], got[0]["folded"], got[1]["h"]) == ("MiXeD", True, "")


async def test_citext_and_hstore_without_the_extensions_fall_back(fresh_db: Db) -> None:
    conn, dest = await fresh_db()
    await dest.write_batch("app", [_event(EXT_FIELDS, r, "app") for r in EXT_ROWS])
    types = await column_types(conn, "app", "t")
    assert (types["h"], types["ci"]) == ("jsonb", "text")
    got = await conn.fetchrow(f"SELECT h::text, ci FROM {qualified('app', 't')} WHERE id = 1")
    assert tuple(got) == ('{"a": "1", "b c": null, "q\\"\\\\": "x\\"y"}', "MiXeD")


async def test_without_propagation_bits_points_enums_and_money(fresh_db: Db) -> None:
    """Bits(length=n) → bit varying(n) with its n bits (the little-endian bytes padded back
    to n), Point → point, Enum → text, money's Decimal → numeric (its scale)."""
    conn, dest = await fresh_db()
    fields = [("id", {"type": "int64"}),
              ("b", {"type": "bytes", "name": BITS, "parameters": {"length": "12"}}),
              ("p", POINT), ("e", {"type": "string", "name": "io.debezium.data.Enum",
                                   "parameters": {"allowed": "sad,happy"}}),
              ("m", DEC2)]
    rows = [{"id": 1, "b": "qgo=", "p": {"x": 1.5, "y": -2.25, "wkb": None, "srid": None},
             "e": "happy", "m": "BNI="},
            {"id": 2, "b": "AQ==", "p": {"x": 0.1, "y": 1e-300, "wkb": None, "srid": None},
             "e": "sad", "m": "gAAAAAAAAAA="},
            {"id": 3, "b": "", "p": None, "e": None, "m": None}]
    await dest.write_batch("app", [_event(fields, r, "app") for r in rows])
    types = await column_types(conn, "app", "t")
    assert [types[c] for c in "bpem"] == ["bit varying(12)", "point", "text", "numeric"]
    got = await conn.fetch(f"SELECT b::text, p::text, e, m::text FROM {qualified('app', 't')} "
                           "ORDER BY id")
    assert [tuple(r) for r in got] == [
        ("101010101010", "(1.5,-2.25)", "happy", "12.34"),
        ("000000000001", "(0.1,1e-300)", "sad", "-92233720368547758.08"),
        ("000000000000", None, None, None)]


async def test_a_value_the_source_type_refuses_is_the_records_fault(fresh_db: Db) -> None:
    """Text PostgreSQL cannot read as the column's type (here an inet) fails that record
    (the service dead-letters it with bad_value); the column keeps its type."""
    conn, dest = await fresh_db()
    fields = [("id", {"type": "int64"}), ("ip", src(S, "INET"))]
    await dest.write_batch("app", [_event(fields, {"id": 1, "ip": "10.0.0.1"}, "app")])
    with pytest.raises(RecordError, match="inet"):
        await dest.write_batch("app", [_event(fields, {"id": 2, "ip": "not an address"}, "app")])
    assert (await column_types(conn, "app", "t"))["ip"] == "inet"
    assert await conn.fetchval(f"SELECT count(*) FROM {qualified('app', 't')}") == 1


# Keyless tables (REPLICA IDENTITY FULL) whose columns have no equality operator.
KEYLESS_FIELDS = [("n", {"type": "int32"}),
          ("j", src({"type": "string", "name": "io.debezium.data.Json"}, "JSON")),
          ("x", src({"type": "string", "name": "io.debezium.data.Xml"}, "XML")),
          ("p", src(POINT, "POINT")),
          ("pj", {"type": "string", "name": "io.debezium.data.Json"})]


def _keyless(db: str, op: str, pos: int, before: dict[str, Any] | None,
             after: dict[str, Any] | None) -> Any:
    payload = pg_payload(after or {}, op)  # type: ignore[arg-type]
    payload["after"], payload["before"] = after, before
    payload["source"]["schema"], payload["source"]["lsn"] = db, pos
    value = json.dumps({"schema": envelope_schema(KEYLESS_FIELDS), "payload": payload}).encode()
    rec = decode_json(None, value, "topic")
    rec.offset = pos
    return rec


def _row(n: int, j: str) -> dict[str, Any]:
    return {"n": n, "j": j, "x": f"<r>{n}</r>", "p": {"x": n, "y": -n, "wkb": None, "srid": None},
            "pj": j}


async def test_full_identity_matches_rows_on_json_xml_and_point_columns(fresh_db: Db) -> None:
    conn, dest = await fresh_db()
    db = "app"
    one, two = _row(1, '{"a": 2.500}'), _row(2, '{"b":  [1]}')
    await dest.write_batch(db, [
        _keyless(db, "c", 1, None, one), _keyless(db, "c", 2, None, two),
        _keyless(db, "u", 3, one, {**one, "n": 10}),
        _keyless(db, "d", 4, two, None)])
    rows = await conn.fetch('SELECT n, j::text, x::text, p::text, pj::text FROM "app"."t" '
                            "WHERE NOT is_deleted ORDER BY n")
    assert [tuple(r) for r in rows] == [(10, '{"a": 2.500}', "<r>1</r>", "(1,-1)",
                                         '{"a": 2.500}')]


INET_KEY = src(S, "INET")


def _inet_event(op: str, pos: int, after: dict[str, Any] | None,
                before: dict[str, Any] | None = None) -> Any:
    payload = pg_payload(after or {}, op)
    payload["after"], payload["before"] = after, before
    payload["source"]["schema"], payload["source"]["lsn"] = "app", pos
    fields = [("ip", INET_KEY), ("v", {"type": "int32"})]
    value = json.dumps({"schema": envelope_schema(fields), "payload": payload}).encode()
    key = json.dumps({"schema": {"type": "struct", "fields": [{"field": "ip", **INET_KEY}]},
                      "payload": {"ip": (after or before or {})["ip"]}}).encode()
    rec = decode_json(key, value, "topic")
    rec.offset = pos
    return rec


async def test_a_primary_key_of_a_text_cast_type_upserts_and_deletes(fresh_db: Db) -> None:
    conn, dest = await fresh_db()
    await dest.write_batch("app", [_inet_event("c", 1, {"ip": "10.0.0.1", "v": 1}),
                                   _inet_event("c", 2, {"ip": "::1", "v": 2})])
    await dest.write_batch("app", [_inet_event("u", 3, {"ip": "10.0.0.1", "v": 3}),
                                   _inet_event("d", 4, None, {"ip": "::1", "v": 2})])
    types = await column_types(conn, "app", "t")
    assert types["ip"] == "inet"
    rows = await conn.fetch('SELECT ip::text, v, is_deleted FROM "app"."t" ORDER BY 1')
    assert [tuple(r) for r in rows] == [("10.0.0.1/32", 3, False), ("::1/128", 2, True)]
