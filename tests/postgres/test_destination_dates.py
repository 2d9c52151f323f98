"""Dates at and beyond Python's edges land exactly (issue 17 items 2 and 9, issue 12
item 11): asyncpg writes Python's minimum and maximum dates and timestamps as
``-infinity``/``infinity``; MongoDB dates outside years 1-9999 are timestamps PostgreSQL
holds (4713 BC to 294276 AD) and never make a column ``jsonb``. Values are read back as
text (asyncpg would read ``-infinity`` back as Python's minimum and hide the bug)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from tests.postgres.support import Maker, column_types, patch, up

pytestmark = pytest.mark.integration

EDGES_MIN = {"d": date.min, "ts": datetime.min, "tz": datetime.min.replace(tzinfo=UTC)}
EDGES_MAX = {"d": date.max, "ts": datetime.max, "tz": datetime.max.replace(tzinfo=UTC)}
MIN_TEXT = {"d": "0001-01-01", "ts": "0001-01-01 00:00:00", "tz": "0001-01-01 00:00:00+00"}
MAX_TEXT = {"d": "9999-12-31", "ts": "9999-12-31 23:59:59.999999",
            "tz": "9999-12-31 23:59:59.999999+00"}
NORMAL = {"d": date(2024, 2, 29), "ts": datetime(2024, 2, 29, 12, 0),
          "tz": datetime(2024, 2, 29, 12, 0, tzinfo=UTC)}
NORMAL_TEXT = {"d": "2024-02-29", "ts": "2024-02-29 12:00:00", "tz": "2024-02-29 12:00:00+00"}


async def _texts(pg: Any, db: str, cols: list[str]) -> dict[str, dict[str, str | None]]:
    await pg.execute("SET TimeZone = 'UTC'")
    sel = ", ".join(f'"{c}"::text AS "{c}"' for c in cols)
    return {r["_id"]: {c: r[c] for c in cols}
            for r in await pg.fetch(f'SELECT _id, {sel} FROM "{db}".t')}


@pytest.mark.parametrize("staged", [False, True], ids=["unnest", "copy"])
async def test_python_edge_dates_are_stored_exactly(
    make_dest: Maker, pg_schema_factory, pg, staged: bool
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    n = dest.stage_min_rows if staged else 3
    fill = [up(db, f"z{i}", NORMAL, 10, op="c") for i in range(n - 3)]
    await dest.write_batch(db, [up(db, "min", EDGES_MIN, 10, op="c"),
                                up(db, "max", EDGES_MAX, 10, op="c"),
                                up(db, "normal", NORMAL, 50, op="c"), *fill])
    assert (await column_types(pg, db))["tz"] == "timestamp with time zone"
    assert (await column_types(pg, db))["ts"] == "timestamp without time zone"
    # Partial updates: to existing rows, to a row the table lacks (inserted as partial),
    # and an older change the ordering guard skips (its edge value must not land either).
    await dest.write_batch(db, [
        patch(db, "min", 20, set=EDGES_MAX),
        patch(db, "max", 20, set=EDGES_MIN),
        patch(db, "new", 20, set=EDGES_MIN),
        patch(db, "normal", 40, set=EDGES_MIN),
    ])
    got = await _texts(pg, db, ["d", "ts", "tz"])
    assert got["min"] == MAX_TEXT
    assert got["max"] == MIN_TEXT
    assert got["new"] == MIN_TEXT
    assert got["normal"] == NORMAL_TEXT
    # A full document with an edge value replacing a row, in the same flush as others.
    await dest.write_batch(db, [up(db, "normal", EDGES_MAX, 60), up(db, "min", NORMAL, 61)])
    got = await _texts(pg, db, ["d", "ts", "tz"])
    assert got["normal"] == MAX_TEXT and got["min"] == NORMAL_TEXT
    assert not await pg.fetchval(
        f'SELECT count(*) FROM "{db}".t '
        "WHERE NOT (isfinite(d) AND isfinite(ts) AND isfinite(tz))")


def far(ms: int) -> dict[str, Any]:
    """A MongoDB date outside Python's years, as the decoder represents it."""
    return {"$date": {"$numberLong": str(ms)}}


Y10000 = 253_402_300_800_000  # 10000-01-01T00:00:00Z
BC = -62_135_596_800_001  # 0000-12-31T23:59:59.999Z: 1 BC, the last ms before year 1
TOP = 9_224_318_015_999_999  # 294276-12-31T23:59:59.999Z: the last ms PostgreSQL holds
BEYOND = 10**17  # beyond PostgreSQL's timestamptz: keeps no column type


async def _oracle(pg: Any, ms: int) -> str:
    """PostgreSQL's own rendering of the instant ``ms`` epoch milliseconds."""
    return str(await pg.fetchval(
        "SELECT (timestamptz 'epoch' + ($1::bigint / 86400000) * interval '1 day'"
        " + ($1::bigint % 86400000) * interval '1 millisecond')::text", ms))


async def test_dates_outside_python_years_are_timestamptz(
    make_dest: Maker, pg_schema_factory, pg
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    await pg.execute("SET TimeZone = 'UTC'")
    # The first value of "early" is beyond Python's years; of "x", beyond PostgreSQL's.
    await dest.write_batch(db, [
        up(db, "a", {"early": far(Y10000), "x": far(BEYOND)}, 1, op="c"),
        up(db, "b", {"early": datetime(2020, 5, 1, tzinfo=UTC), "x": NORMAL["tz"]}, 2, op="c"),
        up(db, "c", {"early": far(BC), "x": far(TOP)}, 3, op="c"),
    ])
    types = await column_types(pg, db)
    assert types["early"] == "timestamp with time zone"
    assert types["x"] == "timestamp with time zone"  # decided by the first value it can hold
    await dest.write_batch(db, [patch(db, "b", 4, set={"early": far(TOP), "x": far(BC)}),
                                patch(db, "p", 5, set={"early": far(BC)})])
    got = await _texts(pg, db, ["early", "x"])
    assert got["a"] == {"early": await _oracle(pg, Y10000), "x": None}
    assert got["a"]["early"] == "10000-01-01 00:00:00+00"
    assert got["b"] == {"early": await _oracle(pg, TOP), "x": await _oracle(pg, BC)}
    assert got["b"]["early"] == "294276-12-31 23:59:59.999+00"
    assert got["c"] == {"early": "0001-12-31 23:59:59.999+00 BC", "x": await _oracle(pg, TOP)}
    assert got["p"]["early"] == await _oracle(pg, BC)
    ovf = await pg.fetchval(f'SELECT _cartridge_overflow::text FROM "{db}".t WHERE _id = $1', "a")
    assert ovf == f'{{"x": {{"$date": {{"$numberLong": "{BEYOND}"}}}}}}'
