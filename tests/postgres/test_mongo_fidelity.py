"""Issue 17 on the real server: MongoDB events rendered as Debezium's connector renders them
(pymongo's ``bson.json_util``), decoded by the sink's decoder and written by its
destination; the assertions read the rows back from PostgreSQL."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from bson import Binary, DBRef, Decimal128, Int64, MinKey, Timestamp, json_util
from bson import ObjectId as BsonObjectId
from bson.binary import UuidRepresentation
from bson.json_util import JSONMode, JSONOptions

from sink.decode.envelope import DecoderOptions, decode_json
from sink.postgres.names import qualified, quote
from sink.records import Record
from tests.decode.test_mongo_fidelity import _documented
from tests.postgres.support import Maker, column_types, table_rows

pytestmark = pytest.mark.integration

OID = "596e275826f08b2730779e1f"
RELAXED = JSONOptions(json_mode=JSONMode.RELAXED)
CANONICAL = JSONOptions(json_mode=JSONMode.CANONICAL)


def event(db: str, _id: Any, doc: dict[str, Any] | None = None, *, op: str = "c",
          mode: JSONOptions = RELAXED, ts: int = 1700000000000, coll: str = "t",
          **payload: Any) -> tuple[bytes, bytes]:
    """A Debezium 2.x MongoDB change event (key, value) for ``_id``."""
    source = {"connector": "mongodb", "name": "srv", "ts_ms": ts, "db": db,
              "collection": coll, "ord": 1}
    value: dict[str, Any] = {"op": op, "ts_ms": ts, "source": source, **payload}
    if doc is not None:
        value["after"] = json_util.dumps({"_id": _id, **doc}, json_options=mode)
    key = {"id": json_util.dumps(_id, json_options=mode)}
    return json.dumps(key).encode(), json.dumps(value).encode()


def decoded(events: list[tuple[bytes, bytes]]) -> list[Record]:
    out = []
    for n, (k, v) in enumerate(events):
        rec = decode_json(k, v, "srv.topic", DecoderOptions())
        assert isinstance(rec, Record), rec
        rec.offset = n
        out.append(rec)
    return out


async def land(make_dest: Maker, db: str, events: list[tuple[bytes, bytes]],
               one_by_one: bool = False) -> None:
    dest = await make_dest()
    recs = decoded(events)
    for batch in ([[r] for r in recs] if one_by_one else [recs]):
        await dest.write_batch(db, batch)


# --------------------------------------------------------------------------- item 5


async def test_look_alike_ids_are_distinct_rows(make_dest: Maker, pg_schema_factory,
                                                pg) -> None:
    db = await pg_schema_factory()
    ids: list[Any] = [BsonObjectId(OID), OID, Int64(1005), '{"$numberLong":"1005"}', True,
                      "true", "plain"]
    await land(make_dest, db, [event(db, i, {"n": n}, ts=1700000000000 + n)
                               for n, i in enumerate(ids)])
    got = await table_rows(pg, db)
    assert {k: r["n"] for k, r in got.items()} == {
        OID: 0, f'"{OID}"': 1, '{"$numberLong":"1005"}': 2,
        '"{\\"$numberLong\\":\\"1005\\"}"': 3, "true": 4, '"true"': 5, "plain": 6,
    }
    assert all(r["_cartridge_version"] == 1 for r in got.values())  # nothing overwritten
    # The canonical rendering of the same ids finds the same rows (an update, version 2).
    await land(make_dest, db, [event(db, i, {"n": 10 + n}, mode=CANONICAL, op="u",
                                     ts=1800000000000) for n, i in enumerate(ids)])
    got = await table_rows(pg, db)
    assert len(got) == len(ids) and {r["_cartridge_version"] for r in got.values()} == {2}
    assert got[OID]["n"] == 10 and got[f'"{OID}"']["n"] == 11
    assert (await column_types(pg, db))["_id"] == "text"


async def test_a_string_id_with_a_nul_lands(make_dest: Maker, pg_schema_factory, pg) -> None:
    # Found by the MongoDB property test: the key text kept the NUL, which PostgreSQL's
    # text refuses (CharacterNotInRepertoireError): the document was dead-lettered.
    db = await pg_schema_factory()
    ids = ["a\x00b", '"a\\u0000b"', "a\\u0000b"]
    await land(make_dest, db, [event(db, i, {"n": n}, ts=1700000000000 + n)
                               for n, i in enumerate(ids)])
    got = await table_rows(pg, db)
    assert {k: r["n"] for k, r in got.items()} == {
        '"a\\u0000b"': 0, '"\\"a\\\\u0000b\\""': 1, "a\\u0000b": 2}


# --------------------------------------------------------------------------- item 10


def raw_event(db: str, after: str | None, *, key: str = f'{{"$oid": "{OID}"}}', op: str = "c",
              ts: int = 1700000000000, coll: str = "t", **payload: Any) -> tuple[bytes, bytes]:
    """An event whose ``after`` text is given verbatim (shapes json_util cannot build)."""
    source = {"connector": "mongodb", "name": "srv", "ts_ms": ts, "db": db,
              "collection": coll, "ord": 1}
    value = {"op": op, "ts_ms": ts, "source": source, "after": after, **payload}
    return json.dumps({"id": key}).encode(), json.dumps(value).encode()


async def test_dollar_documents_land_as_documents(make_dest: Maker, pg_schema_factory,
                                                  pg) -> None:
    db = await pg_schema_factory()
    user = {"d": {"$date": "x"}, "o": {"$oid": "zzz"}, "c": {"$code": "f()", "lang": "js"}}
    after = json.dumps({"_id": {"$oid": OID}, **user, "arr": [user["d"]], "n": 1})
    await land(make_dest, db, [raw_event(db, after)])
    got = await table_rows(pg, db)
    assert {k: {c: r[c] for c in ("d", "o", "c", "arr", "n")} for k, r in got.items()} == {
        OID: {**user, "arr": [user["d"]], "n": 1}}
    types = await column_types(pg, db)
    assert {types[c] for c in ("d", "o", "c", "arr")} == {"jsonb"}


# --------------------------------------------------------------------------- items 4 and 11


async def jsonb_of(pg: Any, db: str, column: str) -> dict[str, Any]:
    """``{_id: column}`` with jsonb parsed exactly (decimals as Decimal)."""
    found = await pg.fetch(f'SELECT _id, {quote(column)}::text AS v FROM {qualified(db, "t")}')
    return {r["_id"]: None if r["v"] is None else json.loads(r["v"], parse_float=Decimal)
            for r in found}


_TYPED: dict[str, Any] = {
    "oid": BsonObjectId(OID), "bin": Binary(b"kafka", 0), "b80": Binary(b"k", 0x80),
    "uuid": uuid.UUID("140ed813-35e0-4174-97f4-ec66ce5947db"),
    "nan": math.nan, "ninf": -math.inf, "dnan": Decimal128("NaN"), "dinf": Decimal128("-Inf"),
    "dec": Decimal128("1.50"), "long": Int64(2**40), "dbl": 0.1,
    "at": datetime(2024, 1, 15, 10, 30, 0, 123000, tzinfo=UTC),
    "old": datetime(1900, 1, 1, tzinfo=UTC), "ts": Timestamp(5, 1), "lo": MinKey(),
    "ref": DBRef("c", BsonObjectId(OID)), "refdb": DBRef("c", BsonObjectId(OID), "d"),
    "refint": DBRef("c", 5, "d"), "refstr": DBRef("c", "x"),
}


@pytest.mark.parametrize("mode", [RELAXED, CANONICAL], ids=["relaxed", "canonical"])
async def test_types_inside_jsonb_and_in_overflow(make_dest: Maker, pg_schema_factory, pg,
                                                  mode: JSONOptions) -> None:
    db = await pg_schema_factory()
    opts = JSONOptions(json_mode=mode.json_mode, uuid_representation=UuidRepresentation.STANDARD)
    # Row 0 makes "x" a text column; every other row's x is a value text cannot hold.
    scalars = [k for k in _TYPED if k not in ("oid", "dbl", "dec", "ts", "lo") and
               not k.startswith("ref")]
    events = [event(db, 0, {"x": "s", "doc": _TYPED, "arr": list(_TYPED.values())},
                    mode=opts)]
    events += [event(db, n + 1, {"x": _TYPED[k]}, mode=opts, ts=1700000000001 + n)
               for n, k in enumerate(scalars)]
    # A partial update writes one value of each type inside the jsonb column.
    events.append(event(db, 0, None, op="u", ts=1700000001000, updateDescription={
        "updatedFields": json_util.dumps({f"doc.p_{k}": v for k, v in _TYPED.items()},
                                         json_options=opts)}))
    await land(make_dest, db, events)
    assert (await column_types(pg, db))["x"] == "text"
    expected = {k: _documented(v) for k, v in _TYPED.items()}
    assert expected["ref"] == {"$ref": "c", "$id": {"$oid": OID}}  # item 4: one DBRef shape
    assert expected["refdb"] == {"$ref": "c", "$id": {"$oid": OID}, "$db": "d"}
    assert expected["refint"] == {"$ref": "c", "$id": 5, "$db": "d"}
    doc = (await jsonb_of(pg, db, "doc"))[0]  # integer ids: a bigint _id (item 13)
    assert doc == {**expected, **{f"p_{k}": v for k, v in expected.items()}}
    arr = (await jsonb_of(pg, db, "arr"))[0]
    assert arr == list(expected.values())
    overflow = await jsonb_of(pg, db, "_cartridge_overflow")
    assert {k: overflow[n + 1] for n, k in enumerate(scalars)} == {
        k: {"x": expected[k]} for k in scalars}


# --------------------------------------------------------------------------- item 12


@pytest.mark.parametrize("one_by_one", [False, True], ids=["one-batch", "one-by-one"])
async def test_int64_the_event_states_is_bigint(make_dest: Maker, pg_schema_factory, pg,
                                               one_by_one: bool) -> None:
    db = await pg_schema_factory()
    strict = JSONOptions(json_mode=JSONMode.LEGACY, strict_number_long=True)
    events = [
        event(db, 1, {"canon": Int64(5), "strict": 1, "relaxed": Int64(5), "i32": 7},
              mode=CANONICAL),
        event(db, 2, {"strict": Int64(6)}, mode=strict, ts=1700000000001),
        event(db, 3, {"relaxed": Int64(7), "later": 1}, mode=RELAXED, ts=1700000000002),
        # An int32 column meets a stated int64 later, through a partial update.
        event(db, 3, None, op="u", ts=1700000000003, updateDescription={
            "updatedFields": json_util.dumps({"later": Int64(8), "fresh": Int64(9)},
                                             json_options=CANONICAL)}),
    ]
    await land(make_dest, db, events, one_by_one=one_by_one)
    types = await column_types(pg, db)
    assert {c: types[c] for c in ("canon", "strict", "relaxed", "i32", "later", "fresh")} == {
        "canon": "bigint", "strict": "bigint", "relaxed": "bigint", "i32": "integer",
        "later": "bigint", "fresh": "bigint"}
    got = await table_rows(pg, db)
    one, two, three = (got[n] for n in (1, 2, 3))
    assert (one["canon"], two["strict"], three["relaxed"], three["later"],
            three["fresh"]) == (5, 6, 7, 8, 9)
    assert all(r["_cartridge_overflow"] is None for r in got.values())


# --------------------------------------------------------------------------- item 6

_SYSTEM = ["xmin", "xmax", "cmin", "cmax", "ctid", "tableoid"]


async def test_system_column_names_and_pg_databases(make_dest: Maker, pg) -> None:
    db = f"pg_{uuid.uuid4().hex[:10]}"  # a database name PostgreSQL refuses as a schema
    try:
        doc = {**{n: i for i, n in enumerate(_SYSTEM)}, "bbox": {"xmin": 1.5, "xmax": 2.5}}
        await land(make_dest, db, [
            event(db, 1, doc),
            event(db, 2, {"other": 1}, ts=1700000000001),
            event(db, 2, None, op="u", ts=1700000000002, updateDescription={
                "updatedFields": json.dumps({"xmin": 10, "bbox.xmax": 20})}),
        ])
        schema = f"_src_{db}"
        types = await column_types(pg, schema)
        assert {f"_src_{n}" for n in _SYSTEM} <= set(types)
        got = await table_rows(pg, schema)
        one, two = got[1], got[2]
        assert {n: one[f"_src_{n}"] for n in _SYSTEM} == {n: i for i, n in enumerate(_SYSTEM)}
        assert one["bbox"] == {"xmin": 1.5, "xmax": 2.5}  # inside jsonb: names as they are
        assert two["_src_xmin"] == 10 and two["bbox"] == {"xmax": 20}
        assert await pg.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                                 db) == 0
    finally:
        await pg.execute(f"DROP SCHEMA IF EXISTS {quote(f'_src_{db}')} CASCADE")
