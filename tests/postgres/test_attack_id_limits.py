"""Hostile source (attack pass) on ``mapping.id_type: auto``: integer ids at and just past
int64's limits, doubles that are integral, huge or negative zero, as MongoDB holds them; a
partial update, a delete and a tombstone read later (another run) at the limits."""

from __future__ import annotations

from typing import Any

import pytest

from sink.tools.events import MongoEvents
from tests.postgres.support import Maker, column_types
from tests.postgres.test_mongo_id_type import apply, keyed, records

pytestmark = pytest.mark.integration

LO, HI = -(2**63), 2**63 - 1


async def test_int64_limits_and_doubles_in_a_bigint_id(make_dest: Maker, pg_schema_factory: Any,
                                                      pg: Any) -> None:
    db = await pg_schema_factory()
    ev = MongoEvents(db, "c")
    dest = await make_dest()
    bad = await apply(dest, records(ev, [
        ev.insert({"_id": LO, "n": 0}), ev.insert({"_id": HI, "n": 1}),
        ev.insert({"_id": 2.0**63, "n": 2}),  # a double just past int64
        ev.insert({"_id": 1e20, "n": 3}), ev.insert({"_id": 2.5, "n": 4}),
        ev.insert({"_id": 0, "n": 5}), ev.insert({"_id": -0.0, "n": 6}),  # one _id in MongoDB
        ev.insert({"_id": float(2**62), "n": 7}), ev.insert({"_id": -(2.0**63), "n": 8}),
    ]))
    assert (await column_types(pg, db, "c"))["_id"] == "bigint"
    assert sorted((r.offset, e.code) for r, e in bad) == [
        (2, "id_type_mismatch"), (3, "id_type_mismatch"), (4, "id_type_mismatch")]
    # -2^63 as a double is the same _id as the int64 -2^63: the later change wins
    assert await keyed(pg, db, "c") == {LO: 8, HI: 1, 0: 6, 2**62: 7}
    # a partial update and a delete at the limits, then a tombstone read in another run
    more = records(ev, [ev.update(HI, {"n": 11}), ev.delete(LO)], 20)
    assert await apply(dest, more) == []
    tomb = records(ev, [ev.tombstone(HI)], 30)[0]
    fresh = await make_dest()
    found = await fresh.tombstone_target(ev.topic, [tomb.key, *tomb.alt_keys], 30)
    assert found is not None and (found.schema, found.table) == (db, "c")
    tomb.schema, tomb.table, tomb.key = found.schema, found.table, found.key
    assert await apply(fresh, [tomb]) == []
    assert await keyed(pg, db, "c", "n, is_deleted") == {
        LO: (8, True), HI: (11, True), 0: (6, False), 2**62: (7, False)}
