"""Operational PostgreSQL errors never dead-letter good records (issue 12 item 5).

Each test runs the real `warp-sink run` process, applies a first part of a MongoDB stream,
then breaks PostgreSQL in a way that has nothing to do with the records (read-only after a
failover, a revoked grant, a statement timeout behind another session's lock), produces
the rest, and checks: nothing dead-lettered, no offset moved while the fault lasted, and
every record applied once the fault is lifted."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from sink.tools.events import MongoEvents
from tests.support import (
    assert_fold,
    produce,
    run_sink,
    start_sink,
    table_rows,
    topic_exists,
    unique,
    workload,
    write_config,
)

pytestmark = pytest.mark.integration

BATCHES = "batch:\n  max_records: 100\n  max_age_ms: 50\nshutdown_timeout: 20\n"


@dataclass
class Role:
    name: str
    dsn: str


@pytest.fixture
async def sink_role(stack: Any) -> AsyncIterator[Role]:
    """A non-superuser login role for the sink (CREATE on the database, nothing else)."""
    name = f"warp_r_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.pg_dsn)
    db = await admin.fetchval("SELECT current_database()")
    await admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'role-pw'")
    await admin.execute(f'GRANT CREATE ON DATABASE "{db}" TO {name}')
    parts = urlsplit(stack.pg_dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    dsn = urlunsplit((parts.scheme, f"{name}:role-pw@{host}", parts.path, parts.query, ""))
    try:
        yield Role(name, dsn)
    finally:
        await admin.execute(f"DROP OWNED BY {name} CASCADE")
        await admin.execute(f"DROP ROLE {name}")
        await admin.close()


async def _offsets(dsn: str, meta: str, group: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(
            f'SELECT coalesce(sum(next_offset), 0) FROM "{meta}".kafka_offsets '
            "WHERE group_id = $1", group) or 0)
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


async def _until(dsn: str, meta: str, group: str, n: int, proc: Any, within: float = 120) -> int:
    deadline = asyncio.get_running_loop().time() + within
    seen = 0
    while asyncio.get_running_loop().time() < deadline and proc.returncode is None:
        seen = await _offsets(dsn, meta, group)
        if seen >= n:
            break
        await asyncio.sleep(0.1)
    return seen


@dataclass
class Stream:
    topic: str
    group: str
    meta: str
    db: str
    cfg: Path
    log: Path
    first: list[tuple[bytes, bytes | None]]
    rest: list[tuple[bytes, bytes | None]]
    fold: Any


async def _stream(stack: Any, topic_factory: Any, tmp_path: Path, dsn: str,
                  extra: str = "") -> Stream:
    topic = await topic_factory(partitions=2)
    db, group, meta = unique("shop"), unique("g"), unique("meta")
    ev = MongoEvents(db, "users")
    w = workload(ev, 1_200, 150, seed=12)
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers, dsn=dsn,
                       topic=topic, group=group, extra=BATCHES + extra)
    cfg.write_text(cfg.read_text().replace('"cartridge_warp_metadata"', f'"{meta}"'))
    return Stream(topic, group, meta, db, cfg, tmp_path / "sink.log", w.events[:400],
                  w.events[400:], w.fold)


async def _started(stack: Any, s: Stream, admin_dsn: str) -> Any:
    """The sink running with the first part of the stream applied."""
    await produce(stack.bootstrap_servers, s.topic, s.first)
    proc = await start_sink(s.cfg, log=s.log)
    seen = await _until(admin_dsn, s.meta, s.group, len(s.first), proc)
    assert seen == len(s.first), s.log.read_text(errors="replace")[-3000:]
    return proc


async def _held(stack: Any, s: Stream, admin_dsn: str, proc: Any, code: str) -> None:
    """While the fault lasts: the rest is produced, retried (the log says why), nothing
    dead-lettered, no offset moved."""
    await produce(stack.bootstrap_servers, s.topic, s.rest)
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        text = s.log.read_text(errors="replace")
        if "transient failure, retrying" in text and code in text:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"no retry of {code}: {s.log.read_text(errors='replace')[-3000:]}")
    assert await _offsets(admin_dsn, s.meta, s.group) == len(s.first)
    assert not await topic_exists(stack.bootstrap_servers, f"{s.group}.dlq")


async def _finished(stack: Any, s: Stream, admin_dsn: str, proc: Any) -> None:
    """After the fault is lifted: everything applied, exit 0 on SIGTERM, no dead letter."""
    total = len(s.first) + len(s.rest)
    try:
        seen = await _until(admin_dsn, s.meta, s.group, total, proc)
        assert seen == total, s.log.read_text(errors="replace")[-3000:]
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=40)
    finally:
        if proc.returncode is None:
            proc.kill()
    log = s.log.read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert "record dead-lettered" not in log
    assert not await topic_exists(stack.bootstrap_servers, f"{s.group}.dlq")
    assert_fold(await table_rows(admin_dsn, s.db, "users"), s.fold)


async def test_read_only_database_is_retried_not_dead_lettered(
    stack, topic_factory, tmp_path: Path
) -> None:
    s = await _stream(stack, topic_factory, tmp_path, stack.pg_dsn)
    proc = await _started(stack, s, stack.pg_dsn)
    # As after a failover to a standby: every new transaction is read-only.
    admin = await asyncpg.connect(stack.pg_dsn,
                                  server_settings={"default_transaction_read_only": "off"})
    try:
        try:
            await admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            await admin.execute("SELECT pg_reload_conf()")
            await _held(stack, s, stack.pg_dsn, proc, "read-only")
        finally:
            await admin.execute("ALTER SYSTEM RESET default_transaction_read_only")
            await admin.execute("SELECT pg_reload_conf()")
    finally:
        await admin.close()
    await _finished(stack, s, stack.pg_dsn, proc)


async def test_revoked_grant_is_retried_then_stops_naming_it(
    stack, topic_factory, tmp_path: Path, sink_role: Role
) -> None:
    s = await _stream(stack, topic_factory, tmp_path, sink_role.dsn,
                      "errors:\n  retry_deadline_seconds: 8\n")
    proc = await _started(stack, s, stack.pg_dsn)
    admin = await asyncpg.connect(stack.pg_dsn)
    try:
        await admin.execute(f'REVOKE INSERT, UPDATE ON "{s.db}".users FROM {sink_role.name}')
        try:
            await _held(stack, s, stack.pg_dsn, proc, "permission denied")
            # A person must act: past the retry deadline the service stops, exit 1, saying what.
            code = await asyncio.wait_for(proc.wait(), timeout=60)
        finally:
            if proc.returncode is None:
                proc.kill()
        log = s.log.read_text(errors="replace")
        assert code == 1, log[-3000:]
        last = log.strip().splitlines()[-1]
        assert last.startswith("warp-sink: apply still failing after"), last
        assert "lacks a privilege" in last and "permission denied for table users" in last, last
        assert "role-pw" not in log
        assert await _offsets(stack.pg_dsn, s.meta, s.group) == len(s.first)
        assert not await topic_exists(stack.bootstrap_servers, f"{s.group}.dlq")
        await admin.execute(f'GRANT INSERT, UPDATE ON "{s.db}".users TO {sink_role.name}')
    finally:
        await admin.close()
    done = await asyncio.to_thread(run_sink, s.cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-3000:]
    assert await _offsets(stack.pg_dsn, s.meta, s.group) == len(s.first) + len(s.rest)
    assert not await topic_exists(stack.bootstrap_servers, f"{s.group}.dlq")
    assert_fold(await table_rows(stack.pg_dsn, s.db, "users"), s.fold)


async def test_statement_timeout_is_retried_not_dead_lettered(
    stack, topic_factory, tmp_path: Path, sink_role: Role
) -> None:
    admin = await asyncpg.connect(stack.pg_dsn)
    try:
        await admin.execute(f"ALTER ROLE {sink_role.name} SET statement_timeout = '300ms'")
        s = await _stream(stack, topic_factory, tmp_path, sink_role.dsn)
        proc = await _started(stack, s, stack.pg_dsn)
        # Another session holds a lock that blocks writes to the table for a while.
        async with admin.transaction():
            await admin.execute(f'LOCK TABLE "{s.db}".users IN EXCLUSIVE MODE')
            await _held(stack, s, stack.pg_dsn, proc, "statement timeout")
    finally:
        await admin.close()
    await _finished(stack, s, stack.pg_dsn, proc)


async def test_start_on_a_read_only_database_waits_for_it(
    stack, topic_factory, tmp_path: Path
) -> None:
    """Started against a read-only database (a standby), the sink cannot create its
    metadata schema: it retries until the database takes writes, then applies everything."""
    s = await _stream(stack, topic_factory, tmp_path, stack.pg_dsn)
    await produce(stack.bootstrap_servers, s.topic, s.first + s.rest)
    admin = await asyncpg.connect(stack.pg_dsn,
                                  server_settings={"default_transaction_read_only": "off"})
    try:
        await admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        await admin.execute("SELECT pg_reload_conf()")
        try:
            proc = await start_sink(s.cfg, log=s.log)
            deadline = asyncio.get_running_loop().time() + 60
            while asyncio.get_running_loop().time() < deadline and proc.returncode is None:
                text = s.log.read_text(errors="replace")
                if "transient failure, retrying" in text and "read-only" in text:
                    break
                await asyncio.sleep(0.2)
            assert proc.returncode is None, s.log.read_text(errors="replace")[-3000:]
            assert await _offsets(stack.pg_dsn, s.meta, s.group) == 0
        finally:
            await admin.execute("ALTER SYSTEM RESET default_transaction_read_only")
            await admin.execute("SELECT pg_reload_conf()")
    finally:
        await admin.close()
    await _finished(stack, s, stack.pg_dsn, proc)
