"""Several sink processes in one consumer group: partitions move between members
(a SIGKILLed one, a late joiner) and the tables still equal the fold, exactly."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from sink.tools.events import MongoEvents
from tests.support import (
    assert_fold,
    end_offsets,
    produce,
    start_sink,
    stored_offsets,
    table_rows,
    unique,
    wait_progress,
    workload,
    write_config,
)

pytestmark = pytest.mark.integration

GROUP_TUNING = (
    "batch:\n  max_records: 200\n  max_age_ms: 50\n"
    "shutdown_timeout: 15\n"
)


async def test_three_members_one_killed_a_fourth_joins(stack, topic_factory, tmp_path) -> None:
    topic = await topic_factory(partitions=6)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    w = workload(ev, 20_000, 2_000, seed=31)
    await produce(stack.bootstrap_servers, topic, w.events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group, extra=GROUP_TUNING)
    # session_timeout_ms: the broker's minimum, so the killed member's partitions move soon.
    text = cfg.read_text().replace('auto_offset_reset: "earliest"',
                                   'auto_offset_reset: "earliest"\n  session_timeout_ms: 6000')
    cfg.write_text(text)
    procs = [await start_sink(cfg, log=tmp_path / f"sink{i}.log") for i in range(3)]
    try:
        seen = await wait_progress(stack.pg_dsn, group, 4_000)
        assert seen < len(w.events), "the kill did not land mid-stream"
        procs[1].send_signal(signal.SIGKILL)
        await procs[1].wait()
        procs.append(await start_sink(cfg, log=tmp_path / "sink3.log"))
        total = len(w.events)
        seen = await wait_progress(stack.pg_dsn, group, total, within=180)
        assert seen == total, f"only {seen} of {total} offsets applied"
    finally:
        for p in procs:
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), timeout=30)
            except TimeoutError:
                p.kill()
    for i, p in enumerate(procs):
        if i != 1:
            log = (tmp_path / f"sink{i}.log").read_text(errors="replace")
            assert p.returncode == 0, log[-2000:]
    assert_fold(await table_rows(stack.pg_dsn, db, "users"), w.fold)
    ends = await end_offsets(stack.bootstrap_servers, topic)
    stored = await stored_offsets(stack.pg_dsn, group)
    assert {p: stored.get((topic, p)) for p in ends} == ends  # no gaps, nothing past the end


async def test_workers_flag_runs_a_group_of_processes(stack, topic_factory, tmp_path) -> None:
    topic = await topic_factory(partitions=4)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    w = workload(ev, 6_000, 600, seed=37)
    await produce(stack.bootstrap_servers, topic, w.events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group, extra=GROUP_TUNING)
    proc = await start_sink(cfg, "--until-caught-up", "--workers", "2",
                            log=tmp_path / "workers.log")
    try:
        code = await asyncio.wait_for(proc.wait(), timeout=240)
    finally:
        if proc.returncode is None:
            proc.kill()
    log = (tmp_path / "workers.log").read_text(errors="replace")
    assert code == 0, log[-2000:]
    assert log.count('"workers started"') == 1 and log.count('"partitions assigned"') >= 2
    assert_fold(await table_rows(stack.pg_dsn, db, "users"), w.fold)
    # One view for the group (the parent's), not one per worker: a single final figure,
    # the whole stream, counted from the start the group had before any worker ran.
    finals = [json.loads(line) for line in log.splitlines() if '"progress final"' in line]
    assert len(finals) == 1, finals
    assert finals[0]["applied"] == finals[0]["total"] == len(w.events)
