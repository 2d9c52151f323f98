"""Session fixtures: the real Debezium PostgreSQL connector (and the MySQL connector on a
MariaDB source) captured a known workload into the session's Kafka, once, under every
converter set-up (:data:`rig.SETUPS`, :data:`mariadb_rig.SETUPS`)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from sink.stack.process import StackError
from tests.e2e.debezium import mariadb_rig, mariadb_server, mariadb_workload, rig, workload
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


def unavailable(exc: Exception) -> None:
    """Skip the MariaDB suite on a machine without its tools, but fail under ``CI=true``:
    a CI machine without them is a broken set-up (scripts/bootstrap.sh installs them)."""
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true and the MariaDB-source suite cannot run: {exc}") from exc
    pytest.skip(f"the MariaDB-source suite needs mariadb-server, Java and Maven: {exc}")


def _errors(log: Path) -> str:
    """Kafka Connect's ERROR lines and their causes: a failed snapshot logs its reason once,
    hundreds of lines before the tail."""
    text = log.read_text(errors="replace").splitlines()
    lines = [ln[:400] for i, ln in enumerate(text)
             if " ERROR " in ln or ln.startswith("Caused by:")
             or any(x.startswith("Caused by: java.lang") for x in text[max(0, i - 5):i])]
    return "Kafka Connect's errors:\n" + "\n".join(lines[:40])


async def _wait_snapshot(connect: mariadb_rig.MariaDBConnect, bootstrap: str,
                         prefixes: dict[str, str], rows: int, within: float = 120) -> None:
    """Until every prefix holds the snapshot's rows; a connector task that failed meanwhile
    fails it at once rather than after the timeout."""
    waits = asyncio.gather(*(rig.wait_messages(bootstrap, p, rows, within)
                             for p in prefixes.values()))
    try:
        while not waits.done():
            for s in prefixes:
                st = await asyncio.to_thread(connect.status, f"mariadb-{s}") or {}
                if any(t.get("state") == "FAILED" for t in st.get("tasks") or []):
                    raise RuntimeError(f"connector mariadb-{s} FAILED during the snapshot")
            await asyncio.wait([waits], timeout=1.0)
        await waits
    finally:
        waits.cancel()


def _mariadb_run(server: mariadb_server.MariaDBServer, statements: list[str]) -> None:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def _mariadb_rows(server: mariadb_server.MariaDBServer) -> int:
    """Rows in the source's tables: the messages the snapshot sends."""
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                        "TABLE_SCHEMA = %s", (mariadb_server.DATABASE,))
            total = 0
            for (table,) in cur.fetchall():
                cur.execute(f"SELECT count(*) FROM `{mariadb_server.DATABASE}`.`{table}`")
                total += int(cur.fetchone()[0])
            return total
    finally:
        conn.close()


def _mariadb_workload(server: mariadb_server.MariaDBServer) -> list[dict[str, Any]]:
    """Each step in one transaction."""
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            for _label, stmts in mariadb_workload.WORKLOAD:
                cur.execute("START TRANSACTION")
                for sql in stmts:
                    cur.execute(sql)
                cur.execute("COMMIT")
    finally:
        conn.close()
    return [{"step": label, "ok": True} for label, _ in mariadb_workload.WORKLOAD]


# Module scope: only test_mariadb_source uses it, and its mariadbd is stopped when that
# module is done rather than idling through the rest of the session.
@pytest.fixture(scope="module")
async def debezium_mariadb(stack: Stack) -> AsyncIterator[rig.Capture]:
    """Source MariaDB (row binlog) → Debezium in Kafka Connect → the session's Kafka.

    ``Capture.source_dsn`` is the MariaDB server's port (as text), for
    :func:`mariadb_compare.compare_mariadb`; the server runs until the module is done."""
    root = Path(tempfile.mkdtemp(prefix="warp-dbz-mariadb-"))
    server = mariadb_server.MariaDBServer(root / "mariadb")
    connect = mariadb_rig.MariaDBConnect(root / "connect")
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    atexit.register(server.stop)  # also when the session is interrupted
    try:
        try:
            server.start()
            run = uuid.uuid4().hex[:8]
            prefixes = {s: f"dbzm{run}_{s}" for s in mariadb_rig.SETUPS}
            cmd = connect.command(stack.bootstrap_servers, server.port, prefixes)
        except (mariadb_server.MariaDBUnavailable, StackError, rig.RigUnavailable) as exc:
            unavailable(exc)
        seconds["source_up"] = time.monotonic() - t0
        _mariadb_run(server, [*mariadb_workload.SCHEMA_SQL, *mariadb_workload.SNAPSHOT_SQL])
        t = time.monotonic()
        connect.start(cmd)
        await connect.wait_running([f"mariadb-{s}" for s in prefixes])
        rows = await asyncio.to_thread(_mariadb_rows, server)
        try:
            await _wait_snapshot(connect, stack.bootstrap_servers, prefixes, rows)
            seconds["connect_to_snapshot"] = time.monotonic() - t
            t = time.monotonic()
            steps = await asyncio.to_thread(_mariadb_workload, server)
            await mariadb_rig.drain(
                stack.bootstrap_servers, list(prefixes.values()),
                lambda: _mariadb_run(server, ["INSERT INTO app.e2e_marker VALUES (1, 'done')"]),
                "e2e_marker")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{_errors(connect.log)}") from None
        seconds["workload_to_drained"] = time.monotonic() - t
        connect.stop()
        seconds["total"] = time.monotonic() - t0
        yield rig.Capture(str(server.port), stack.bootstrap_servers, prefixes, steps,
                          connect.log, seconds)
    finally:
        with contextlib.suppress(Exception):
            connect.stop()
        with contextlib.suppress(Exception):
            server.stop()
        atexit.unregister(server.stop)
        shutil.rmtree(root, ignore_errors=True)
