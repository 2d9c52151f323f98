"""Throughput of the PostgreSQL writer against a hand-written COPY + INSERT ... ON CONFLICT.

    python bench/bench_write.py --dsn postgresql://user:pw@host/db [--batches 10] [--size 5000]

Without ``--dsn`` a local stack (sink.stack.LocalStack) is started in a temporary directory
and stopped at the end. Each run measures, on 5,000-row batches of the seed's sample
document (``_id`` ObjectId hex, name, age, salary, is_active, created_at, metadata {plan,
features[]}):

* ``write_batch`` inserting new keys, then upserting the same keys again (new values);
* a hand-written baseline doing the same work: the same documents turned into tuples
  (metadata rendered as JSON), binary COPY into a TEMP table, one ``INSERT ... SELECT ...
  ON CONFLICT (_id) DO UPDATE`` into a table of the same shape, COMMIT per batch.

It prints events/s for both and the ratio (sink / baseline). ``--profile FILE`` writes a
pyinstrument HTML profile of the sink's upsert run (needs ``pip install pyinstrument``).

``--kind patch`` times partial updates instead (scenario d's; `bench_patch.py`), with the
split of the wall time between PostgreSQL, asyncpg and the sink.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_patch import bench_patches

from sink.postgres.connector import PostgreSQLDestinationConnector
from sink.records import Kind, Record

PLANS = ("free", "pro", "team", "enterprise")
FEATURES = ("analytics", "api_access", "sso", "audit", "export", "webhooks")


def documents(n: int, seed: int, ts: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    base = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    docs = []
    for i in range(n):
        docs.append({
            "_id": f"{i:024x}",
            "name": f"User {rng.randrange(10**6)}",
            "age": rng.randrange(18, 90),
            "salary": round(rng.uniform(20_000, 200_000), 2),
            "is_active": rng.random() < 0.8,
            "created_at": base + timedelta(seconds=rng.randrange(10**7)),
            "metadata": {"plan": rng.choice(PLANS),
                         "features": rng.sample(FEATURES, rng.randrange(0, 4))},
            "_ts": ts,
        })
    return docs


def records(db: str, docs: list[dict[str, Any]], op: str) -> list[Record]:
    out = []
    for i, d in enumerate(docs):
        values = {k: v for k, v in d.items() if k != "_ts"}
        out.append(Record(db, "users", {"_id": d["_id"]}, Kind.UPSERT, op, values=values,
                          position=(d["_ts"], 1), offset=i))
    return out


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def run_sink(dsn: str, mode: str, batches: list[list[dict[str, Any]]],
                   upserts: list[list[dict[str, Any]]], profile: str | None,
                   stage_min_rows: int | None = None) -> tuple[float, float]:
    db = f"bench_{uuid.uuid4().hex[:8]}"
    pg = PostgreSQLDestinationConnector(dsn, metadata_schema="bench_meta", upsert_mode=mode,
                                        min_connections=1, max_connections=2)
    if stage_min_rows is not None:
        pg.stage_min_rows = stage_min_rows
    await pg.connect()
    try:
        # Warm-up (table creation, prepared statements) on a separate table.
        await pg.write_batch("bench_warm", records("bench_warm", batches[0], "c"))
        recs_in = [records(db, b, "c") for b in batches]
        recs_up = [records(db, b, "u") for b in upserts]
        t0 = time.perf_counter()
        for batch in recs_in:
            await pg.write_batch(db, batch)
        t_ins = time.perf_counter() - t0
        profiler = None
        if profile:
            from pyinstrument import Profiler  # optional, not a project dependency
            profiler = Profiler(async_mode="enabled")
            profiler.start()
        t0 = time.perf_counter()
        for batch in recs_up:
            await pg.write_batch(db, batch)
        t_up = time.perf_counter() - t0
        if profiler is not None:
            profiler.stop()
            html = profiler.output_html()
            await asyncio.to_thread(Path(profile).write_text, html)
            print(profiler.output_text(unicode=False, color=False))
        async with pg.pool.acquire() as conn:
            n = await conn.fetchval(f'SELECT count(*) FROM "{db}".users')
            v = await conn.fetchval(f'SELECT min(_cartridge_version) FROM "{db}".users')
            assert n == sum(len(b) for b in batches) and v == 2, (n, v)
            await conn.execute(f'DROP SCHEMA "{db}" CASCADE')
            await conn.execute('DROP SCHEMA IF EXISTS "bench_warm" CASCADE')
    finally:
        await pg.disconnect()
    return t_ins, t_up


HAND_COLS = ("_id", "name", "age", "salary", "is_active", "created_at", "metadata", "pos")


def hand_rows(docs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(d["_id"], d["name"], d["age"], d["salary"], d["is_active"], d["created_at"],
             orjson.dumps(d["metadata"]).decode(), ((d["_ts"] << 64 | 1) << 64) | i)
            for i, d in enumerate(docs)]


async def run_hand(dsn: str, batches: list[list[dict[str, Any]]],
                   upserts: list[list[dict[str, Any]]], bare: bool) -> tuple[float, float]:
    """The baseline: what a person would write by hand for this one table shape. ``bare``:
    data columns only; otherwise the sink's table layout (its bookkeeping columns, the
    ordering guard and the is_deleted index), so the ratio measures the sink's own overhead."""
    conn = await asyncpg.connect(dsn)
    table = f"hand_{uuid.uuid4().hex[:8]}"
    data = ("name text, age integer, salary double precision, is_active boolean, "
            "created_at timestamptz, metadata jsonb")
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in HAND_COLS[1:7])
    try:
        if bare:
            await conn.execute(f"CREATE TABLE {table} (_id text PRIMARY KEY, {data})")
            sql = (f"INSERT INTO {table} AS t ({', '.join(HAND_COLS[:7])}) "
                   f"SELECT {', '.join(HAND_COLS[:7])} FROM stage "
                   f"ON CONFLICT (_id) DO UPDATE SET {sets}")
        else:
            await conn.execute(
                f"CREATE TABLE {table} (_id text NOT NULL, "
                "_cartridge_version bigint NOT NULL DEFAULT 0, "
                "_cartridge_created_at timestamptz NOT NULL DEFAULT now(), "
                "_cartridge_updated_at timestamptz NOT NULL DEFAULT now(), "
                "_cartridge_source_ts timestamptz, _cartridge_source_pos numeric, "
                "is_deleted boolean NOT NULL DEFAULT false, deleted_at timestamptz, "
                "_cartridge_overflow jsonb, _cartridge_partial boolean NOT NULL DEFAULT false, "
                f"{data}, PRIMARY KEY (_id))")
            await conn.execute(f"CREATE INDEX ON {table} (is_deleted) WHERE is_deleted")
            sql = (
                f"INSERT INTO {table} AS t ({', '.join(HAND_COLS[:7])}, _cartridge_version, "
                "_cartridge_source_pos) "
                f"SELECT {', '.join(HAND_COLS[:7])}, 1, pos FROM stage "
                f"ON CONFLICT (_id) DO UPDATE SET {sets}, "
                "_cartridge_version = t._cartridge_version + 1, _cartridge_updated_at = now(), "
                "_cartridge_source_pos = EXCLUDED._cartridge_source_pos, is_deleted = false, "
                "deleted_at = NULL, _cartridge_overflow = NULL, _cartridge_partial = false "
                "WHERE t._cartridge_source_pos IS NULL "
                "OR EXCLUDED._cartridge_source_pos > t._cartridge_source_pos")
        await conn.execute(
            "CREATE TEMP TABLE stage (_id text, name text, age integer, salary double precision,"
            " is_active boolean, created_at timestamptz, metadata jsonb, pos numeric)")

        async def one(docs: list[dict[str, Any]]) -> None:
            async with conn.transaction():
                await conn.copy_records_to_table("stage", records=hand_rows(docs),
                                                 columns=HAND_COLS)
                await conn.execute(sql)
                await conn.execute("TRUNCATE stage")

        await one(batches[0][:10])  # warm-up
        await conn.execute(f"TRUNCATE {table}")
        t0 = time.perf_counter()
        for b in batches:
            await one(b)
        t_ins = time.perf_counter() - t0
        t0 = time.perf_counter()
        for b in upserts:
            await one(b)
        t_up = time.perf_counter() - t0
    finally:
        with contextlib.suppress(Exception):
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()
    return t_ins, t_up


async def sweep(dsn: str, args: argparse.Namespace) -> None:
    """Where COPY + staging table starts to beat the single unnest statement."""
    print("batch size: upserts/s with unnest | with COPY + staging table (best of "
          f"{args.repeat}, {args.mode})")
    for size in (int(x) for x in args.sweep.split(",")):
        nb = max(2, 20_000 // size)
        first = list(chunks(documents(nb * size, 1, 1_700_000_000_000), size))
        second = list(chunks(documents(nb * size, 2, 1_700_000_001_000), size))
        best = {"unnest": 0.0, "copy": 0.0}
        for _ in range(args.repeat):
            for name, threshold in (("unnest", 10**9), ("copy", 0)):
                _, t_up = await run_sink(dsn, args.mode, first, second, None, threshold)
                best[name] = max(best[name], nb * size / t_up)
        print(f"{size:>6}: {best['unnest']:>9,.0f} | {best['copy']:>9,.0f}   "
              f"copy/unnest {best['copy'] / best['unnest']:.2f}", flush=True)


async def bench(dsn: str, args: argparse.Namespace) -> None:
    if args.kind == "patch":
        await bench_patches(dsn, args)
        return
    if args.sweep:
        await sweep(dsn, args)
        return
    n = args.batches * args.size
    first = documents(n, seed=1, ts=1_700_000_000_000)
    second = documents(n, seed=2, ts=1_700_000_001_000)
    batches = list(chunks(first, args.size))
    upserts = list(chunks(second, args.size))
    print(f"{args.batches} batches x {args.size} rows, mode={args.mode}, "
          f"best of {args.repeat}")
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        b_ins, b_up = await run_hand(dsn, batches, upserts, bare=True)
        h_ins, h_up = await run_hand(dsn, batches, upserts, bare=False)
        s_ins, s_up = await run_sink(dsn, args.mode, batches, upserts, args.profile)
        for name, t in (("hand_ins", h_ins), ("hand_up", h_up), ("sink_ins", s_ins),
                        ("sink_up", s_up), ("bare_ins", b_ins), ("bare_up", b_up)):
            best[name] = min(best.get(name, t), t)
    for kind in ("ins", "up"):
        hand, sink_ = n / best[f"hand_{kind}"], n / best[f"sink_{kind}"]
        label = "inserts" if kind == "ins" else "upserts"
        bare = n / best[f"bare_{kind}"]
        print(f"{label:8s} sink {sink_:>9,.0f} ev/s   hand-written {hand:>9,.0f} ev/s   "
              f"ratio {sink_ / hand:.2f}   (hand-written, data columns only: {bare:,.0f} ev/s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", help="PostgreSQL DSN (default: start a local stack)")
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--size", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mode", choices=("on_conflict", "merge"), default="on_conflict")
    ap.add_argument("--profile", help="write a pyinstrument HTML profile of the upserts here")
    ap.add_argument("--sweep", help="batch sizes (e.g. 100,1000,5000): compare the unnest "
                    "and the COPY paths instead")
    ap.add_argument("--kind", choices=("upsert", "patch"), default="upsert",
                    help="patch: scenario (d)'s partial updates on pre-loaded rows "
                    "(bench/bench_patch.py)")
    args = ap.parse_args()
    if args.dsn:
        asyncio.run(bench(args.dsn, args))
        return 0
    from sink.stack.local import LocalStack

    with tempfile.TemporaryDirectory(prefix="warp-bench-") as tmp:
        stack = LocalStack(Path(tmp))
        try:
            info = stack.up()
            asyncio.run(bench(info.pg_dsn, args))
        finally:
            stack.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
