"""Partial updates on a real server: updatedFields / removedFields / truncatedArrays (and
the legacy $set / $unset, which decode to the same patches) on top-level columns and on
dotted jsonb paths, with MongoDB's semantics for missing objects and array indexes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.postgres.support import Maker, dele, patch, table_rows, up

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
