"""Delivery guarantees on real Kafka and PostgreSQL: poison records go to the DLQ and
nothing else does; restarts of PostgreSQL or the broker are ridden out; SIGTERM drains."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from sink.tools.events import MongoEvents
from tests.support import (
    add_age_check,
    assert_fold,
    committed_offsets,
    end_offsets,
    produce,
    read_topic,
    run_sink,
    start_sink,
    stored_offsets,
    table_rows,
    topic_exists,
    unique,
    wait_progress,
    workload,
    write_config,
)

pytestmark = pytest.mark.integration

SMALL_BATCHES = "batch:\n  max_records: 200\n  max_age_ms: 50\n"


def _headers(msg) -> dict[str, str]:
    return {k: v.decode() for k, v in msg.headers}


async def test_poison_records_go_to_the_dlq_and_nothing_else(
    stack, topic_factory, tmp_path: Path
) -> None:
    topic = await topic_factory(partitions=3)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    w = workload(ev, 10_000, 800, seed=5)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    first, rest = w.events[:2_000], w.events[2_000:]
    await produce(stack.bootstrap_servers, topic, first)
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-2000:]

    # The user adds a CHECK constraint; three later updates violate it.
    await add_age_check(stack.pg_dsn, db)
    live = [k for k, e in w.fold.items() if not e.deleted][:3]
    violating = [ev.update(k, {"age": 5000}) for k in live]
    garbage = [(ev.key(live[0]), b"\xff\xfe not json"), (b"{}", b'{"op": "c", "after": 12')]
    await produce(stack.bootstrap_servers, topic, rest + garbage + violating)

    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-2000:]

    assert_fold(await table_rows(stack.pg_dsn, db, "users"), w.fold)
    dlq = await read_topic(stack.bootstrap_servers, f"{group}.dlq")
    assert len(dlq) == 5
    by_code: dict[str, list] = {}
    for msg in dlq:
        h = _headers(msg)
        assert h["__connect.errors.topic"] == topic
        assert int(h["__connect.errors.offset"]) >= 0
        assert h["__connect.errors.exception.message"]
        assert h["__connect.errors.exception.class.name"]
        assert h["warp.sink.version"] and h["warp.timestamp"]
        by_code.setdefault(h["warp.error.code"], []).append(msg)
    assert len(by_code.pop("constraint_violation")) == 3
    assert sum(len(v) for v in by_code.values()) == 2  # the two undecodable messages
    for msg in dlq:
        h = _headers(msg)
        if h["warp.error.code"] == "constraint_violation":
            assert h["__connect.errors.stage"] == "TASK_PUT"
            assert (h["warp.schema"], h["warp.table"]) == (db, "users")
            assert msg.value in {v for _, v in violating}  # the original bytes
        else:
            assert h["__connect.errors.stage"] == "VALUE_CONVERTER"
            assert msg.value in {v for _, v in garbage}
    ends = await end_offsets(stack.bootstrap_servers, topic)
    assert await committed_offsets(stack.bootstrap_servers, group, topic) == ends


async def _ride_out(stack, topic_factory, tmp_path: Path, disrupt, *, pg: bool) -> None:
    topic = await topic_factory(partitions=3)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    w = workload(ev, 10_000, 1_000, seed=9)
    await produce(stack.bootstrap_servers, topic, w.events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group, extra=SMALL_BATCHES)
    proc = await start_sink(cfg, "--until-caught-up", log=tmp_path / "sink.log")
    try:
        seen = await wait_progress(stack.pg_dsn, group, 1_500, proc=proc)
        assert 0 < seen < len(w.events), f"disruption did not land mid-stream ({seen})"
        await disrupt()
        code = await asyncio.wait_for(proc.wait(), timeout=240)
    finally:
        if proc.returncode is None:
            proc.kill()
    log = (tmp_path / "sink.log").read_text(errors="replace")
    assert code == 0, log[-3000:]
    if pg:  # it did see the outage (aiokafka rides out a broker restart on its own)
        assert "transient failure, retrying" in log
    assert_fold(await table_rows(stack.pg_dsn, db, "users"), w.fold)
    assert not await topic_exists(stack.bootstrap_servers, f"{group}.dlq")


async def test_postgres_restart_mid_stream(stack, local_stack, topic_factory, tmp_path) -> None:
    async def disrupt() -> None:
        await local_stack.arestart_postgres(immediate=True)

    await _ride_out(stack, topic_factory, tmp_path, disrupt, pg=True)


async def test_broker_restart_mid_stream(stack, local_stack, topic_factory, tmp_path) -> None:
    async def disrupt() -> None:
        await local_stack.astop_kafka(kill=True)
        await asyncio.sleep(2)
        await local_stack.astart_kafka()

    await _ride_out(stack, topic_factory, tmp_path, disrupt, pg=False)


async def test_sigterm_drains_commits_and_leaves(stack, topic_factory, tmp_path) -> None:
    topic = await topic_factory(partitions=3)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    w = workload(ev, 10_000, 1_000, seed=3)
    await produce(stack.bootstrap_servers, topic, w.events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra=SMALL_BATCHES + "shutdown_timeout: 20\n")
    proc = await start_sink(cfg, log=tmp_path / "sink.log")
    try:
        await wait_progress(stack.pg_dsn, group, 1_000, proc=proc)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 0, (tmp_path / "sink.log").read_text(errors="replace")[-3000:]
    # What it applied is committed to Kafka too: PostgreSQL and the group agree.
    stored = await stored_offsets(stack.pg_dsn, group)
    committed = await committed_offsets(stack.bootstrap_servers, group, topic)
    assert {p: stored.get((topic, p)) for p in committed} == committed
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-2000:]
    assert_fold(await table_rows(stack.pg_dsn, db, "users"), w.fold)


async def test_retry_deadline_exits_1_with_the_reason(stack, topic_factory, tmp_path) -> None:
    topic = await topic_factory(partitions=1)
    dead_dsn = "postgresql://warp:warp-secret@127.0.0.1:9/warp"  # nothing listens on port 9
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers, dsn=dead_dsn,
                       topic=topic, group=unique("g"),
                       extra="errors:\n  retry_deadline_seconds: 3\n")
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("warp-sink: postgresql connect still failing after")
    assert "warp-secret" not in done.stderr


async def test_tolerance_none_stops_at_the_bad_record(stack, topic_factory, tmp_path) -> None:
    topic = await topic_factory(partitions=1)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    w = workload(ev, 300, 50, seed=2)
    await produce(stack.bootstrap_servers, topic, [*w.events, (b"{}", b"\x00garbage")])
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra="errors:\n  tolerance: none\n")
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert f"undecodable record at {topic}[0]@{len(w.events)}" in last, last
    assert not await topic_exists(stack.bootstrap_servers, f"{group}.dlq")
    # Nothing of the failing flush moved: the stored offset stops before the bad record.
    assert sum((await stored_offsets(stack.pg_dsn, group)).values()) <= len(w.events)
