"""SIGTERM is bounded by ``shutdown_timeout`` in every state (issue 12, item 8).

The service stops fetching, drains (applies and commits what it holds) with a deadline,
then cancels: the transaction in flight rolls back, the process exits 1 with the reason.
Tested with PostgreSQL frozen (SIGSTOP on the postmaster and every backend), with the
offsets row locked by another connection (the flush has written its rows and waits on
the offsets), and with PostgreSQL unreachable at start-up (the connect retry honours the
stop and the service never joins the group).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from sink.tools.events import MongoEvents, Oid
from tests.support import (
    produce,
    run_sink,
    start_sink,
    unique,
    wait_progress,
    write_config,
)

pytestmark = pytest.mark.integration

N = 30_000
TIMEOUT = 5  # shutdown_timeout in these tests
SLACK = 6  # "a few seconds": leaving the group, closing the clients, interpreter exit


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
    return out


@contextlib.asynccontextmanager
async def frozen_postgres(local_stack: Any) -> AsyncIterator[None]:
    """SIGSTOP the postmaster (no new backends) and then every child: connections stay
    open, nothing answers. SIGCONT on the way out, children first."""
    master = local_stack.postgres.pid()
    assert master is not None
    os.kill(master, signal.SIGSTOP)
    kids = _children(master)
    for pid in kids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        os.kill(master, signal.SIGCONT)


@contextlib.asynccontextmanager
async def locked_offsets(dsn: str) -> AsyncIterator[None]:
    """Another connection holds the offsets table: a flush writes its rows, then waits."""
    conn = await asyncpg.connect(dsn)
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(
            "LOCK TABLE cartridge_warp_metadata.kafka_offsets IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        await tx.rollback()
        await conn.close()


async def _setup(stack: Any, topic_factory: Any, tmp_path: Path) -> tuple[str, str, Path]:
    topic = await topic_factory(partitions=1)
    db, group = unique("stop"), unique("g")
    ev = MongoEvents(db, "users")
    events = [ev.insert({"_id": Oid(f"{i:024x}"), "n": i}) for i in range(N)]
    await produce(stack.bootstrap_servers, topic, events)
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra=f"batch:\n  max_records: 500\nshutdown_timeout: {TIMEOUT}\n")
    return db, group, cfg


async def _rows_and_offset(dsn: str, db: str, group: str) -> tuple[int, int]:
    """The table's rows and the group's stored offset, in one snapshot."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            f'SELECT (SELECT count(*) FROM "{db}".users) AS n, '
            "(SELECT coalesce(sum(next_offset), 0) FROM cartridge_warp_metadata.kafka_offsets "
            "WHERE group_id = $1) AS stored", group)
        assert row is not None
        return int(row["n"]), int(row["stored"])
    finally:
        await conn.close()


@pytest.mark.parametrize("fault", ["frozen", "locked"])
async def test_sigterm_with_postgres_stuck_mid_flush_exits_within_the_timeout(
    stack: Any, local_stack: Any, topic_factory: Any, tmp_path: Path, fault: str
) -> None:
    db, group, cfg = await _setup(stack, topic_factory, tmp_path)
    log = tmp_path / "sink.log"
    proc = await start_sink(cfg, log=log)
    try:
        seen = await wait_progress(stack.pg_dsn, group, 2_000, proc=proc)
        assert 0 < seen < N, f"the fault did not land mid-stream ({seen})"
        stuck = frozen_postgres(local_stack) if fault == "frozen" else locked_offsets(
            stack.pg_dsn)
        async with stuck:
            await asyncio.sleep(1.5)  # a flush is now waiting on PostgreSQL
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = await asyncio.wait_for(proc.wait(), TIMEOUT + 60)
            took = time.monotonic() - started
    finally:
        if proc.returncode is None:
            proc.kill()
    text = log.read_text(errors="replace")
    print(f"{fault}: exit {took:.1f}s after SIGTERM (shutdown_timeout {TIMEOUT}s)")
    assert took <= TIMEOUT + SLACK, f"exit took {took:.1f}s\n{text[-3000:]}"
    assert code == 1, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert "shutdown_timeout" in last and "not applied" in last, last
    # Nothing half-applied: the rows present are exactly those the stored offset covers.
    rows, stored = await _rows_and_offset(stack.pg_dsn, db, group)
    assert rows == stored and 0 < stored < N, (rows, stored)
    # And a restart picks up exactly there.
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-2000:]
    assert await _rows_and_offset(stack.pg_dsn, db, group) == (N, N)


async def test_sigterm_while_postgres_is_unreachable_at_start_up(
    stack: Any, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory(partitions=1)
    await produce(stack.bootstrap_servers, topic, [MongoEvents("x", "y").insert(
        {"_id": Oid("0" * 24), "n": 1})])
    dead_dsn = "postgresql://warp:warp-secret@127.0.0.1:9/warp"  # nothing listens on port 9
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers, dsn=dead_dsn,
                       topic=topic, group=group, extra=f"shutdown_timeout: {TIMEOUT}\n")
    log = tmp_path / "sink.log"
    proc = await start_sink(cfg, log=log)
    try:
        deadline = time.monotonic() + 60
        while "transient failure, retrying" not in log.read_text(errors="replace"):
            assert proc.returncode is None and time.monotonic() < deadline
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.wait_for(proc.wait(), 60)
        took = time.monotonic() - started
    finally:
        if proc.returncode is None:
            proc.kill()
    text = log.read_text(errors="replace")
    print(f"start-up: exit {took:.1f}s after SIGTERM")
    assert took <= SLACK, f"exit took {took:.1f}s\n{text[-3000:]}"
    assert code == 0, text[-3000:]
    assert "stopped before" in text
    # It never joined the group: nothing assigned, no member ever committed.
    assert "partitions assigned" not in text
    assert "warp-secret" not in text


async def test_sigterm_while_the_broker_is_down_exits_0_with_everything_applied(
    stack: Any, local_stack: Any, topic_factory: Any, tmp_path: Path
) -> None:
    """Everything read is applied; only the Kafka commit and leaving the group cannot
    finish. Bounded all the same, and exit 0: PostgreSQL holds every offset."""
    topic = await topic_factory(partitions=1)
    db, group = unique("stop"), unique("g")
    ev = MongoEvents(db, "users")
    await produce(stack.bootstrap_servers, topic,
                  [ev.insert({"_id": Oid(f"{i:024x}"), "n": i}) for i in range(500)])
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra=f"shutdown_timeout: {TIMEOUT}\n")
    log = tmp_path / "sink.log"
    proc = await start_sink(cfg, log=log)
    stopped = False
    try:
        assert await wait_progress(stack.pg_dsn, group, 500, proc=proc) == 500
        await local_stack.astop_kafka(kill=True)
        stopped = True
        await asyncio.sleep(1)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.wait_for(proc.wait(), TIMEOUT + 60)
        took = time.monotonic() - started
    finally:
        if proc.returncode is None:
            proc.kill()
        if stopped:
            await local_stack.astart_kafka()
    text = log.read_text(errors="replace")
    print(f"broker down: exit {took:.1f}s after SIGTERM (shutdown_timeout {TIMEOUT}s)")
    assert took <= TIMEOUT + SLACK, f"exit took {took:.1f}s\n{text[-3000:]}"
    assert code == 0, text[-3000:]
    assert await _rows_and_offset(stack.pg_dsn, db, group) == (500, 500)
