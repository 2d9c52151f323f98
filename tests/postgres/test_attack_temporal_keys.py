"""Hostile source (attack pass): extreme dates and times as PRIMARY KEY columns. A relational
table keyed by a date or a timestamp receives the values the extremes work writes exactly in
data columns (year 1, 9999, BC, past 9999, ±infinity): the key column must hold the same
value the source row had, on the statement and the COPY path, and a delete must find it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sink.decode.envelope import DecoderOptions, decode_json
from sink.records import Kind, Patch, Record
from tests.postgres.support import Maker

pytestmark = pytest.mark.integration

DATE = {"type": "int32", "name": "io.debezium.time.Date"}
US_TS = {"type": "int64", "name": "io.debezium.time.MicroTimestamp"}
# (the key column's schema, its PostgreSQL type, [(wire value, the source literal)])
KEYS = {
    "date": (DATE, "date", [(-719162, "0001-01-01"), (2932896, "9999-12-31"),
                            (-735160, "0044-03-15 BC"), (2145042905, "5874897-12-31"),
                            (-622191234, "infinity"), (-625821272, "-infinity"),
                            (19000, "2022-01-08")]),
    "ts": (US_TS, "timestamp without time zone",
           [(-62135596800000000, "0001-01-01 00:00:00"),
            (253402300799999999, "9999-12-31 23:59:59.999999"),
            (-63517780800000000, "0044-03-15 12:00:00 BC"),
            (253402300800000000, "10000-01-01 00:00:00"),
            (9223372036825200000, "infinity"), (1_700_000_000_000_000, "2023-11-14 22:13:20")]),
    "time": ({"type": "int64", "name": "io.debezium.time.MicroTime"}, "time without time zone",
             [(86_400_000_000, "24:00:00"), (0, "00:00:00"), (86_399_999_999, "23:59:59.999999")]),
    "timetz": ({"type": "string", "name": "io.debezium.time.ZonedTime"}, "time with time zone",
               [("24:00:00Z", "24:00:00+00"), ("12:00:00+05:30", "12:00:00+05:30"),
                ("12:00:00Z", "12:00:00+00")]),
    "tstz": ({"type": "string", "name": "io.debezium.time.ZonedTimestamp"},
             "timestamp with time zone",
             [("0001-01-01T00:00:00Z", "0001-01-01 00:00:00+00"),
              ("0000-12-31T23:59:59Z", "0001-12-31 23:59:59+00 BC"),
              ("+10000-01-01T00:00:00.5+02:00", "10000-01-01 00:00:00.5+02"),
              ("infinity", "infinity"), ("-infinity", "-infinity")]),
}
INTERVAL = ({"type": "int64", "name": "io.debezium.time.MicroDuration"}, "interval",
            [(3_600_000_000, "01:00:00"), (-1, "-00:00:00.000001"), (0, "00:00:00"),
             (86_400_000_000 * 400, "9600:00:00")])
INET = ({"type": "string", "parameters": {"__debezium.source.column.type": "INET",
                                          "__debezium.source.column.length": "2147483647",
                                          "__debezium.source.column.scale": "0"}},
        "inet", [("10.0.0.1", "10.0.0.1"), ("::1", "::1"), ("192.168.0.0/16", "192.168.0.0/16")])


def _event(db: str, schema: dict[str, Any], key: Any, n: int | None,
           lsn: int) -> tuple[bytes, bytes]:
    row = {"type": "struct", "name": "srv.x.t.Value", "optional": True,
           "fields": [{"field": "k", **schema}, {"field": "n", "type": "int32",
                                                "optional": True}]}
    env = {"type": "struct", "name": "srv.x.t.Envelope", "fields": [
        {**row, "field": "before"}, {**row, "field": "after"},
        {"type": "struct", "field": "source", "fields": []}, {"type": "string", "field": "op"}]}
    op = "u" if n is not None else "d"
    image = {"k": key, "n": n}
    payload = {"before": image if op == "d" else None, "after": image if op == "u" else None,
               "op": op, "ts_ms": 1, "source": {"connector": "postgresql", "db": "db",
                                               "schema": db, "table": "t", "ts_ms": 1,
                                               "lsn": lsn}}
    key_msg = {"schema": {"type": "struct", "fields": [{"field": "k", **schema}]},
               "payload": {"k": key}}
    return json.dumps(key_msg).encode(), json.dumps({"schema": env, "payload": payload}).encode()


def _decode(db: str, schema: dict[str, Any], key: Any, n: int | None, lsn: int) -> Record:
    k, v = _event(db, schema, key, n, lsn)
    rec = decode_json(k, v, "srv.x.t", DecoderOptions())
    assert isinstance(rec, Record), rec
    return rec


@pytest.mark.parametrize("path", ["unnest", "copy", "merge", "merge-copy"])
@pytest.mark.parametrize("kind", sorted(KEYS))
async def test_extreme_temporal_primary_keys_land_exactly(
    make_dest: Maker, pg_schema_factory: Any, pg: Any, kind: str, path: str
) -> None:
    await _keys_land_and_delete(make_dest, pg_schema_factory, pg, KEYS[kind], path)


@pytest.mark.parametrize("path", ["unnest", "copy"])
async def test_interval_primary_keys_upsert_replay_and_delete(
    make_dest: Maker, pg_schema_factory: Any, pg: Any, path: str
) -> None:
    """Fixed: an interval key travelled to asyncpg as a timedelta in the text[] parameter
    its column type uses (every record dead-lettered; on COPY the service stopped)."""
    await _keys_land_and_delete(make_dest, pg_schema_factory, pg, INTERVAL, path)


ARRAY = ({"type": "array", "items": {"type": "int32"}}, "integer[]",
         [([1, 2], "{1,2}"), ([], "{}"), ([3], "{3}")])


async def test_array_primary_keys_upsert_replay_and_delete(
    make_dest: Maker, pg_schema_factory: Any, pg: Any
) -> None:
    """A primary key column of an array type (PostgreSQL allows it, Debezium sends a list).
    Fixed: the list key was unhashable in the writer's grouping and stopped the service."""
    await _keys_land_and_delete(make_dest, pg_schema_factory, pg, ARRAY, "unnest")


async def test_inet_primary_keys_take_partial_updates(
    make_dest: Maker, pg_schema_factory: Any, pg: Any
) -> None:
    """Fixed: the partial-update statement compared an inet (or interval) key column with
    the key's text unconverted (``inet = text``): the service stopped (FatalError)."""
    await _keys_land_and_delete(make_dest, pg_schema_factory, pg, INET, "unnest")


async def _keys_land_and_delete(make_dest: Maker, pg_schema_factory: Any, pg: Any,
                                spec: tuple[dict[str, Any], str, list[tuple[Any, str]]],
                                path: str) -> None:
    schema, pg_type, cases = spec
    dest = await make_dest(upsert_mode="merge" if path.startswith("merge") else "on_conflict")
    if path.endswith("copy"):
        dest.stage_min_rows = 2
    db = await pg_schema_factory()
    await dest.write_batch(db, [_decode(db, schema, wire, i, 1000 + i)
                                for i, (wire, _) in enumerate(cases)])
    await pg.execute("SET TimeZone = 'UTC'")
    got = {r["n"]: r["k"] for r in await pg.fetch(f'SELECT k::text AS k, n FROM "{db}".t')}
    want = {i: await pg.fetchval(f"SELECT $1::text::{pg_type}::text", lit)
            for i, (_, lit) in enumerate(cases)}
    assert got == want
    # the whole stream replayed twice in one flush (each key changed twice: the stored
    # positions are read back by key): no new row, and no change counted again
    again = [_decode(db, schema, wire, i, 1000 + i) for i, (wire, _) in enumerate(cases)]
    await dest.write_batch(db, again + again)
    versions = await pg.fetch(f'SELECT _cartridge_version AS v FROM "{db}".t')
    assert [r["v"] for r in versions] == [1] * len(cases)
    # a partial update of each row finds it by its key
    keys = [_decode(db, schema, wire, i, 1000 + i).key for i, (wire, _) in enumerate(cases)]
    await dest.write_batch(db, [Record(db, "t", key, Kind.PATCH, "u",
                                       patch=Patch(set={("n",): 100 + i}),
                                       position=(3000 + i,))
                                for i, key in enumerate(keys)])
    got = {r["k"]: r["n"] for r in await pg.fetch(f'SELECT k::text AS k, n FROM "{db}".t')}
    assert got == {want[i]: 100 + i for i in range(len(cases))}
    # a delete of each row finds it by its key
    await dest.write_batch(db, [_decode(db, schema, wire, None, 5000 + i)
                                for i, (wire, _) in enumerate(cases)])
    live = await pg.fetchval(f'SELECT count(*) FROM "{db}".t WHERE NOT is_deleted')
    assert live == 0


@pytest.mark.parametrize("path", ["unnest", "copy"])
async def test_python_edge_dates_as_keys_are_not_turned_into_infinity(
    make_dest: Maker, pg_schema_factory: Any, pg: Any, path: str
) -> None:
    """0001-01-01 and 9999-12-31 are ordinary Python dates, which asyncpg's binary codec
    encodes as -infinity/infinity: as data they are written as text (dates.exact_texts); as
    a key they must not silently become another value."""
    dest = await make_dest()
    if path == "copy":
        dest.stage_min_rows = 2
    db = await pg_schema_factory()
    cases = [(-719162, "0001-01-01"), (2932896, "9999-12-31"), (19000, "2022-01-08")]
    await dest.write_batch(db, [_decode(db, DATE, wire, i, 1000 + i)
                                for i, (wire, _) in enumerate(cases)])
    got = {r["n"]: r["k"] for r in await pg.fetch(f'SELECT k::text AS k, n FROM "{db}".t')}
    assert got == {i: lit for i, (_, lit) in enumerate(cases)}
