"""MongoDB documents through the real `warp-sink run` process: field names the sink's SQL
also uses, dates at and beyond Python's edges, and a collection whose fields outgrow
PostgreSQL's column limit — every document lands, nothing is dead-lettered (issue 17
items 1, 2, 8, 9; issue 12 items 10, 11)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import pytest

from sink.tools.events import MongoEvents, Oid
from tests.support import produce, run_sink, topic_exists, unique, write_config

pytestmark = pytest.mark.integration

GO_ZERO = datetime(1, 1, 1, tzinfo=UTC)  # Go's zero time.Time, .NET's DateTime.MinValue
Y10000 = 253_402_300_800_000  # 10000-01-01T00:00:00Z in epoch ms: beyond Python's years


def _oid(i: int) -> Oid:
    return Oid(f"{i:024x}")


async def test_hostile_names_edge_dates_and_wide_documents_all_land(
    stack, topic_factory, tmp_path: Path
) -> None:
    topic = await topic_factory(partitions=1)
    db = unique("fid")
    ev = MongoEvents(db, "docs")
    events = [
        # A far date first: it must not make "when" jsonb.
        ev.insert({"_id": _oid(1), "when": {"$date": {"$numberLong": str(Y10000)}},
                   "ts": "a", "pos": 1, "cnt": 2, "del": True, "ovf": "o"}),
        ev.insert({"_id": _oid(2), "when": datetime(2020, 5, 1, tzinfo=UTC), "ts": "b"}),
        ev.insert({"_id": _oid(3), "when": GO_ZERO, "pos": 3}),
        ev.update(_oid(2), {"when": GO_ZERO, "ts": "b2"}),
        ev.update(_oid(1), {"cnt": 20}, unset=["del"]),
    ]
    # A second collection whose documents bring 1,700 fields in all.
    wide = MongoEvents(db, "wide")
    events += [wide.insert({"_id": _oid(10 + d), **{f"f{d}_{i}": i for i in range(425)}})
               for d in range(4)]
    await produce(stack.bootstrap_servers, topic, events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not await topic_exists(stack.bootstrap_servers, f"{group}.dlq")
    assert "no column left" in done.stdout + done.stderr

    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        await conn.execute("SET TimeZone = 'UTC'")
        kind = await conn.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass($1) AND attname = 'when'", f'"{db}".docs')
        assert kind == "timestamp with time zone"
        rows = {r["_id"]: dict(r) for r in await conn.fetch(
            f'SELECT _id, "when"::text AS "when", ts, pos, cnt, del, ovf '
            f'FROM "{db}".docs')}
        assert rows[_oid(1)] == {"_id": _oid(1), "when": "10000-01-01 00:00:00+00", "ts": "a",
                                 "pos": 1, "cnt": 20, "del": None, "ovf": "o"}
        assert rows[_oid(2)]["when"] == "0001-01-01 00:00:00+00" and rows[_oid(2)]["ts"] == "b2"
        assert rows[_oid(3)]["when"] == "0001-01-01 00:00:00+00" and rows[_oid(3)]["pos"] == 3
        wide_rows = await conn.fetch(f'SELECT * FROM "{db}".wide')
        assert len(wide_rows) == 4
        for rec in wide_rows:
            r = dict(rec)
            d = int(r["_id"], 16) - 10
            got = {f: v for f, v in r.items() if f.startswith(f"f{d}_") and v is not None}
            got |= orjson.loads(r["_cartridge_overflow"] or "{}")
            assert got == {f"f{d}_{i}": i for i in range(425)}
    finally:
        await conn.close()

