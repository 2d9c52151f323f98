"""The chaos campaign: the real sink through Toxiproxy (tests/chaos/campaign.py) under
latency, bandwidth limits, resets mid-COPY and mid-COMMIT, black holes, outages and
SIGKILLs; every trial must end with the exact fold, exact ``_cartridge_version`` and no
dead letters. The suite runs CHAOS_TRIALS (default 2) trials; ``make chaos`` runs 50."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from tests.chaos.campaign import Env, chaos_config, run_trial, summary
from tests.support import produce, start_sink, stored_offsets, unique, workload

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = int(os.environ.get("CHAOS_TRIALS", "2"))
SEED = int(os.environ.get("CHAOS_SEED", "9000"))


async def test_the_sink_reaches_both_servers_only_through_the_proxies(
        chaos_env: Env, topic_factory, tmp_path: Path) -> None:
    """Without this, the campaign could pass by faulting connections the sink does not use
    (a proxy in front of Kafka's normal listener is left after the first metadata call)."""
    env = chaos_env
    topic = await topic_factory(partitions=3)
    db, group = unique("reach"), unique("reachg")
    from sink.tools.events import MongoEvents

    w = workload(MongoEvents(db, "users"), 600, 100, seed=5)
    cfg = chaos_config(tmp_path / "c.yaml", env, topic=topic, group=group, max_records=50)
    proc = await start_sink(cfg, log=tmp_path / "sink.log")
    try:
        await produce(env.bootstrap, topic, w.events[:300])
        assert await _progress_reaches(env, group, 300, 60), "the sink never applied"
        env.kafka.disable()  # Kafka unreachable through the proxy: nothing more is fetched
        await produce(env.bootstrap, topic, w.events[300:])
        await asyncio.sleep(4)
        assert await _progress(env, group) == 300
        env.kafka.enable()
        env.pg.disable()  # now PostgreSQL: fetched, never applied
        await asyncio.sleep(4)
        assert await _progress(env, group) == 300
        env.pg.enable()
        assert await _progress_reaches(env, group, 600, 60), "no recovery after the outages"
        log = (tmp_path / "sink.log").read_text()
        assert "transient failure, retrying" in log
    finally:
        env.toxi.reset()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 40) == 0


async def _progress(env: Env, group: str) -> int:
    return sum((await stored_offsets(env.dsn, group)).values())


async def _progress_reaches(env: Env, group: str, n: int, within: float) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if await _progress(env, group) >= n:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_chaos_campaign(chaos_env: Env) -> None:
    record_path = Path(os.environ.get("CHAOS_RECORD") or chaos_env.workdir / "trials.jsonl")
    _append(record_path, None)
    trials = []
    for i in range(TRIALS):
        trial = await run_trial(chaos_env, SEED + i)
        trials.append(trial)
        _append(record_path, json.dumps(trial.record(), default=str))
        print(f"trial {i + 1}/{TRIALS} seed={trial.seed}: {len(trial.faults)} faults, "
              f"{trial.kills} kills, {'ok' if trial.ok else 'FAILED'}", flush=True)
    text = summary(trials)
    print(f"\n{text}\nper-trial record: {record_path}; sink logs under {chaos_env.workdir}")
    assert all(t.ok for t in trials), text
    # The faults reached the sink (it met failures and retried them) while it was working.
    assert sum(t.retries_logged for t in trials) > 0, text
    faults = [f for t in trials for f in t.faults]
    assert sum(f.mid_stream for f in faults) >= 0.8 * len(faults), text


def _append(path: Path, line: str | None) -> None:
    """One trial's JSON line (None: start the file afresh)."""
    with open(path, "a" if line is not None else "w", encoding="utf-8") as out:
        if line is not None:
            out.write(line + "\n")
