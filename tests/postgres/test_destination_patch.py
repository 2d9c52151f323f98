"""Partial updates on a real server: updatedFields / removedFields / truncatedArrays (and
the legacy $set / $unset, which decode to the same patches) on top-level columns and on
dotted jsonb paths, with MongoDB's semantics for missing objects and array indexes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sink.postgres import patch_sql
from tests.postgres.support import Maker, dele, patch, table_rows, up, without_clock

pytestmark = pytest.mark.integration

DOC: dict[str, Any] = {"name": "n", "age": 30, "meta": {"plan": "pro", "tags": ["a", "b", "c"],
                                                       "deep": {"x": 1}}, "arr": [1, 2, 3, 4]}


@pytest.mark.parametrize("same_batch", [False, True])
async def test_partial_updates(make_dest: Maker, pg_schema_factory, pg, same_batch: bool) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    first = [up(db, "a", DOC, 1, op="c"), up(db, "s", {"meta": "plain"}, 1, op="c")]
    patches = [
        patch(db, "a", 2, set={"name": "m", "meta.plan": "team", "meta.new.deeper.z": True,
                               "meta.tags.1": "B", "meta.tags.5": "F", "arr.0": {"o": 1}},
              unset=["age", "meta.deep.x"], truncate={"arr": 2}),
        patch(db, "a", 3, set={"meta.deep.y": [1]}, unset=["meta.tags.0", "missing.path"]),
        patch(db, "a", 4, truncate={"meta.tags": 4}, set={"extra": 1.5}),
        patch(db, "s", 2, set={"meta.k": 1}),  # a scalar in the way becomes an object
        patch(db, "s", 3, unset=["meta.k.q", "meta.nothing"]),
    ]
    kept = copy.deepcopy(first + patches)
    if same_batch:
        await dest.write_batch(db, first + patches)
    else:
        await dest.write_batch(db, first)
        for p in patches:
            await dest.write_batch(db, [p])
    assert [(r.values, r.patch) for r in first + patches] == [(r.values, r.patch) for r in kept]
    got = await table_rows(pg, db)
    a = got["a"]
    assert (a["name"], a.get("age"), a["extra"]) == ("m", None, 1.5)
    assert a["meta"] == {"plan": "team", "tags": [None, "B", "c", None],
                         "deep": {"y": [1]}, "new": {"deeper": {"z": True}}}
    assert a["arr"] == [{"o": 1}, 2]
    assert a["_cartridge_version"] == 4 and a["_cartridge_partial"] is False
    assert got["s"]["meta"] == {"k": 1} and got["s"]["_cartridge_version"] == 3


async def test_update_for_an_unknown_row_inserts_a_partial_row(make_dest: Maker,
                                                               pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "a", DOC, 1)])
    await dest.write_batch(db, [
        patch(db, "new", 5, set={"name": "x", "meta.plan": "p", "meta.tags.2": "t"},
              unset=["age"], truncate={"arr": 0}),
        patch(db, "new", 6, set={"age": 3}),
    ])
    row = (await table_rows(pg, db))["new"]
    assert row["_cartridge_partial"] is True and row["_cartridge_version"] == 2
    assert (row["name"], row["age"], row["arr"]) == ("x", 3, None)
    assert row["meta"] == {"plan": "p", "tags": {"2": "t"}}  # MongoDB creates an object
    await dest.write_batch(db, [up(db, "new", {"name": "full"}, 7)])
    row = (await table_rows(pg, db))["new"]
    assert row["_cartridge_partial"] is False and row["meta"] is None


async def test_patches_that_do_not_compose_keep_their_order(make_dest: Maker,
                                                            pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "a", {"m": {"x": 1}}, 1)])
    await dest.write_batch(db, [
        patch(db, "a", 2, set={"m.x": 2}),
        patch(db, "a", 3, set={"m": {"y": 1}}),  # replaces the document the first set touched
        patch(db, "a", 4, set={"m.z": 3}),  # inside the new document
        patch(db, "a", 5, unset=["m.y"]),
        dele(db, "a", 6),
        patch(db, "a", 7, set={"after": 1}),  # a patch of a soft-deleted row still applies
    ])
    row = (await table_rows(pg, db))["a"]
    assert row["m"] == {"z": 3} and row["after"] == 1
    assert row["is_deleted"] is True and row["_cartridge_version"] == 7


async def test_jsonb_scalars(make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, k, {"j": v}, 1) for k, v in
                                (("d", {"a": 1}), ("s", "str"), ("n", 5), ("b", True),
                                 ("l", [1]), ("z", None))])
    await dest.write_batch(db, [patch(db, k, 2, unset=["j.a"], truncate={"j.q": 0})
                                for k in "dsnblz"])
    got = await table_rows(pg, db)
    assert [got[k]["j"] for k in "dsnblz"] == [{}, "str", 5, True, [1], None]
    await dest.write_batch(db, [patch(db, k, 3, set={"j.k": 1}) for k in "snblz"])
    got = await table_rows(pg, db)
    assert [got[k]["j"] for k in "snbz"] == [{"k": 1}] * 4
    assert got["l"]["j"] == [1]  # MongoDB refuses a field name inside an array: unchanged


async def test_layout_and_patch_row_give_the_same_tables(
    make_dest: Maker, pg_schema_factory, pg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows built from a `patch_sql.Layout` (one per path signature) and rows built by
    `patch_row` patch by patch write the same tables: nested set/unset/truncate, values
    kept in overflow (a value its column cannot hold, a path inside a number column, a NUL
    character), the ordering guard holding back an older patch, missing rows inserted
    partial."""
    layouts: list[Any] = []
    of, by_row = patch_sql.Layout.of, {"on": False}
    monkeypatch.setattr(patch_sql.Layout, "of", staticmethod(
        lambda info, ch, col: None if by_row["on"] else layouts.append(1) or of(info, ch, col)))
    dest = await make_dest()
    dbs = [await pg_schema_factory(), await pg_schema_factory()]
    for on, db in zip((False, True), dbs, strict=True):
        by_row["on"] = on
        await dest.write_batch(db, [up(db, f"k{i}", {**DOC, "n": i, "txt": "t"}, 10)
                                    for i in range(60)])
        pats = []
        for i in range(80):  # k60... are missing: inserted partial
            pos = 5 if i % 10 == 3 else 20  # older than the row (10): held back
            pats.append([
                patch(db, f"k{i}", pos, set={"name": f"m{i}", "meta.plan": "team",
                                             "meta.tags.5": "F", "arr.0": {"o": i}},
                      unset=["age", "meta.deep.x"], truncate={"arr": 2}),
                patch(db, f"k{i}", pos, set={"age": f"not {i}", "meta.new.z": [i]}),
                patch(db, f"k{i}", pos, set={"n.x": i}, unset=["meta.tags.0"]),
                patch(db, f"k{i}", pos, set={"meta.nul": "a\x00b", "n": i * 2**40}),
                patch(db, f"k{i}", pos, set={"other": {"q": i}}, truncate={"meta.tags": 1}),
            ][i % 5])
        await dest.write_batch(db, pats)
    a, b = [without_clock(await table_rows(pg, db)) for db in dbs]
    assert a == b and len(a) == 80
    assert len(layouts) >= 5  # one per signature, and none for the patch_row connector
    assert a["k0"]["meta"] == {"plan": "team", "tags": ["a", "b", "c", None, None, "F"],
                               "deep": {}} and a["k0"]["arr"] == [{"o": 0}, 2]
    assert a["k1"]["age"] is None and a["k1"]["_cartridge_overflow"]["age"] == "not 1"
    assert a["k2"]["n"] == 2 and a["k2"]["_cartridge_overflow"] == {"n": {"x": 2}}
    assert a["k4"]["meta"]["tags"] == ["a"] and a["k4"]["other"] == {"q": 4}
    assert a["k13"]["_cartridge_version"] == 1 and a["k13"]["txt"] == "t"  # held back
    assert a["k8"]["meta"]["nul"] == "ab" and a["k8"]["n"] == 8 * 2**40
    assert a["k63"]["_cartridge_partial"] is True and a["k63"]["meta"] == {"nul": "ab"}
