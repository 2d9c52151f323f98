"""Issue 17 on the real server: MongoDB events rendered as Debezium's connector renders them
(pymongo's ``bson.json_util``), decoded by the sink's decoder and written by its
destination; the assertions read the rows back from PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import Int64, json_util
from bson import ObjectId as BsonObjectId
from bson.json_util import JSONMode, JSONOptions

from sink.decode.envelope import DecoderOptions, decode_json
from sink.records import Record
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


# --------------------------------------------------------------------------- item 10


def raw_event(db: str, after: str, *, key: str = f'{{"$oid": "{OID}"}}', op: str = "c",
              ts: int = 1700000000000, **payload: Any) -> tuple[bytes, bytes]:
    """An event whose ``after`` text is given verbatim (shapes json_util cannot build)."""
    source = {"connector": "mongodb", "name": "srv", "ts_ms": ts, "db": db,
              "collection": "t", "ord": 1}
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
