"""Issue 17 item 13 on the real server: a MongoDB ``_id`` column takes the type of the
collection's first ``_id`` (``mapping.id_type: auto``), ids it cannot hold are refused one
by one (``id_type_mismatch``), and every write path works on bigint and uuid keys. Events
are built as Debezium writes them (`sink.tools.events`), decoded by the sink's decoder and
written by its destination; the assertions read PostgreSQL back."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from sink.decode.envelope import decode_json
from sink.errors import WarpError
from sink.postgres.connector import PostgreSQLDestinationConnector
from sink.postgres.names import qualified
from sink.records import Record
from sink.tools.events import MongoEvents, Oid
from tests.postgres.support import Maker, column_types

pytestmark = pytest.mark.integration

OID = "596e275826f08b2730779e1f"
U1 = uuid.UUID("8c1b6d0e-5f3a-4c3e-9d2a-1e0f7a6b5c4d")
U2 = uuid.UUID("00000000-0000-4000-8000-000000000002")
Event = tuple[bytes, bytes | None]


def records(ev: MongoEvents, events: list[Event], start: int = 0) -> list[Record]:
    out = []
    for n, (k, v) in enumerate(events, start):
        rec = decode_json(k, v, ev.topic)
        assert isinstance(rec, Record), rec
        rec.topic, rec.partition, rec.offset = ev.topic, 0, n
        out.append(rec)
    return out


async def apply(dest: PostgreSQLDestinationConnector,
                recs: list[Record]) -> list[tuple[Record, WarpError]]:
    """One flush through the service's entry point; the records it refused."""
    bad: list[tuple[Record, WarpError]] = []

    async def on_bad(failed: list[tuple[Record, WarpError]]) -> None:
        bad.extend(failed)

    await dest.apply(recs, {}, "g-idtype", on_bad=on_bad)
    return bad


async def keyed(pg: Any, db: str, table: str, cols: str = "n") -> dict[Any, Any]:
    got = await pg.fetch(f"SELECT _id, {cols} FROM {qualified(db, table)}")
    return {r["_id"]: (r[1] if len(r) == 2 else tuple(r)[1:]) for r in got}


async def test_integer_ids_make_a_queryable_bigint_key(make_dest: Maker, pg_schema_factory,
                                                       pg) -> None:
    db = await pg_schema_factory()
    ev = MongoEvents(db, "orders")
    events: list[Event] = [
        ev.insert({"_id": 10000, "n": 1}), ev.insert({"_id": 2**40, "n": 2}),
        ev.insert({"_id": -5, "n": 3}), ev.insert({"_id": 7.0, "n": 4}),
        ev.replace({"_id": 7, "n": 5}),  # MongoDB: 7.0 and 7 are one _id, so one row
    ]
    dest = await make_dest()
    assert await apply(dest, records(ev, events)) == []
    assert (await column_types(pg, db, "orders"))["_id"] == "bigint"
    assert await keyed(pg, db, "orders", "n, _cartridge_version") == {
        10000: (1, 1), 2**40: (2, 1), -5: (3, 1), 7: (5, 2)}
    found = await pg.fetchval(f"SELECT n FROM {qualified(db, 'orders')} WHERE _id = 10000")
    assert found == 1


async def test_uuid_objectid_and_string_ids(make_dest: Maker, pg_schema_factory, pg) -> None:
    db = await pg_schema_factory()
    uids, oids, strs = (MongoEvents(db, c) for c in ("uids", "oids", "strs"))
    dest = await make_dest()
    assert await apply(dest, records(uids, [uids.insert({"_id": U1, "n": 1}),
                                            uids.insert({"_id": U2, "n": 2})])) == []
    assert await apply(dest, records(oids, [oids.insert({"_id": Oid(OID), "n": 1})])) == []
    assert await apply(dest, records(strs, [strs.insert({"_id": "alice", "n": 1}),
                                            strs.insert({"_id": "10", "n": 2})])) == []
    types = {t: (await column_types(pg, db, t))["_id"] for t in ("uids", "oids", "strs")}
    assert types == {"uids": "uuid", "oids": "text", "strs": "text"}
    assert await keyed(pg, db, "uids") == {U1: 1, U2: 2}
    assert await pg.fetchval(f"SELECT n FROM {qualified(db, 'uids')} WHERE _id = $1::uuid",
                             str(U2)) == 2
    assert await keyed(pg, db, "oids") == {OID: 1}
    assert await keyed(pg, db, "strs") == {"alice": 1, "10": 2}


async def test_ids_the_column_cannot_hold_are_dead_lettered_alone(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    db = await pg_schema_factory()
    ints, uids = MongoEvents(db, "ints"), MongoEvents(db, "uids")
    int_events: list[Event] = [
        ev for ev in (
            ints.insert({"_id": 1, "n": 1}), ints.insert({"_id": "x", "n": 2}),
            ints.insert({"_id": Oid(OID), "n": 3}), ints.insert({"_id": U1, "n": 4}),
            ints.insert({"_id": 2.5, "n": 5}), ints.insert({"_id": 2, "n": 6}),
            ints.insert({"_id": '{"$numberLong":"3"}', "n": 7}),
            ints.insert({"_id": Decimal("3"), "n": 8}), ints.insert({"_id": 3, "n": 9}),
            ints.update("x", {"n": 10}), ints.delete(Oid(OID)),
        )
    ]
    uid_events: list[Event] = [uids.insert({"_id": U1, "n": 1}), uids.insert({"_id": 5, "n": 2}),
                               uids.insert({"_id": "u", "n": 3}), uids.insert({"_id": U2, "n": 4})]
    dest = await make_dest()
    bad = await apply(dest, records(ints, int_events) + records(uids, uid_events, 100))
    assert {(rec.table, rec.offset, err.code) for rec, err in bad} == {
        *(("ints", n, "id_type_mismatch") for n in (1, 2, 3, 4, 6, 7, 9, 10)),
        *(("uids", n, "id_type_mismatch") for n in (101, 102)),
    }
    msgs = {(rec.table, rec.offset): err.message for rec, err in bad}
    assert all(f"{db}.ints's bigint column _id" in msgs[("ints", n)] for n in (1, 2, 9))
    assert {n: msgs[("ints", n)].split("BSON type ")[1].split()[0] for n in (1, 2, 3, 4, 7)} == {
        1: "string", 2: "objectId", 3: "uuid", 4: "double", 7: "decimal"}
    assert "BSON type integer" in msgs[("uids", 101)] and "uuid column _id" in msgs[("uids", 101)]
    # The rest of the flush landed, the refused ids touched no row.
    assert await keyed(pg, db, "ints", "n, _cartridge_version") == {
        1: (1, 1), 2: (6, 1), 3: (9, 1)}
    assert await keyed(pg, db, "uids") == {U1: 1, U2: 4}
    assert [(await column_types(pg, db, t))["_id"] for t in ("ints", "uids")] == [
        "bigint", "uuid"]


async def test_look_alike_ids_stay_distinct_in_both_modes(make_dest: Maker, pg_schema_factory,
                                                          pg) -> None:
    """Item 5 under item 13: the string '{"$numberLong":"1005"}' never becomes the integer
    1005, nor a 24-hex string an ObjectId, whichever mode made the table."""
    db = await pg_schema_factory()
    look = '{"$numberLong":"1005"}'
    auto_s, auto_i, text_i = (MongoEvents(db, c) for c in ("auto_s", "auto_i", "text_i"))
    auto, text = await make_dest(), await make_dest(id_type="text")

    def mixed(ev: MongoEvents, first_int: bool) -> list[Event]:
        ids: list[Any] = [look, 1005, OID, Oid(OID)]
        if first_int:
            ids = [1005, look, Oid(OID), OID]
        return [ev.insert({"_id": i, "n": n}) for n, i in enumerate(ids)]

    assert await apply(auto, records(auto_s, mixed(auto_s, False))) == []
    assert await keyed(pg, db, "auto_s") == {
        '"{\\"$numberLong\\":\\"1005\\"}"': 0, look: 1, f'"{OID}"': 2, OID: 3}
    bad = await apply(auto, records(auto_i, mixed(auto_i, True)))
    assert {(r.offset, e.code) for r, e in bad} == {(n, "id_type_mismatch") for n in (1, 2, 3)}
    assert await keyed(pg, db, "auto_i", "n, _cartridge_version") == {1005: (0, 1)}
    assert await apply(text, records(text_i, mixed(text_i, True))) == []
    assert await keyed(pg, db, "text_i") == {
        look: 0, '"{\\"$numberLong\\":\\"1005\\"}"': 1, OID: 2, f'"{OID}"': 3}
    assert [(await column_types(pg, db, t))["_id"] for t in ("auto_s", "auto_i", "text_i")] \
        == ["text", "bigint", "text"]


async def test_an_existing_text_key_stays_text_under_auto(make_dest: Maker, pg_schema_factory,
                                                          pg) -> None:
    db = await pg_schema_factory()
    ev = MongoEvents(db, "t")
    old = await make_dest(id_type="text")
    assert await apply(old, records(ev, [ev.insert({"_id": 5, "n": 1})])) == []
    new = await make_dest()  # an upgrade: auto is the default
    assert await apply(new, records(ev, [ev.replace({"_id": 5, "n": 2}),
                                         ev.insert({"_id": 6, "n": 3}),
                                         ev.insert({"_id": "s", "n": 4})], 1)) == []
    assert (await column_types(pg, db))["_id"] == "text"
    assert await keyed(pg, db, "t", "n, _cartridge_version") == {
        '{"$numberLong":"5"}': (2, 2), '{"$numberLong":"6"}': (3, 1), "s": (4, 1)}


@pytest.mark.parametrize(("upsert_mode", "copy", "deletion"), [
    ("on_conflict", False, "soft"), ("merge", False, "soft"), ("on_conflict", True, "soft"),
    ("merge", True, "hard"),
])
async def test_every_write_path_on_bigint_and_uuid_keys(
    make_dest: Maker, pg_schema_factory, pg, upsert_mode: str, copy: bool, deletion: str
) -> None:
    """Upserts (statement and COPY), partial updates ($set, $unset, a dotted path), deletes
    and tombstones, a key changed several times in one flush, and a replay the ordering
    guard makes a no-op."""
    db = await pg_schema_factory()
    dest = await make_dest(upsert_mode=upsert_mode, deletion_strategy=deletion)
    if copy:
        dest.stage_min_rows = 2
    for coll, ids in (("ints", [11, 12, 13, 2**40]), ("uids", [U1, U2, uuid.uuid4(),
                                                               uuid.uuid4()])):
        ev = MongoEvents(db, coll)
        a, b, c, d = ids
        first: list[Event] = [
            ev.insert({"_id": a, "n": 1, "p": {"q": 1}}), ev.insert({"_id": b, "n": 1}),
            ev.insert({"_id": c, "n": 1}), ev.insert({"_id": d, "n": 1}),
        ]
        second: list[Event] = [
            ev.update(a, {"n": 2, "p.q": 5}), ev.update(b, {"m": "x"}, ["n"]),
            ev.delete(c), ev.tombstone(c), ev.update(d, {"n": 2}), ev.update(d, {"n": 3}),
            ev.replace({"_id": d, "n": 4}),
        ]
        recs = records(ev, first) + records(ev, second, 10)
        for rec in recs:  # a tombstone names its table through the pipeline
            if rec.table is None:
                rec.schema, rec.table = db, coll
        assert await apply(dest, recs[:4]) == []
        assert await apply(dest, recs[4:]) == []
        expected_type = "bigint" if coll == "ints" else "uuid"
        assert (await column_types(pg, db, coll))["_id"] == expected_type
        want = {a: (2, 5, None, False, 2), b: (None, None, "x", False, 2),
                d: (4, None, None, False, 4)}
        if deletion == "soft":
            want[c] = (1, None, None, True, 2)
        cols = "n, (p->>'q')::int, m, is_deleted, _cartridge_version"
        assert await keyed(pg, db, coll, cols) == want
        assert await apply(dest, recs) == []  # the whole stream again: nothing changes
        assert await keyed(pg, db, coll, cols) == want


async def test_the_first_id_in_partition_order_decides_whatever_the_batches(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    """One flush, one record per flush, or a flush split by the isolation of a record
    PostgreSQL refuses: the same column type and the same dead letters."""
    db = await pg_schema_factory()
    outcomes = []
    for how in ("one flush", "one by one", "isolated"):
        ev = MongoEvents(db, how.replace(" ", "_"))
        recs = records(ev, [ev.insert({"_id": 1, "n": 1}), ev.insert({"_id": "s", "n": 2}),
                            ev.insert({"_id": 2, "n": 3}), ev.insert({"_id": Oid(OID), "n": 4}),
                            ev.insert({"_id": 3, "n": 5})])
        dest = await make_dest()
        if how == "isolated":  # a topic name PostgreSQL refuses: bisection of the flush
            recs[4].topic = f"{ev.topic}\x00"
        bad: list[tuple[Record, WarpError]] = []
        for part in ([recs] if how != "one by one" else [[r] for r in recs]):
            bad += await apply(dest, part)
        outcomes.append((how, (await column_types(pg, db, ev.collection))["_id"],
                         sorted((r.offset, e.code) for r, e in bad),
                         await keyed(pg, db, ev.collection)))
    mismatch = [(1, "id_type_mismatch"), (3, "id_type_mismatch")]
    assert outcomes == [
        ("one flush", "bigint", mismatch, {1: 1, 2: 3, 3: 5}),
        ("one by one", "bigint", mismatch, {1: 1, 2: 3, 3: 5}),
        ("isolated", "bigint", [*mismatch, (4, "bad_value")], {1: 1, 2: 3}),
    ]


async def test_a_tombstone_finds_its_bigint_row_by_the_topic(make_dest: Maker,
                                                             pg_schema_factory, pg) -> None:
    """A tombstone read long after its key's records (another run): the table and row are
    looked up through the topic's tables, probing the key as the bigint column holds it."""
    db = await pg_schema_factory()
    ev = MongoEvents(db, "t")
    dest = await make_dest()
    assert await apply(dest, records(ev, [ev.insert({"_id": 5, "n": 1}),
                                          ev.insert({"_id": 6, "n": 2})])) == []
    tomb = records(ev, [ev.tombstone(5)], 7)[0]
    assert tomb.table is None and len([tomb.key, *tomb.alt_keys]) > 1  # several readings
    found = await dest.tombstone_target(ev.topic, [tomb.key, *tomb.alt_keys], 7)
    assert found is not None and (found.schema, found.table) == (db, "t")
    tomb.schema, tomb.table, tomb.key = found.schema, found.table, found.key
    assert await apply(dest, [tomb]) == []
    assert await keyed(pg, db, "t", "is_deleted") == {5: True, 6: False}


async def test_write_batch_refuses_the_whole_batch(make_dest: Maker, pg_schema_factory,
                                                   pg) -> None:
    """The library API applies all of a batch or nothing: an id the column cannot hold
    raises its RecordError and no row of the batch lands."""
    db = await pg_schema_factory()
    ev = MongoEvents(db, "t")
    dest = await make_dest()
    await dest.write_batch(db, records(ev, [ev.insert({"_id": 1, "n": 1})]))
    with pytest.raises(WarpError) as caught:
        await dest.write_batch(db, records(ev, [ev.insert({"_id": 2, "n": 2}),
                                                ev.insert({"_id": "s", "n": 3})], 1))
    assert caught.value.code == "id_type_mismatch"
    assert await keyed(pg, db, "t") == {1: 1}
