"""Every date, time and timestamp PostgreSQL holds lands exactly from the real Debezium
PostgreSQL connector's encodings (issue 13 items 2 and 4): BC dates and timestamps, years 1
and 9999, years past 9999 up to PostgreSQL's last day, ``±infinity`` as Debezium 3.6.1 writes
them (captured from the real connector, see sink.decode.temporal), and ``24:00:00``.

Each case is a Connect JSON event (schema on) decoded by the sink's decoder and written
through the unnest statement, the COPY path and the partial-update path; the stored value
is compared, as PostgreSQL's text, with the source literal PostgreSQL itself renders."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sink.decode.envelope import DecoderOptions, decode_json
from sink.records import Kind, Record, TemporalText
from tests.postgres.support import Maker, up

pytestmark = pytest.mark.integration

DATE = {"type": "int32", "name": "io.debezium.time.Date"}
MS_TS = {"type": "int64", "name": "io.debezium.time.Timestamp"}
US_TS = {"type": "int64", "name": "io.debezium.time.MicroTimestamp"}
TSTZ = {"type": "string", "name": "io.debezium.time.ZonedTimestamp"}
US_TIME = {"type": "int64", "name": "io.debezium.time.MicroTime"}
MS_TIME = {"type": "int32", "name": "io.debezium.time.Time"}
NS_TIME = {"type": "int64", "name": "io.debezium.time.NanoTime"}
TIMETZ = {"type": "string", "name": "io.debezium.time.ZonedTime"}
FIELDS = {"d": DATE, "ts3": MS_TS, "ts": US_TS, "tstz": TSTZ, "t": US_TIME, "t3": MS_TIME,
          "tn": NS_TIME, "ttz": TIMETZ, "big": {"type": "string"}}
TYPES = {"d": "date", "ts3": "timestamp(3) without time zone",
         "ts": "timestamp without time zone", "tstz": "timestamp with time zone",
         "t": "time without time zone", "t3": "time(3) without time zone",
         "tn": "time without time zone", "ttz": "time with time zone"}

# (column, the value on the wire, the source's literal): wire values as the real connector
# wrote them for those literals (tests/e2e/debezium, snapshot and streaming)
CASES: list[tuple[str, Any, str]] = [
    ("d", -719162, "0001-01-01"),
    ("d", 2932896, "9999-12-31"),
    ("d", -735160, "0044-03-15 BC"),
    ("d", -2440588, "4714-11-24 BC"),  # PostgreSQL's first day
    ("d", 2145042905, "5874897-12-31"),  # and its last
    ("d", -2147472692, "infinity"),  # streaming (Debezium 3.6.1's sign slip)
    ("d", 2146033979, "infinity"),  # streaming, later Debezium (+5877611-06-21)
    ("d", -622191234, "infinity"),  # snapshot
    ("d", -2147472691, "-infinity"),  # streaming
    ("d", -625821272, "-infinity"),  # snapshot
    ("ts3", -62135596800000, "0001-01-01 00:00:00"),
    ("ts3", 253402300799999, "9999-12-31 23:59:59.999"),
    ("ts3", -210863520000000, "4713-01-01 00:00:00 BC"),
    ("ts3", 9224318015999999, "294276-12-31 23:59:59.999"),
    ("ts3", 9223372036825200, "infinity"),
    ("ts3", -9223372036832400, "-infinity"),
    ("ts", -62135596800000000, "0001-01-01 00:00:00"),
    ("ts", 253402300799999999, "9999-12-31 23:59:59.999999"),
    ("ts", -63517780800000000, "0044-03-15 12:00:00 BC"),
    ("ts", -210866803200000000, "4714-11-24 00:00:00 BC"),
    ("ts", 253402300800000000, "10000-01-01 00:00:00"),
    ("ts", 9223372036825200000, "infinity"),
    ("ts", -9223372036832400000, "-infinity"),
    ("tstz", "0001-01-01T00:00:00.000000Z", "0001-01-01 00:00:00+00"),
    ("tstz", "9999-12-31T23:59:59.999999Z", "9999-12-31 23:59:59.999999+00"),
    ("tstz", "0000-12-31T23:59:59.000000Z", "0001-12-31 23:59:59+00 BC"),
    ("tstz", "-4712-01-01T00:00:00.000000Z", "4713-01-01 00:00:00+00 BC"),
    ("tstz", "+294276-12-31T23:59:59.999999Z", "294276-12-31 23:59:59.999999+00"),
    ("tstz", "+10000-01-01T00:00:00.5+02:00", "10000-01-01 00:00:00.5+02"),
    ("tstz", "0001-01-01T00:00:00+01:00", "0001-01-01 00:00:00+01"),  # 1 BC in UTC
    ("tstz", "9999-12-31T23:59:59.999999-01:00", "9999-12-31 23:59:59.999999-01"),
    ("tstz", "infinity", "infinity"),
    ("tstz", "-infinity", "-infinity"),
    ("t", 86400000000, "24:00:00"),
    ("t", 86399999999, "23:59:59.999999"),
    ("t3", 86400000, "24:00:00"),
    ("tn", 86400000000000, "24:00:00"),
    ("ttz", "24:00:00Z", "24:00:00+00"),
    ("ttz", "24:00:00+05:30", "24:00:00+05:30"),
]


def _event(db: str, key: int, values: dict[str, Any], lsn: int = 1000) -> tuple[bytes, bytes]:
    row = {"type": "struct", "name": "srv.x.t.Value", "optional": True,
           "fields": [{"field": f, "optional": True, **s}
                      for f, s in {"id": {"type": "int32"}, **FIELDS}.items()]}
    schema = {"type": "struct", "name": "srv.x.t.Envelope", "fields": [
        {**row, "field": "before"}, {**row, "field": "after"},
        {"type": "struct", "field": "source", "fields": []}, {"type": "string", "field": "op"}]}
    payload = {"before": None, "after": {"id": key, **values}, "op": "u", "ts_ms": 1,
               "source": {"connector": "postgresql", "db": "db", "schema": db, "table": "t",
                          "ts_ms": 1, "lsn": lsn + key}}
    key_msg = {"schema": {"type": "struct", "fields": [{"field": "id", "type": "int32"}]},
               "payload": {"id": key}}
    return json.dumps(key_msg).encode(), json.dumps({"schema": schema, "payload": payload}).encode()


def _decode(db: str, key: int, values: dict[str, Any], lsn: int = 1000) -> Record:
    k, v = _event(db, key, values, lsn)
    rec = decode_json(k, v, "srv.x.t", DecoderOptions())
    assert isinstance(rec, Record)
    return rec


async def _stored(pg: Any, db: str) -> dict[int, dict[str, str | None]]:
    await pg.execute("SET TimeZone = 'UTC'")
    sel = ", ".join(f'"{c}"::text AS "{c}"' for c in TYPES)
    return {r["id"]: dict(r) for r in await pg.fetch(f'SELECT id, {sel} FROM "{db}".t')}


async def _expected(pg: Any) -> dict[int, tuple[str, str]]:
    """Row id -> (column, the source literal as PostgreSQL renders it in that column)."""
    await pg.execute("SET TimeZone = 'UTC'")
    return {i: (col, await pg.fetchval(f"SELECT $1::text::{TYPES[col]}::text", lit))
            for i, (col, _, lit) in enumerate(CASES, 1)}


@pytest.mark.parametrize("path", ["unnest", "copy", "patch"])
async def test_extreme_temporal_values_land_exactly(
    make_dest: Maker, pg_schema_factory: Any, pg: Any, path: str
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    n = max(dest.stage_min_rows, len(CASES) + 1) if path == "copy" else len(CASES) + 1
    filler = [_decode(db, i, {"big": "x"}) for i in range(len(CASES) + 1, n + 1)]
    if path == "patch":
        # rows first, then each value as a partial update: Debezium's TOAST placeholder in
        # "big" makes the event a patch of the columns it carries
        await dest.write_batch(db, [_decode(db, i, {"big": "x"}) for i in range(1, n + 1)])
        records = [_decode(db, i, {col: wire, "big": "__debezium_unavailable_value"}, 2000)
                   for i, (col, wire, _) in enumerate(CASES, 1)]
        assert {r.kind for r in records} == {Kind.PATCH}
    else:
        records = [_decode(db, i, {col: wire}) for i, (col, wire, _) in enumerate(CASES, 1)]
    await dest.write_batch(db, records + filler)

    got = await _stored(pg, db)
    types = dict(await pg.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = $1::regclass AND attnum > 0", f'"{db}".t'))
    assert {c: types[c] for c in TYPES} == TYPES
    wrong = {i: (col, got[i][col], want) for i, (col, want) in (await _expected(pg)).items()
             if got[i][col] != want}
    assert not wrong
    # nothing went to the overflow column instead
    assert not await pg.fetchval(f'SELECT count(*) FROM "{db}".t '
                                 "WHERE _cartridge_overflow IS NOT NULL")


def test_values_beyond_postgresql_still_dead_letter() -> None:
    from sink.errors import DecodeError

    for col, wire in [("d", -2440589), ("d", 2145042906), ("ts", -210866803200000001),
                      ("ts3", 9224318016000000), ("tstz", "+294277-01-01T00:00:00Z")]:
        k, v = _event("x", 1, {col: wire})
        with pytest.raises(DecodeError) as exc:
            decode_json(k, v, "srv.x.t", DecoderOptions())
        assert exc.value.code == "bad_value", (col, wire)
        assert f"column '{col}'" in str(exc.value)


async def test_float_words_land_in_a_float_column_without_a_schema(
    make_dest: Maker, pg_schema_factory: Any, pg: Any
) -> None:
    """Schemas off: JSON has no NaN/Infinity, so Debezium sends the strings "NaN",
    "Infinity", "-Infinity" for a real/double; once the column is a float they are floats."""
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "a", {"f": 0.1}, 1, op="c")])
    await dest.write_batch(db, [up(db, w, {"f": w}, 2, op="c")
                                for w in ("NaN", "Infinity", "-Infinity")])
    rows = {r["_id"]: r for r in await pg.fetch(
        f'SELECT _id, f::text AS f, _cartridge_overflow FROM "{db}".t')}
    assert {k: r["f"] for k, r in rows.items()} == {
        "a": "0.1", "NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}
    assert all(r["_cartridge_overflow"] is None for r in rows.values())
    assert await pg.fetchval(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = $1::regclass AND attname = 'f'", f'"{db}".t') == "double precision"


async def test_keyless_tables_take_and_match_extreme_values(
    make_dest: Maker, pg_schema_factory: Any, pg: Any
) -> None:
    """A table without a key writes one statement per change: the extreme values travel
    as text there too, and an update or delete finds its row by a before image holding
    them (REPLICA IDENTITY FULL)."""
    dest = await make_dest(deletion_strategy="hard")
    db = await pg_schema_factory()
    d = {"d": -735160, "ts": 9223372036825200000, "t": 86400000000, "tstz": "-infinity"}
    e = {"d": -719162, "ts": 253402300799999999, "t": 86399999999,
         "tstz": "0000-12-31T23:59:59.000000Z"}

    def keyless(op: str, lsn: int, before: dict[str, Any] | None,
                after: dict[str, Any] | None) -> Record:
        row = {"type": "struct", "name": "srv.x.k.Value", "optional": True,
               "fields": [{"field": f, "optional": True, **FIELDS[f]} for f in d]}
        schema = {"type": "struct", "name": "srv.x.k.Envelope", "fields": [
            {**row, "field": "before"}, {**row, "field": "after"},
            {"type": "struct", "field": "source", "fields": []},
            {"type": "string", "field": "op"}]}
        payload = {"before": before, "after": after, "op": op, "ts_ms": 1,
                   "source": {"connector": "postgresql", "db": "db", "schema": db,
                              "table": "k", "ts_ms": 1, "lsn": lsn}}
        rec = decode_json(None, json.dumps({"schema": schema, "payload": payload}).encode(),
                          "srv.x.k", DecoderOptions())
        assert isinstance(rec, Record) and rec.key == {}
        return rec

    await dest.write_batch(db, [keyless("c", 1, None, d), keyless("c", 2, None, d),
                                keyless("c", 3, None, e)])
    await dest.write_batch(db, [keyless("u", 4, d, e), keyless("d", 5, e, None)])
    await pg.execute("SET TimeZone = 'UTC'")
    got = sorted(tuple(r) for r in await pg.fetch(
        f'SELECT d::text, ts::text, t::text, tstz::text FROM "{db}".k'))
    # of two rows d, one became e; of the two rows e, one was deleted
    assert got == sorted([("0044-03-15 BC", "infinity", "24:00:00", "-infinity"),
                          ("0001-01-01", "9999-12-31 23:59:59.999999", "23:59:59.999999",
                           "0001-12-31 23:59:59+00 BC")])


async def test_aware_far_timestamps_as_text(pg: Any) -> None:
    """The text a zone-less epoch value gets when the decoder reads it as UTC (``aware``)
    is the instant PostgreSQL reads, BC and past 9999 alike."""
    await pg.execute("SET TimeZone = 'UTC'")
    for us, want in [(-63517780800000000, "0044-03-15 12:00:00+00 BC"),
                     (-210866803200000000, "4714-11-24 00:00:00+00 BC"),
                     (9224318015999999999, "294276-12-31 23:59:59.999999+00"),
                     (253402300800000001, "10000-01-01 00:00:00.000001+00")]:
        t = TemporalText.of_micros(us, aware=True)
        assert t.pg_type == "timestamp with time zone"
        assert await pg.fetchval("SELECT $1::text::timestamptz::text", t.text) == want
