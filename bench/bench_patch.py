"""Partial updates through the writer (``bench_write.py --kind patch``): scenario (d)'s
``updatedFields`` — ``age``, ``seq``, ``last_login`` and the dotted path ``metadata.plan`` —
on rows loaded before the clock starts, one batch of distinct keys per ``write_batch``.

Where the time goes is measured by wrapping asyncpg's ``execute`` and
``copy_records_to_table``: wall time inside them less the process CPU time spent inside
them is the wait for PostgreSQL (the event loop has nothing else to run); the CPU time
inside them is asyncpg encoding the parameters; the rest of the wall time is the sink's
Python (grouping, `patch_row`, adapting columns, SQL lookup). On a shared machine the
CPU time of this process and of the server's backends (read from ``/proc``) is the steadier
measure: µs of CPU a patch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from sink.postgres.connector import PostgreSQLDestinationConnector
from sink.records import Kind, Patch, Record

BASE = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
TS = 1_700_000_000_000


class Split:
    """Seconds spent awaiting asyncpg (wall and process CPU) while installed."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    @contextmanager
    def installed(self) -> Iterator[None]:
        cls = asyncpg.connection.Connection
        saved = {name: getattr(cls, name) for name in ("execute", "copy_records_to_table")}

        def timed(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def run(*args: Any, **kwargs: Any) -> Any:
                w, c = time.perf_counter(), time.process_time()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    self.wall += time.perf_counter() - w
                    self.cpu += time.process_time() - c
            return run

        for name, fn in saved.items():
            setattr(cls, name, timed(fn))
        try:
            yield
        finally:
            for name, fn in saved.items():
                setattr(cls, name, fn)


def _docs(n: int) -> list[dict[str, Any]]:
    # The columns the patches set exist before the clock starts (no DDL in the timed part).
    return [{"_id": f"{i:024x}", "name": f"User {i}", "age": 18 + i % 70, "salary": 1000.5 + i,
             "is_active": i % 5 != 0, "created_at": BASE + timedelta(seconds=i),
             "metadata": {"plan": "free", "features": ["sso", "audit"][: i % 3]}, "seq": i,
             "last_login": BASE} for i in range(n)]


def _patches(db: str, n: int) -> list[Record]:
    out = []
    for i in range(n):
        p = Patch(set={("age",): 18 + (i * 7) % 70, ("seq",): n + i, ("metadata", "plan"):
                       "upgraded", ("last_login",): BASE + timedelta(seconds=i * 13)})
        out.append(Record(db, "users", {"_id": f"{i:024x}"}, Kind.PATCH, "u", patch=p,
                          position=(TS + 1000, 1), offset=i, source_ts=BASE))
    return out


async def run_patches(dsn: str, n: int, size: int,
                      profile: str | None = None) -> dict[str, float]:
    """Load ``n`` rows, then time ``n`` patches in batches of ``size``: events/s and split."""
    db = f"bench_{uuid.uuid4().hex[:8]}"
    pg = PostgreSQLDestinationConnector(dsn, metadata_schema="bench_meta",
                                        min_connections=1, max_connections=2)
    await pg.connect()
    try:
        docs = _docs(n)
        for i in range(0, n, 5000):
            await pg.write_batch(db, [
                Record(db, "users", {"_id": d["_id"]}, Kind.UPSERT, "c", values=d,
                       position=(TS, 1), offset=i + j) for j, d in enumerate(docs[i:i + 5000])])
        # Warm-up: the patch statement of this shape prepared, on rows outside the timed set.
        await pg.write_batch(db, _patches(db, n)[:1])
        pats = _patches(db, n)
        batches = [pats[i:i + size] for i in range(0, n, size)]
        split = Split()
        async with pg.pool.acquire() as conn:  # the server's backends of this database
            pids = [r[0] for r in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
        server = _cpu(pids)
        profiler = None
        if profile:
            from pyinstrument import Profiler  # optional, not a project dependency
            profiler = Profiler(async_mode="enabled")
            profiler.start()
        with split.installed():
            w, c = time.perf_counter(), time.process_time()
            for b in batches:
                await pg.write_batch(db, b)
            wall, cpu = time.perf_counter() - w, time.process_time() - c
        server = _cpu(pids) - server
        if profiler is not None:
            profiler.stop()
            await asyncio.to_thread(Path(profile or "").write_text, profiler.output_html())
            print(profiler.output_text(unicode=False, color=False))
        async with pg.pool.acquire() as conn:
            got = await conn.fetchrow(
                f'SELECT count(*) AS n, min(_cartridge_version) AS v, '
                f"count(*) FILTER (WHERE metadata->>'plan' = 'upgraded') AS up, "
                f'sum(seq) AS seq FROM "{db}".users')
            assert (got["n"], got["v"], got["up"]) == (n, 2, n), dict(got)
            assert got["seq"] == sum(range(n, 2 * n)), dict(got)
            await conn.execute(f'DROP SCHEMA "{db}" CASCADE')
    finally:
        await pg.disconnect()
    return {"rate": n / wall, "wall": wall, "cpu": cpu, "pg": split.wall - split.cpu,
            "asyncpg": split.cpu, "python": wall - split.wall, "server": server,
            "us": (cpu + server) / n * 1e6}


def _cpu(pids: list[int]) -> float:
    """CPU seconds used so far by these PostgreSQL backends (0 when not on this machine):
    with the client's own CPU time, a measure the other processes of a shared machine
    do not disturb."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


async def bench_patches(dsn: str, args: argparse.Namespace) -> None:
    n = args.batches * args.size
    print(f"{args.batches} batches x {args.size} patches, best of {args.repeat} "
          "(seconds of the best run: wall = PostgreSQL wait + asyncpg encode + sink Python)")
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        r = await run_patches(dsn, n, args.size, args.profile)
        if r["rate"] >= best.get("rate", 0.0):
            best = r
    print(f"{best['rate']:>9,.0f} patches/s   wall {best['wall']:.3f} s = PostgreSQL "
          f"{best['pg']:.3f} + asyncpg {best['asyncpg']:.3f} + sink Python {best['python']:.3f}; "
          f"CPU {best['cpu']:.3f} s here + {best['server']:.3f} s PostgreSQL = {best['us']:.1f} "
          "µs a patch")
