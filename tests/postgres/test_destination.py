"""The PostgreSQL destination on a real server, through `write_batch` and `apply`: rows,
versions and deletes as the records say."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import orjson
import pytest

from sink.postgres import metadata
from sink.records import Kind, Patch, Record
from tests.postgres.support import (
    META,
    TS,
    Maker,
    column_types,
    dele,
    patch,
    table_rows,
    tomb,
    up,
    without_clock,
)

pytestmark = pytest.mark.integration


# --- folding a batch ---------------------------------------------------------------


async def test_same_key_three_times_in_a_batch_of_5000(make_dest: Maker, pg_schema_factory,
                                                       pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    keys = [f"{i:024x}" for i in range(1667)]
    recs: list[Record] = []
    for n in range(3):
        for i, k in enumerate(keys):
            recs.append(up(db, k, {"n": n, "name": f"v{n}-{i}"}, 1000 + n, op="cu"[min(n, 1)],
                           off=n * 5000 + i))
    recs = recs[:5000]
    await dest.write_batch(db, recs)
    got = await table_rows(pg, db)
    assert len(got) == len(keys)
    for i, k in enumerate(keys):
        last = 2 if i < 5000 - 2 * len(keys) else 1
        assert got[k]["n"] == last and got[k]["name"] == f"v{last}-{i}"
        assert got[k]["_cartridge_version"] == last + 1
        assert got[k]["is_deleted"] is False


@pytest.mark.parametrize("strategy", ["soft", "hard", "both"])
async def test_insert_delete_insert(make_dest: Maker, pg_schema_factory, pg,
                                    strategy: str) -> None:
    dest = await make_dest(deletion_strategy=strategy)
    db = await pg_schema_factory()
    soft = strategy != "hard"
    # one batch: a b c d keys; a: i d i; b: i d; c: d(unknown) i; d: i, then d i in batch 2
    await dest.write_batch(db, [
        up(db, "a", {"x": 1}, 1, op="c"), dele(db, "a", 2), up(db, "a", {"x": 2}, 3, op="c"),
        up(db, "b", {"x": 1}, 1, op="c"), dele(db, "b", 2),
        dele(db, "c", 1), up(db, "c", {"x": 5}, 2, op="c"),
        up(db, "d", {"x": 1}, 1, op="c"),
    ])
    await dest.write_batch(db, [dele(db, "d", 2), tomb(db, "d"), up(db, "d", {"x": 9}, 3)])
    got = await table_rows(pg, db)
    assert got["a"]["x"] == 2 and got["a"]["is_deleted"] is False
    assert got["a"]["_cartridge_version"] == (3 if soft else 1)
    if soft:
        assert got["b"]["is_deleted"] is True and got["b"]["deleted_at"] is not None
        assert got["b"]["_cartridge_version"] == 2 and got["b"]["x"] == 1
    else:
        assert "b" not in got
    assert got["c"]["x"] == 5 and got["c"]["_cartridge_version"] == 1
    assert got["d"]["x"] == 9 and got["d"]["_cartridge_version"] == (3 if soft else 1)
    assert got["d"]["deleted_at"] is None


async def test_tombstones(make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.apply([up(db, k, {"x": 1}, 1, op="c", off=i) for i, k in enumerate("abcd")],
                     {}, "g")
    await dest.apply([
        dele(db, "a", 2, off=10), tomb(db, "a", off=11),  # delete + its tombstone: one change
        tomb(db, "b", off=12),  # a tombstone alone deletes a live row
        dele(db, "c", 2, off=13),
    ], {}, "g")
    await dest.apply([tomb(db, "c", off=14), tomb(db, "c", off=15)], {}, "g")  # after its delete
    got = await table_rows(pg, db)
    assert [got[k]["is_deleted"] for k in "abcd"] == [True, True, True, False]
    assert [got[k]["_cartridge_version"] for k in "abcd"] == [2, 2, 2, 1]
    # d is re-inserted after a tombstone; replaying the old tombstone must not delete it
    await dest.apply([dele(db, "d", 2, off=20), tomb(db, "d", off=21)], {}, "g")
    await dest.apply([up(db, "d", {"x": 2}, 3, op="c", off=22)], {}, "g")
    await dest.apply([dele(db, "d", 2, off=20), tomb(db, "d", off=21)], {}, "g")
    got = await table_rows(pg, db)
    assert got["d"]["is_deleted"] is False and got["d"]["x"] == 2
    assert got["d"]["_cartridge_version"] == 3


async def test_truncate_record(make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    trunc = Record(db, "t", {}, Kind.TRUNCATE, "t")
    await dest.write_batch(db, [up(db, "a", {"x": 1}, 1), up(db, "b", {"x": 1}, 1), trunc,
                                up(db, "c", {"x": 1}, 2)])
    # Soft deletes (the default): a truncate marks the rows deleted, as deletes would.
    got = await table_rows(pg, db)
    assert {k: r["is_deleted"] for k, r in got.items()} == {"a": True, "b": True, "c": False}
    await dest.write_batch(db, [Record(db, "never_seen", {}, Kind.TRUNCATE, "t")])


async def test_replaying_a_batch_changes_nothing(make_dest: Maker, pg_schema_factory,
                                                 pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    rng = random.Random(5)
    batch: list[Record] = []
    for i in range(400):
        k = f"k{rng.randrange(60)}"
        roll = rng.random()
        if roll < 0.6:
            batch.append(up(db, k, {"v": i, "doc": {"i": i}}, 100 + i, off=i))
        elif roll < 0.8:
            batch.append(patch(db, k, 100 + i, set={"doc.j": i, "w": i}))
            batch[-1].offset = i
        else:
            batch.append(dele(db, k, 100 + i, off=i))
    await dest.write_batch(db, batch)
    first = without_clock(await table_rows(pg, db))
    await dest.write_batch(db, batch)
    await dest.write_batch(db, batch[len(batch) // 2:])  # a replay straddling the state
    assert without_clock(await table_rows(pg, db)) == first


async def test_older_event_is_ignored_unless_forced(make_dest: Maker, pg_schema_factory,
                                                    pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "a", {"x": "new"}, 10), up(db, "b", {"x": "b"}, 10)])
    await dest.write_batch(db, [up(db, "a", {"x": "old"}, 5), dele(db, "b", 5),
                                patch(db, "a", 6, set={"y": 1})])
    got = await table_rows(pg, db)
    assert got["a"]["x"] == "new" and got["a"].get("y") is None
    assert got["a"]["_cartridge_version"] == 1 and got["b"]["is_deleted"] is False
    await dest.apply([up(db, "a", {"x": "old"}, 5)], {}, "g", force=True)
    got = await table_rows(pg, db)
    assert got["a"]["x"] == "old" and got["a"]["_cartridge_version"] == 2


async def test_created_at_once_updated_at_moves(make_dest: Maker, pg_schema_factory,
                                                pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "a", {"x": 1}, 1)])
    before = (await table_rows(pg, db))["a"]
    await asyncio.sleep(0.01)
    await dest.write_batch(db, [up(db, "a", {"x": 2}, 2)])
    await dest.write_batch(db, [patch(db, "a", 3, set={"x": 3})])
    after = (await table_rows(pg, db))["a"]
    assert after["_cartridge_created_at"] == before["_cartridge_created_at"]
    assert after["_cartridge_updated_at"] > before["_cartridge_updated_at"]
    assert after["_cartridge_version"] == 3 and after["x"] == 3
    assert after["_cartridge_source_ts"] == TS


async def test_composite_keys(make_dest: Maker, pg_schema_factory, pg) -> None:
    """Key order in records differs from the table's; keys changed twice are replayed."""
    dest = await make_dest()
    db = await pg_schema_factory()

    def r(a: int, b: str, x: int, pos: int, key_order: str = "ab") -> Record:
        key = {"a": a, "b": b} if key_order == "ab" else {"b": b, "a": a}
        return Record(db, "c", key, Kind.UPSERT, "u", values={**key, "x": x},
                      position=(pos,), offset=0)

    batch = [r(1, "x", 1, 1), r(1, "y", 2, 2, "ba"), r(1, "x", 3, 3, "ba"), r(2, "x", 4, 4)]
    await dest.write_batch(db, batch)
    await dest.write_batch(db, [*batch[1:], r(1, "x", 5, 5)])
    got = {(v["a"], v["b"]): v for v in (await table_rows(pg, db, "c", key="x")).values()}
    assert {k: (v["x"], v["_cartridge_version"]) for k, v in got.items()} == {
        (1, "x"): (5, 3), (1, "y"): (2, 1), (2, "x"): (4, 1)}
    await dest.write_batch(db, [Record(db, "c", {"a": 3, "b": "z"}, Kind.DELETE, "d",
                                       position=(9,))])


async def test_key_column_widens(make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()

    def r(k: int, pos: int) -> Record:
        return Record(db, "n", {"id": k}, Kind.UPSERT, "c", values={"id": k, "v": k},
                      position=(pos,))

    await dest.write_batch(db, [r(1, 1)])
    await dest.write_batch(db, [r(2**40, 2), r(1, 3)])
    assert (await column_types(pg, db, "n"))["id"] == "bigint"
    await dest.write_batch(db, [Record(db, "n", {"id": 2**70}, Kind.PATCH, "u", position=(4,),
                                       patch=Patch(set={("v",): 2**70}))])
    types = await column_types(pg, db, "n")
    assert types["id"] == "numeric" and types["v"] == "numeric"
    got = await pg.fetch(f'SELECT id, v, "_cartridge_version" FROM "{db}".n ORDER BY id')
    assert [(int(g[0]), int(g[1]), g[2]) for g in got] == [(1, 1, 2), (2**40, 2**40, 1),
                                                           (2**70, 2**70, 1)]


async def test_merge_and_on_conflict_give_the_same_tables(make_dest: Maker, pg_schema_factory,
                                                          pg) -> None:
    rng = random.Random(9)
    dbs = [await pg_schema_factory(), await pg_schema_factory()]
    dests = [await make_dest(upsert_mode="on_conflict"), await make_dest(upsert_mode="merge")]
    batches: list[list[tuple[str, Any, dict[str, Any], int]]] = []
    pos = 0
    for size in (5, 300, 2500):
        batch = []
        for _ in range(size):
            pos += 1
            k = f"k{rng.randrange(200)}"
            kind = rng.choice("uuud")
            batch.append((kind, k, {"v": rng.randrange(10**6), "s": str(pos),
                                    "d": {"p": pos}}, pos))
        batches.append(batch)
    for dest, db in zip(dests, dbs, strict=True):
        for batch in batches:
            await dest.write_batch(db, [up(db, k, v, p, off=p) if kind == "u" else
                                        dele(db, k, p, off=p) for kind, k, v, p in batch])
    a, b = [without_clock(await table_rows(pg, db)) for db in dbs]
    assert a == b and len(a) == 200


async def test_staged_and_unnest_paths_give_the_same_tables(make_dest: Maker, pg_schema_factory,
                                                            pg) -> None:
    dbs = [await pg_schema_factory(), await pg_schema_factory()]
    dests = [await make_dest(), await make_dest(upsert_mode="merge")]
    dests[0].stage_min_rows, dests[1].stage_min_rows = 1, 1
    unnest = await make_dest()
    unnest.stage_min_rows = 10**9
    dbs.append(await pg_schema_factory())
    dests.append(unnest)
    for dest, db in zip(dests, dbs, strict=True):
        recs = [up(db, f"k{i % 700}", {"i": i, "name": f"n{i}", "big": 2**40 + i if i % 3 else i,
                                       "f": i / 3, "doc": {"a": [i, {"b": str(i)}]},
                                       "when": TS, "dec": Decimal(i) / 7,
                                       "nul": "a\x00b" if i == 1405 else "ab",
                                       "mixed": "s" if i % 50 == 0 else i},
                   i, off=i) for i in range(2100)]
        recs[10] = dele(db, "k10", 10, off=10)
        await dest.write_batch(db, recs)
        await dest.write_batch(db, recs[:1000])
    tables = [without_clock(await table_rows(pg, db)) for db in dbs]
    assert tables[0] == tables[1] == tables[2]
    ovf = tables[0]["k5"]["_cartridge_overflow"]
    assert ovf["mixed"] == 1405 and orjson.loads(ovf["nul"]["$json"]) == "a\x00b"
    assert tables[0]["k5"]["nul"] == "ab"


# --- metadata ------------------------------------------------------------------------


async def test_markers(make_dest: Maker) -> None:
    dest = await make_dest()
    for marker in ({"a": [1, {"b": None}], "ts": "2024"}, [1, "two", 3.5], 12345, "s", True):
        await dest.update_marker("db", "tbl", marker)
        assert await dest.get_marker("db", "tbl") == marker
    assert await dest.get_marker("db", "missing") is None


async def test_offsets_through_apply(make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    group, topic = f"g-{db}", f"topic-{db}"
    r = up(db, "a", {"x": 1}, 1, off=0)
    r.topic, r.partition = topic, 0
    await dest.apply([r], {(topic, 0): (None, 1), (topic, 1): (None, 7)}, group)
    assert await dest.load_offsets(group, [topic]) == {(topic, 0): 1, (topic, 1): 7}
    await dest.apply([], {(topic, 0): (1, 5)}, group)
    with pytest.raises(metadata.OffsetConflict):
        await dest.apply([up(db, "b", {"x": 1}, 2)], {(topic, 0): (1, 9)}, group)
    assert await dest.load_offsets(group, [topic]) == {(topic, 0): 5, (topic, 1): 7}
    assert "b" not in await table_rows(pg, db)  # the unit rolled back whole
    found = await dest.tombstone_target(topic, [{"id": "k"}, {"_id": "k"}], 100)
    assert (found.schema, found.table, found.key) == (db, "t", {"_id": "k"})
    assert await dest.tombstone_target(f"other-{db}", [{"_id": "k"}], 100) is None
    registry = await pg.fetch(f"SELECT * FROM {META}.tables WHERE schema_name = $1", db)
    assert [(x["table_name"], x["primary_key"]) for x in registry] == [("t", ["_id"])]


async def test_topic_memory_is_written_inside_the_records_isolation(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    """Nothing derived from an event reaches SQL outside the savepoint that can isolate it:
    a topic name PostgreSQL refuses fails its record (handed to on_bad), not the flush."""
    dest = await make_dest()
    db = await pg_schema_factory()
    good, bad = up(db, "a", {"x": 1}, 1, off=0), up(db, "b", {"x": 2}, 2, off=1)
    good.topic, good.partition = f"topic-{db}", 0
    bad.topic, bad.partition = f"topic-\x00{db}", 0
    refused: list[Any] = []

    async def on_bad(failed: Any) -> None:
        refused.extend(failed)

    await dest.apply([good, bad], {}, f"g-{db}", on_bad=on_bad)
    assert [(rec.topic, err.code) for rec, err in refused] == [(bad.topic, "bad_value")]
    assert set(await table_rows(pg, db)) == {"a"}
    remembered = await pg.fetch(
        f"SELECT topic FROM {META}.topic_destinations WHERE schema_name = $1", db)
    assert [r["topic"] for r in remembered] == [good.topic]


async def test_migration_is_idempotent(make_dest: Maker, stack: Any, pg) -> None:
    meta = f"warp_mig_{random.randrange(10**9)}"
    try:
        dests = await asyncio.gather(*(make_dest(metadata_schema=meta) for _ in range(3)))
        await dests[0].connect()
        await metadata.migrate(pg, meta)
        versions = await pg.fetch(f"SELECT version FROM {meta}.schema_version ORDER BY 1")
        assert [v[0] for v in versions] == list(range(1, len(metadata._MIGRATIONS) + 1))
    finally:
        await pg.execute(f"DROP SCHEMA IF EXISTS {meta} CASCADE")


async def test_purge_soft_deleted(make_dest: Maker, pg_schema_factory, pg) -> None:
    from datetime import timedelta

    dest = await make_dest(deletion_strategy="both", hard_delete_after=timedelta(hours=1))
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, k, {"x": 1}, 1) for k in "abcd"])
    await dest.write_batch(db, [dele(db, k, 2) for k in "abc"])
    await pg.execute(f"UPDATE \"{db}\".t SET deleted_at = now() - interval '2 hours' "
                     "WHERE _id IN ('a', 'b')")
    await pg.execute(f"UPDATE \"{db}\".t SET deleted_at = now() - interval '2 hours', "
                     "is_deleted = false WHERE _id = 'd'")  # not deleted: kept
    assert await dest.purge_soft_deleted() >= 2
    assert set(await table_rows(pg, db)) == {"c", "d"}
