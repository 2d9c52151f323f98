"""Hostile source (attack pass): the source widens a varchar(n)/char(n) column (ALTER COLUMN
TYPE) mid-stream, then sends values longer than the old length. The sink created the column
with the old propagated type; the longer values are legitimate source rows and must land
(widened), not be refused by PostgreSQL as too long and dead-lettered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sink.decode.envelope import decode_json
from sink.errors import WarpError
from sink.records import Record
from tests.decode.support import envelope_schema, pg_payload
from tests.postgres.support import Maker, column_types

pytestmark = pytest.mark.integration


def _rec(db: str, name: str, length: int, i: int, value: str) -> Record:
    spec: dict[str, Any] = {"type": "string", "parameters": {
        "__debezium.source.column.type": name, "__debezium.source.column.length": str(length),
        "__debezium.source.column.scale": "0"}}
    if name in ("BIT", "VARBIT"):  # Debezium Bits: bytes, least significant byte first
        spec = {**spec, "type": "bytes", "name": "io.debezium.data.Bits",
                "parameters": {**spec["parameters"], "length": str(length)}}
    payload = pg_payload({"id": i, "s": value})
    payload["source"]["schema"], payload["source"]["lsn"] = db, 100 + i
    value_msg = {"schema": envelope_schema([("id", {"type": "int64"}), ("s", spec)]),
                 "payload": payload}
    key = {"schema": {"type": "struct", "fields": [{"field": "id", "type": "int64"}]},
           "payload": {"id": i}}
    rec = decode_json(json.dumps(key).encode(), json.dumps(value_msg).encode(), "topic")
    assert isinstance(rec, Record)
    rec.topic, rec.partition, rec.offset = "topic", 0, i
    return rec


@pytest.mark.parametrize(("name", "created"), [("VARCHAR", "character varying(3)"),
                                               ("BPCHAR", "character(3)")])
async def test_a_source_alter_to_a_longer_string_type_widens_the_column(
    make_dest: Maker, pg_schema_factory: Any, pg: Any, name: str, created: str
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    bad: list[tuple[Record, WarpError]] = []

    async def on_bad(failed: list[tuple[Record, WarpError]]) -> None:
        bad.extend(failed)

    await dest.apply([_rec(db, name, 3, 1, "abc")], {}, "g", on_bad=on_bad)
    assert (await column_types(pg, db, "t"))["s"] == created
    # ALTER TABLE t ALTER COLUMN s TYPE varchar(10) / char(10) on the source
    await dest.apply([_rec(db, name, 10, 2, "abcdefghij")], {}, "g", on_bad=on_bad)
    assert [(r.offset, e.code) for r, e in bad] == []
    got = {r["id"]: r["s"] for r in await pg.fetch(f'SELECT id, s::text AS s FROM "{db}".t')}
    assert got == {1: "abc", 2: "abcdefghij"}
    assert (await column_types(pg, db, "t"))["s"] in ("text", "character varying(10)",
                                                      "character(10)")


# (type, old length, value, its bits, new length, new value, its bits)
BITS = [("BIT", 4, "Cg==", "1010", 8, "pQ==", "10100101"),
        ("VARBIT", 4, "Cg==", "1010", 8, "pQ==", "10100101"),
        ("BIT", 8, "pQ==", "10100101", 4, "Cg==", "1010")]  # bit(8) would pad 1010 to 8


@pytest.mark.parametrize(("name", "n", "v", "first", "m", "w", "bits"), BITS)
async def test_a_source_alter_to_a_longer_bit_string_keeps_every_bit(
    make_dest: Maker, pg_schema_factory: Any, pg: Any, name: str, n: int, v: str, first: str,
    m: int, w: str, bits: str
) -> None:
    """An explicit cast to bit(n)/bit varying(n) cuts a longer bit string (and bit(n) pads a
    shorter one) silently: after the source altered the column, the new value is stored
    as it is."""
    dest = await make_dest()
    db = await pg_schema_factory()
    bad: list[tuple[Record, WarpError]] = []

    async def on_bad(failed: list[tuple[Record, WarpError]]) -> None:
        bad.extend(failed)

    await dest.apply([_rec(db, name, n, 1, v)], {}, "g", on_bad=on_bad)
    await dest.apply([_rec(db, name, m, 2, w)], {}, "g", on_bad=on_bad)
    got = {r["id"]: r["s"] for r in await pg.fetch(f'SELECT id, s::text AS s FROM "{db}".t')}
    assert ([(r.offset, str(e)) for r, e in bad], got) == ([], {1: first, 2: bits})


async def test_bits_without_a_length_land_in_an_unbounded_bit_varying(
    make_dest: Maker, pg_schema_factory: Any, pg: Any
) -> None:
    """A Bits field without a length (an unbounded varbit) makes a ``bit varying`` column
    from its value; the sink's BitString must reach it (asyncpg wants its own type)."""
    dest = await make_dest()
    db = await pg_schema_factory()
    bits = {"type": "bytes", "name": "io.debezium.data.Bits"}
    payload = pg_payload({"id": 1, "s": "pQ=="})
    payload["source"]["schema"] = db
    value = {"schema": envelope_schema([("id", {"type": "int64"}), ("s", bits)]),
             "payload": payload}
    key = {"schema": {"type": "struct", "fields": [{"field": "id", "type": "int64"}]},
           "payload": {"id": 1}}
    rec = decode_json(json.dumps(key).encode(), json.dumps(value).encode(), "topic")
    assert isinstance(rec, Record)
    rec.topic, rec.partition, rec.offset = "topic", 0, 1
    bad: list[tuple[Record, WarpError]] = []

    async def on_bad(failed: list[tuple[Record, WarpError]]) -> None:
        bad.extend(failed)

    await dest.apply([rec], {}, "g", on_bad=on_bad)
    got = await pg.fetch(f'SELECT s::text AS s FROM "{db}".t')
    assert ([str(e) for _, e in bad], [r["s"] for r in got]) == ([], ["10100101"])
    assert (await column_types(pg, db, "t"))["s"] == "bit varying"


POINT = {"type": "struct", "name": "io.debezium.data.geometry.Point", "fields": [
    {"field": "x", "type": "double"}, {"field": "y", "type": "double"},
    {"field": "wkb", "type": "bytes", "optional": True},
    {"field": "srid", "type": "int32", "optional": True}]}


@pytest.mark.parametrize("propagated", [False, True])
async def test_a_point_with_nan_and_infinite_coordinates_lands(
    make_dest: Maker, pg_schema_factory: Any, pg: Any, propagated: bool
) -> None:
    """PostgreSQL's point holds NaN and ±Infinity coordinates; Kafka's JsonConverter writes
    such doubles as the strings "NaN"/"Infinity" (as it does for a plain double field,
    which the sink reads)."""
    dest = await make_dest()
    db = await pg_schema_factory()
    spec = {**POINT, "parameters": {"__debezium.source.column.type": "POINT"}} if propagated \
        else POINT
    rows = {1: ("NaN", "-Infinity"), 2: ("Infinity", 1.5), 3: (0.5, 2.0)}
    recs = []
    for i, (x, y) in rows.items():
        payload = pg_payload({"id": i, "p": {"x": x, "y": y, "wkb": None, "srid": None}})
        payload["source"]["schema"], payload["source"]["lsn"] = db, 100 + i
        value = {"schema": envelope_schema([("id", {"type": "int64"}), ("p", spec)]),
                 "payload": payload}
        key = {"schema": {"type": "struct", "fields": [{"field": "id", "type": "int64"}]},
               "payload": {"id": i}}
        rec = decode_json(json.dumps(key).encode(), json.dumps(value).encode(), "topic")
        assert isinstance(rec, Record), rec
        rec.topic, rec.partition, rec.offset = "topic", 0, i
        recs.append(rec)
    bad: list[tuple[Record, WarpError]] = []

    async def on_bad(failed: list[tuple[Record, WarpError]]) -> None:
        bad.extend(failed)

    await dest.apply(recs, {}, "g", on_bad=on_bad)
    got = {r["id"]: r["p"] for r in await pg.fetch(f'SELECT id, p::text AS p FROM "{db}".t')}
    assert ([str(e) for _, e in bad], got) == (
        [], {1: "(NaN,-Infinity)", 2: "(Infinity,1.5)", 3: "(0.5,2)"})
    assert (await column_types(pg, db, "t"))["p"] == "point"


def _num(db: str, p: int, s: int, i: int, value: str) -> Record:
    """A NUMERIC(p,s) column as decimal.handling.mode=string writes it."""
    spec = {"type": "string", "parameters": {
        "__debezium.source.column.type": "NUMERIC", "__debezium.source.column.length": str(p),
        "__debezium.source.column.scale": str(s)}}
    payload = pg_payload({"id": i, "s": value})
    payload["source"]["schema"], payload["source"]["lsn"] = db, 100 + i
    value_msg = {"schema": envelope_schema([("id", {"type": "int64"}), ("s", spec)]),
                 "payload": payload}
    key = {"schema": {"type": "struct", "fields": [{"field": "id", "type": "int64"}]},
           "payload": {"id": i}}
    rec = decode_json(json.dumps(key).encode(), json.dumps(value_msg).encode(), "topic")
    assert isinstance(rec, Record)
    rec.topic, rec.partition, rec.offset = "topic", 0, i
    return rec


@pytest.mark.parametrize(("old", "new", "value"), [
    ((5, 2), (10, 2), "12345678.90"),  # more digits: numeric(5,2) would refuse it
    ((10, 2), (10, 4), "1.2345"),  # more scale: numeric(10,2) would round it to 1.23
])
async def test_a_source_alter_to_a_wider_numeric_keeps_the_value(
    make_dest: Maker, pg_schema_factory: Any, pg: Any, old: tuple[int, int],
    new: tuple[int, int], value: str
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    bad: list[tuple[Record, WarpError]] = []

    async def on_bad(failed: list[tuple[Record, WarpError]]) -> None:
        bad.extend(failed)

    await dest.apply([_num(db, *old, 1, "1.50")], {}, "g", on_bad=on_bad)
    assert (await column_types(pg, db, "t"))["s"] == f"numeric({old[0]},{old[1]})"
    await dest.apply([_num(db, *new, 2, value)], {}, "g", on_bad=on_bad)
    got = {r["id"]: r["s"] for r in await pg.fetch(f'SELECT id, s::text AS s FROM "{db}".t')}
    assert ([str(e) for _, e in bad], got.get(2)) == ([], value)


def _ts(db: str, logical: str, src: str, p: int, i: int, value: Any) -> Record:
    spec = {"type": "int64", "name": logical, "parameters": {
        "__debezium.source.column.type": src, "__debezium.source.column.length": "29",
        "__debezium.source.column.scale": str(p)}}
    payload = pg_payload({"id": i, "s": value})
    payload["source"]["schema"], payload["source"]["lsn"] = db, 100 + i
    value_msg = {"schema": envelope_schema([("id", {"type": "int64"}), ("s", spec)]),
                 "payload": payload}
    key = {"schema": {"type": "struct", "fields": [{"field": "id", "type": "int64"}]},
           "payload": {"id": i}}
    rec = decode_json(json.dumps(key).encode(), json.dumps(value_msg).encode(), "topic")
    assert isinstance(rec, Record)
    rec.topic, rec.partition, rec.offset = "topic", 0, i
    return rec


@pytest.mark.parametrize(("src", "old", "new", "created", "want"), [
    ("TIMESTAMP", ("io.debezium.time.Timestamp", 3, 1_700_000_000_123),
     ("io.debezium.time.MicroTimestamp", 6, 1_700_000_000_123_456),
     "timestamp(3) without time zone", "2023-11-14 22:13:20.123456"),
    ("TIME", ("io.debezium.time.MicroTime", 0, 3_600_000_000),
     ("io.debezium.time.MicroTime", 6, 3_600_000_001), "time(0) without time zone",
     "01:00:00.000001"),
])
async def test_a_source_alter_to_a_finer_time_keeps_the_fraction(
    make_dest: Maker, pg_schema_factory: Any, pg: Any, src: str, old: tuple[str, int, int],
    new: tuple[str, int, int], created: str, want: str
) -> None:
    """timestamp(3) -> timestamp(6) on the source: the microseconds must not be rounded off
    by the column the sink created from the old precision."""
    dest = await make_dest()
    db = await pg_schema_factory()
    await pg.execute("SET TimeZone = 'UTC'")
    await dest.write_batch(db, [_ts(db, old[0], src, old[1], 1, old[2])])
    assert (await column_types(pg, db, "t"))["s"] == created
    await dest.write_batch(db, [_ts(db, new[0], src, new[1], 2, new[2])])
    got = {r["id"]: r["s"] for r in await pg.fetch(f'SELECT id, s::text AS s FROM "{db}".t')}
    assert got[2] == want
