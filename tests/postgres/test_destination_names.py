"""User column names never collide with the names in the sink's SQL (issue 17 item 1):
fields named like the statements' aliases (``ts``, ``pos``, ``cnt``, ``del``, ``ovf``...)
through every path — unnest upserts and COPY-staged upserts in both upsert modes, partial
updates, deletes and tombstones, keys changed several times in a batch."""

from __future__ import annotations

from typing import Any

import pytest

from sink.records import Kind, Record
from tests.postgres.support import TS, Maker, dele, patch, table_rows, tomb, up

pytestmark = pytest.mark.integration

# The aliases the statements use (and a few SQL words), as user field names.
HOSTILE = ["ts", "pos", "cnt", "del", "ovf", "ovfi", "p", "tomb", "toff", "c0", "c1", "a0",
           "a1", "u", "s", "t", "x", "upd", "excluded", "select", 'we"ird', "pos::text"]


def _doc(i: int, gen: int) -> dict[str, Any]:
    return {f: f"{f}-{i}-{gen}" for f in HOSTILE if f != "toff"} | {"n": i}


@pytest.mark.parametrize("mode", ["on_conflict", "merge"])
@pytest.mark.parametrize("staged", [False, True], ids=["unnest", "copy"])
async def test_hostile_field_names_through_upserts_and_patches(
    make_dest: Maker, pg_schema_factory, pg, mode: str, staged: bool
) -> None:
    dest = await make_dest(upsert_mode=mode)
    db = await pg_schema_factory()
    n = dest.stage_min_rows if staged else 5
    keys = [f"{i:024x}" for i in range(n)]
    # Insert, then a full replace: the second is an ON CONFLICT update / MERGE WHEN MATCHED.
    await dest.write_batch(db, [up(db, k, _doc(i, 0), 10, op="c") for i, k in enumerate(keys)])
    await dest.write_batch(db, [up(db, k, _doc(i, 1), 20) for i, k in enumerate(keys)])
    # Partial updates: set and unset hostile top-level fields, a nested path under one.
    await dest.write_batch(db, [
        patch(db, k, 30, set={"ts": f"patched-{i}", "cnt": f"c{i}", "toff.deep": i},
              unset=["del"]) for i, k in enumerate(keys[:3])
    ])
    # A partial update of a row the table lacks: inserted as partial.
    await dest.write_batch(db, [patch(db, "e" * 24, 31, set={"pos": "only", "ovf": "o"})])
    # A document without those fields, inserted after the columns exist (used to fail).
    await dest.write_batch(db, [up(db, "f" * 24, {"n": -1}, 40, op="c")])
    got = await table_rows(pg, db)
    assert len(got) == n + 2
    for i, k in enumerate(keys):
        want: dict[str, Any] = _doc(i, 1) | {"toff": None}
        if i < 3:
            want |= {"ts": f"patched-{i}", "cnt": f"c{i}", "del": None, "toff": {"deep": i}}
        assert {f: got[k][f] for f in want} == want, k
        assert got[k]["_cartridge_version"] == (3 if i < 3 else 2)
        assert got[k]["_cartridge_overflow"] is None
    partial = got["e" * 24]
    assert (partial["pos"], partial["ovf"], partial["_cartridge_partial"]) == ("only", "o", True)
    assert got["f" * 24]["n"] == -1 and got["f" * 24]["ts"] is None


async def test_hostile_key_column_names_through_deletes_and_folds(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    """A relational table whose key columns are named ``ts`` and ``pos`` (and a data
    column ``cnt``): inserts, a key changed three times in one batch (the stored positions
    are read back), deletes and tombstones."""
    dest = await make_dest()
    db = await pg_schema_factory()

    def rec(ts: int, pos: str, kind: Kind, op: str, at: int, cnt: int | None = None) -> Record:
        key = {"ts": ts, "pos": pos}
        values = {**key, "cnt": cnt, "toff": f"t{cnt}"} if kind is Kind.UPSERT else None
        return Record(db, "t", key, kind, op, values=values, position=(at, 1), source_ts=TS)

    await dest.write_batch(db, [rec(i, f"k{i}", Kind.UPSERT, "c", 10, i) for i in range(6)])
    await dest.write_batch(db, [
        rec(0, "k0", Kind.UPSERT, "u", 20, 100), rec(0, "k0", Kind.UPSERT, "u", 21, 101),
        rec(0, "k0", Kind.UPSERT, "u", 22, 102),
        rec(1, "k1", Kind.UPSERT, "u", 5, 999),  # older than the row: the guard skips it
        rec(1, "k1", Kind.UPSERT, "u", 6, 998),
        rec(2, "k2", Kind.DELETE, "d", 30),
        Record(db, "t", {"ts": 3, "pos": "k3"}, Kind.DELETE, "tombstone", offset=7),
    ])
    rows = {(r["ts"], r["pos"]): dict(r) for r in await pg.fetch(f'SELECT * FROM "{db}".t')}
    assert rows[(0, "k0")]["cnt"] == 102 and rows[(0, "k0")]["_cartridge_version"] == 4
    assert rows[(0, "k0")]["toff"] == "t102"
    assert rows[(1, "k1")]["cnt"] == 1 and rows[(1, "k1")]["_cartridge_version"] == 1
    assert rows[(2, "k2")]["is_deleted"] is True and rows[(2, "k2")]["cnt"] == 2
    assert rows[(3, "k3")]["is_deleted"] is True
    assert not any(rows[(i, f"k{i}")]["is_deleted"] for i in (0, 1, 4, 5))


async def test_hostile_field_names_with_deletes_of_mongo_rows(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    dest = await make_dest(deletion_strategy="hard")
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, k, _doc(0, 0), 1, op="c") for k in "abc"])
    await dest.write_batch(db, [dele(db, "a", 2), tomb(db, "b"),
                                up(db, "c", _doc(1, 1), 3), dele(db, "c", 4),
                                up(db, "c", _doc(2, 2), 5, op="c")])
    got = await table_rows(pg, db)
    assert set(got) == {"c"}
    assert all(got["c"][f] == v for f, v in _doc(2, 2).items())
