"""Session fixture: the real Debezium PostgreSQL connector captured a known workload into the
session's Kafka, once, under every converter set-up (:data:`rig.SETUPS`)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from sink.stack.process import StackError
from tests.e2e.debezium import rig, workload
from tests.harness import Stack


async def _snapshot_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch("SELECT format('%I.%I', table_schema, table_name) FROM "
                                  "information_schema.tables WHERE table_schema = 'app' AND "
                                  "table_type = 'BASE TABLE'")
        return sum([int(await conn.fetchval(f"SELECT count(*) FROM {t[0]}")) for t in tables])
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def debezium_pg(stack: Stack) -> AsyncIterator[rig.Capture]:
    """Source PostgreSQL (logical) → Debezium in Kafka Connect → the session's Kafka."""
    root = Path(tempfile.mkdtemp(prefix="warp-dbz-"))
    source = rig.SourcePostgres(root / "pg")
    connect = rig.Connect(root / "connect")
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    try:
        try:
            dsn = await source.up()
            run = uuid.uuid4().hex[:8]
            prefixes = {s: f"dbz{run}_{s}" for s in rig.SETUPS}
            cmd = connect.command(stack.bootstrap_servers, source.port(), prefixes)
        except (StackError, rig.RigUnavailable) as exc:
            pytest.skip(f"the real-connector suite needs Java, Maven and PostgreSQL: {exc}")
        seconds["source_up"] = time.monotonic() - t0
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(workload.SCHEMA_SQL)
            for sql in workload.SNAPSHOT_SQL:
                await conn.execute(sql)
        finally:
            await conn.close()
        t = time.monotonic()
        connect.start(cmd)
        await connect.wait_running([f"pg-{s}" for s in prefixes])
        rows = await _snapshot_rows(dsn)
        await asyncio.gather(*(rig.wait_messages(stack.bootstrap_servers, p, rows, 180)
                               for p in prefixes.values()))
        seconds["connect_to_snapshot"] = time.monotonic() - t
        t = time.monotonic()
        steps = await rig.run_workload(dsn, workload.WORKLOAD)
        await rig.drain(dsn, stack.bootstrap_servers, list(prefixes.values()),
                        "INSERT INTO app.e2e_marker VALUES (1, 'workload done')", "e2e_marker")
        seconds["workload_to_drained"] = time.monotonic() - t
        # Stop Connect now: the comparison reads a source that no longer changes.
        connect.stop()
        seconds["total"] = time.monotonic() - t0
        yield rig.Capture(dsn, stack.bootstrap_servers, prefixes, steps, connect.log, seconds)
    finally:
        rig.stop_quietly(connect, source)
        shutil.rmtree(root, ignore_errors=True)
