"""The walking skeleton end to end: real Kafka, real PostgreSQL, the real `warp-sink run`
process. Tables must equal the fold of the events; offsets must reach the end."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest

from sink.tools.events import MongoEvents
from tests.support import (
    assert_fold,
    committed_offsets,
    end_offsets,
    produce,
    run_sink,
    sink_cmd,
    table_rows,
    unique,
    workload,
    write_config,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
async def test_10k_events_fold_and_offsets(stack, topic_factory, tmp_path: Path,
                                           event_loop: str) -> None:
    topic = await topic_factory(partitions=3)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    w = workload(ev, 10_000, 1_000, seed=11)
    assert len(w.events) >= 10_000
    assert any(v is None for _, v in w.events), "the workload has tombstones"
    await produce(stack.bootstrap_servers, topic, w.events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)

    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up",
                                   "--event-loop", event_loop)
    assert done.returncode == 0, done.stderr[-3000:]

    assert_fold(await table_rows(stack.pg_dsn, db, "users"), w.fold)
    ends = await end_offsets(stack.bootstrap_servers, topic)
    assert sum(ends.values()) == len(w.events)
    assert await committed_offsets(stack.bootstrap_servers, group, topic) == ends
    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        stored = await conn.fetch(
            "SELECT partition, next_offset FROM cartridge_warp_metadata.kafka_offsets "
            "WHERE group_id = $1 AND topic = $2", group, topic)
    finally:
        await conn.close()
    assert {r["partition"]: r["next_offset"] for r in stored} == ends


async def test_sigkill_mid_stream_then_restart(stack, topic_factory, tmp_path: Path) -> None:
    topic = await topic_factory(partitions=3)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    w = workload(ev, 10_000, 1_000, seed=23)
    await produce(stack.bootstrap_servers, topic, w.events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra="batch:\n  max_records: 150\n  max_age_ms: 50\n")

    proc = await asyncio.create_subprocess_exec(
        *sink_cmd(cfg), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Kill once the sink has committed some, but not all, of the stream.
        deadline = time.monotonic() + 120
        progressed = 0
        conn = await asyncpg.connect(stack.pg_dsn)
        try:
            while time.monotonic() < deadline and proc.returncode is None:
                try:
                    progressed = await conn.fetchval(
                        "SELECT coalesce(sum(next_offset), 0) FROM "
                        "cartridge_warp_metadata.kafka_offsets WHERE group_id = $1", group) or 0
                except asyncpg.UndefinedTableError:
                    progressed = 0  # the sink has not created its metadata schema yet
                if progressed >= 2_000:
                    break
                await asyncio.sleep(0.05)
        finally:
            await conn.close()
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert 0 < progressed < len(w.events), f"kill did not land mid-stream ({progressed})"

    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-3000:]
    assert_fold(await table_rows(stack.pg_dsn, db, "users"), w.fold)
    ends = await end_offsets(stack.bootstrap_servers, topic)
    assert await committed_offsets(stack.bootstrap_servers, group, topic) == ends
