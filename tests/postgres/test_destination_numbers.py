"""Widening gaps between floats, integers and numeric (issue 17 item 7): a
``double precision`` column widens to ``numeric`` for an integer it cannot hold exactly
(above 2^53), and a ``numeric`` column takes double NaN and ±Infinity as PostgreSQL's
numeric does. Values are read back as text: exact digits, nothing in overflow."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.postgres.support import Maker, column_types, up

pytestmark = pytest.mark.integration

BIG = 2**53 + 1  # the first integer a double cannot hold
HUGE = 2**62 + 3


async def test_double_widens_to_numeric_for_big_integers(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "a", {"x": 1.5, "y": 1.5, "z": float("nan")}, 1, op="c")])
    assert (await column_types(pg, db))["x"] == "double precision"
    await dest.write_batch(db, [
        up(db, "b", {"x": BIG, "y": 2**53, "z": HUGE}, 2, op="c"),
        up(db, "c", {"x": -HUGE, "y": 7}, 3, op="c"),
    ])
    types = await column_types(pg, db)
    assert (types["x"], types["y"], types["z"]) == ("numeric", "double precision", "numeric")
    got = {r["_id"]: r for r in await pg.fetch(
        f'SELECT _id, x::text, y::text, z::text, _cartridge_overflow FROM "{db}".t')}
    assert (got["a"]["x"], got["b"]["x"], got["c"]["x"]) == ("1.5", str(BIG), str(-HUGE))
    assert (got["b"]["y"], got["c"]["y"]) == ("9.007199254740992e+15", "7")
    assert (got["a"]["z"], got["b"]["z"]) == ("NaN", str(HUGE))
    assert all(r["_cartridge_overflow"] is None for r in got.values())


async def test_numeric_takes_double_nan_and_infinities(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await dest.write_batch(db, [up(db, "d", {"n": Decimal("1.10")}, 1, op="c")])
    await dest.write_batch(db, [
        up(db, "nan", {"n": float("nan")}, 2, op="c"),
        up(db, "pinf", {"n": float("inf")}, 3, op="c"),
        up(db, "ninf", {"n": float("-inf")}, 4, op="c"),
        up(db, "f", {"n": 0.1}, 5, op="c"),
    ])
    assert (await column_types(pg, db))["n"] == "numeric"
    got = {r["_id"]: (r["n"], r["_cartridge_overflow"]) for r in await pg.fetch(
        f'SELECT _id, n::text, _cartridge_overflow FROM "{db}".t')}
    assert got == {"d": ("1.10", None), "nan": ("NaN", None), "pinf": ("Infinity", None),
                   "ninf": ("-Infinity", None), "f": ("0.1", None)}
