"""A table's shape is a function of the event sequence, never of batch boundaries (issue
17 item 3): the same events applied in one flush and one by one give the same column
types and the same rows. The first value of a field in partition order decides its
column's type, even when the flush folds a key's changes into its last document."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from sink.records import Record
from tests.postgres.support import (
    Maker,
    column_types,
    dele,
    patch,
    table_rows,
    up,
    without_clock,
)

pytestmark = pytest.mark.integration


async def _both(make_dest: Maker, pg_schema_factory, pg,
                events: Any) -> tuple[dict[str, str], dict[Any, Any], dict[str, str]]:
    """Apply ``events(db)`` in one flush in one schema and one record per flush in
    another; returns (types together, rows together, types one by one) after asserting
    the rows are the same."""
    dest = await make_dest()
    together, apart = await pg_schema_factory(), await pg_schema_factory()
    await dest.write_batch(together, events(together))
    for rec in events(apart):
        await dest.write_batch(apart, [rec])
    rows_t = without_clock(await table_rows(pg, together))
    rows_a = without_clock(await table_rows(pg, apart))
    assert rows_t == rows_a
    return await column_types(pg, together), rows_t, await column_types(pg, apart)


async def test_a_key_changed_several_times_keeps_its_first_type(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    def events(db: str) -> list[Record]:
        return [up(db, "k1", {"price": 5}, 1, op="c"), up(db, "k1", {"price": "5.00"}, 2),
                up(db, "k2", {"price": 7}, 3, op="c")]

    types, rows, apart = await _both(make_dest, pg_schema_factory, pg, events)
    assert types == apart
    assert types["price"] == "integer"
    assert rows["k1"]["price"] is None
    assert rows["k1"]["_cartridge_overflow"] == {"price": "5.00"}
    assert rows["k2"]["price"] == 7


async def test_a_patch_before_an_upsert_decides_first(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    def events(db: str) -> list[Record]:
        return [up(db, "a", {"n": 1}, 1, op="c"), patch(db, "a", 2, set={"f": "text"}),
                up(db, "b", {"f": 5}, 3, op="c")]

    types, rows, apart = await _both(make_dest, pg_schema_factory, pg, events)
    assert types == apart and types["f"] == "text"
    assert rows["b"]["f"] is None and rows["b"]["_cartridge_overflow"] == {"f": 5}


async def test_a_field_first_seen_without_a_type_takes_its_place_when_it_gets_one(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    # Found by the MongoDB property test: in one flush a new column was placed where its
    # field first appeared, even as a null (or a date beyond PostgreSQL's range) that
    # decides no type; one by one it comes after the columns typed before it.
    def events(db: str) -> list[Record]:
        return [up(db, "k1", {"a": None, "far": {"$date": {"$numberLong": str(2**62)}},
                              "b": 1}, 1, op="c"),
                up(db, "k2", {"far": "x", "b": 2, "a": "y"}, 2, op="c")]

    dest = await make_dest()
    together, apart = await pg_schema_factory(), await pg_schema_factory()
    await dest.write_batch(together, events(together))
    for rec in events(apart):
        await dest.write_batch(apart, [rec])
    orders = [[r[0] for r in await pg.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(format('%I.t', $1::text))"
        " AND attnum > 0 ORDER BY attnum", db)] for db in (together, apart)]
    assert orders[0] == orders[1]
    assert orders[0].index("b") < orders[0].index("far") < orders[0].index("a")


async def test_values_kept_in_overflow_move_into_a_column_widened_to_jsonb(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    # Found by the MongoDB property test: a number that a text column could not hold went
    # to overflow one by one, but into the column when the document that widened it to
    # jsonb came in the same flush. Now the widening moves it in: the same rows either way.
    def events(db: str) -> list[Record]:
        return [up(db, "k1", {"f": "s"}, 1, op="c"), up(db, "k2", {"f": 5}, 2, op="c"),
                up(db, "k3", {"f": ["a\x00"]}, 3, op="c"),
                up(db, "k4", {"f": {"x": 1}}, 4, op="c")]

    types, rows, apart = await _both(make_dest, pg_schema_factory, pg, events)
    assert types == apart and types["f"] == "jsonb"
    assert {k: (r["f"], r["_cartridge_overflow"]) for k, r in rows.items()} == {
        "k1": ("s", None), "k2": (5, None), "k4": ({"x": 1}, None),
        "k3": (["a"], {"f": {"$json": '["a\\u0000"]'}})}


VALUES: list[Any] = [
    0, 7, -3, 2**40, 2**70, 1.5, -0.25, "s", "5.00", "", True, False, None,
    {"x": 1}, [1, "a"], datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
]
FIELDS = ["price", "ts", "a", "b", "c"]


def _random_events(seed: int) -> Any:
    def events(db: str) -> list[Record]:
        rng = random.Random(seed)
        out: list[Record] = []
        live: set[str] = set()
        for pos in range(1, 60):
            key = rng.choice("pqrs")
            roll = rng.random()
            if key not in live or roll < 0.4:
                doc = {f: rng.choice(VALUES) for f in rng.sample(FIELDS, rng.randint(1, 4))}
                out.append(up(db, key, doc, pos, op="u" if key in live else "c"))
                live.add(key)
            elif roll < 0.85:
                paths = rng.sample(FIELDS, rng.randint(1, 2))
                if rng.random() < 0.3:  # a dotted path: its root wants jsonb
                    paths[0] += ".x"
                sets = {f: rng.choice(VALUES) for f in paths}
                unset = [f for f in rng.sample(FIELDS, 1)
                         if not any(p.split(".")[0] == f for p in sets)]
                out.append(patch(db, key, pos, set=sets, unset=unset))
            else:
                out.append(dele(db, key, pos))
                live.discard(key)
        return out

    return events


@pytest.mark.parametrize("seed", range(1, 9))
async def test_random_sequences_give_the_same_table_in_one_flush_or_one_by_one(
    make_dest: Maker, pg_schema_factory, pg, seed: int
) -> None:
    types, _, apart = await _both(make_dest, pg_schema_factory, pg, _random_events(seed))
    assert types == apart
