"""The records a hostile source sends on a bad day, all on one topic, through the real
``warp-sink run`` process: the service keeps going, every good record lands exactly, and
only the truly bad ones are dead letters, each with its reason."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from sink.postgres.names import column_name
from tests.postgres.test_mongo_fidelity import raw_event
from tests.service.test_poison import NULL, make_topic, produce_raw
from tests.support import read_topic, run_sink, unique, write_config

pytestmark = pytest.mark.integration

LONG_NAME = "f" * 200  # past PostgreSQL's 63 bytes: shortened with a stable hash suffix


def doc(_id: str, **fields: Any) -> str:
    return json.dumps({"_id": _id, **fields})


async def test_a_bad_day_on_one_topic(stack: Any, tmp_path: Path) -> None:
    # a topic that takes records of several MB, as one carrying large documents must
    topic = await make_topic(stack.bootstrap_servers, unique("worst"), 8 * 1024 * 1024)
    db = unique("worst")

    def ev(_id: str, after: str, coll: str = "t", ts: int = 1700000000000) -> tuple[bytes, bytes]:
        return raw_event(db, after, key=json.dumps(_id), coll=coll, ts=ts)

    big = "x" * (3 * 1024 * 1024)  # a 3 MB field: larger than one fetch of 2 MiB
    events: list[Any] = [
        NULL,  # the tombstone of a keyless table's delete: skipped, counted
        ev("edges", doc("edges",
                        y1={"$date": {"$numberLong": "-62135596800000"}},  # 0001-01-01
                        y9999={"$date": {"$numberLong": "253402300799999"}},
                        nan={"$numberDouble": "NaN"},
                        dec={"$numberDecimal": "2.500"},
                        i64={"$numberLong": "9223372036854775807"},
                        nested={"price": {"$numberDecimal": "19.90"}, "qty": 2.5})),
        ev("names", doc("names", **{"a\u0000b": 1, LONG_NAME: 2, "ts": 3, "xmin": 4})),
        ev("big", doc("big", blob=big)),
        ev("long-coll", doc("long-coll", v=1), coll="c" * 200),
        ev("nul-coll", doc("nul-coll", v=1), coll="bad\u0000coll"),  # truly bad: no table
        (json.dumps({"id": json.dumps("gone")}).encode(), None),  # tombstone, unknown key
        (json.dumps({"id": json.dumps("edges")}).encode(), b"\x00not json"),  # truly bad
    ]
    await produce_raw(stack.bootstrap_servers, topic, events, max_request_size=8 * 1024 * 1024)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-3000:]

    letters = await read_topic(stack.bootstrap_servers, f"{group}.dlq", within=10)
    codes = sorted(dict(m.headers)["warp.error.code"].decode() for m in letters)
    assert codes == ["bad_identifier", "bad_json"], [
        (dict(m.headers)["__connect.errors.offset"], dict(m.headers).get("warp.error.message"))
        for m in letters]

    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        edges = await conn.fetchrow(
            f'SELECT y1::text, y9999::text, nan::text, dec::text, i64, nested::text '
            f'FROM "{db}".t WHERE _id = $1', "edges")
        names = await conn.fetchrow(f'SELECT * FROM "{db}".t WHERE _id = $1', "names")
        blob = await conn.fetchval(f'SELECT length(blob) FROM "{db}".t WHERE _id = $1', "big")
        long_coll = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'ccc%'", db)
        stored = await conn.fetchval(
            "SELECT next_offset FROM cartridge_warp_metadata.kafka_offsets "
            "WHERE group_id = $1 AND topic = $2", group, topic)
    finally:
        await conn.close()
    assert edges is not None
    assert edges["y1"].startswith("0001-01-01 00:00:00") and "infinity" not in edges["y1"]
    assert edges["y9999"].startswith("9999-12-31 23:59:59.999")
    assert edges["nan"] == "NaN" and edges["dec"] == "2.500"
    assert edges["i64"] == 2**63 - 1
    assert json.loads(edges["nested"]) == {"price": 19.90, "qty": 2.5}
    assert '"price": 19.90' in edges["nested"]  # exact: the trailing zero kept
    assert names is not None
    # a NUL in a name, 200 bytes, `ts` (an alias of the sink's SQL once), `xmin`: all land
    assert [names[column_name(f)] for f in ("a\u0000b", LONG_NAME, "ts", "xmin")] == [1, 2, 3, 4]
    assert blob == len("x" * (3 * 1024 * 1024))
    assert long_coll == 1
    assert stored == len(events)  # nothing left behind: every offset applied
