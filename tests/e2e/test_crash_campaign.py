"""Crash campaign: SIGKILL the sink at a random instant of a 20,000-event stream, restart
it, and check the tables equal the fold with exact versions. The suite runs a short
campaign; `make crash-campaign` runs WARP_CRASH_TRIALS (default 50) trials."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

import asyncpg
import pytest

from sink.tools.events import MongoEvents
from tests.support import (
    assert_fold,
    produce,
    run_sink,
    start_sink,
    stored_offsets,
    table_rows,
    unique,
    wait_progress,
    workload,
    write_config,
)

pytestmark = pytest.mark.integration

TRIALS = int(os.environ.get("WARP_CRASH_TRIALS", "3"))


@pytest.mark.slow
async def test_crash_campaign(stack, topic_factory, tmp_path: Path) -> None:
    topic = await topic_factory(partitions=3)
    db = unique("crash")
    ev = MongoEvents(db, "users")
    w = workload(ev, 20_000, 2_000, seed=77)
    await produce(stack.bootstrap_servers, topic, w.events)
    rng = random.Random(int(os.environ.get("WARP_CRASH_SEED", "1234")))
    mid_stream = 0
    for trial in range(TRIALS):
        conn = await asyncpg.connect(stack.pg_dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{db}" CASCADE')
        finally:
            await conn.close()
        group = unique(f"crash{trial}")
        cfg = write_config(tmp_path / f"c{trial}.yaml", bootstrap=stack.bootstrap_servers,
                           dsn=stack.pg_dsn, topic=topic, group=group,
                           extra=f"batch:\n  max_records: {rng.choice([50, 200, 1000])}\n"
                                 "  max_age_ms: 50\n")
        proc = await start_sink(cfg, "--until-caught-up")
        # A random instant of the stream: once a random share of it is committed, plus a
        # random few milliseconds, so kills also land mid-flush and between flushes.
        await wait_progress(stack.pg_dsn, group, rng.randrange(1, len(w.events)), proc=proc)
        await asyncio.sleep(rng.uniform(0, 0.05))
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        progressed = sum((await stored_offsets(stack.pg_dsn, group)).values())
        if 0 < progressed < len(w.events):
            mid_stream += 1
        done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
        assert done.returncode == 0, (trial, done.stderr[-2000:])
        assert_fold(await table_rows(stack.pg_dsn, db, "users"), w.fold)
        # One line per trial: a long recorded run that is cut short still tells how far
        # it got with every trial exact.
        print(f"crash trial {trial + 1}/{TRIALS}: killed at {progressed} of "
              f"{len(w.events)} applied, exact", flush=True)
    print(f"crash campaign: {TRIALS} trials, {mid_stream} killed mid-stream, all exact")
    assert mid_stream >= TRIALS * 0.8, f"only {mid_stream} kills landed mid-stream"
