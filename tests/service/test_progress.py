"""Progress of a catch-up, as a person sees it: one live line on a terminal (checked on a
real pseudo-terminal), ``progress`` summary lines at info without one, and no per-flush
lines at info."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sink.tools.events import MongoEvents
from tests.support import (
    produce,
    run_on_pty,
    stored_offsets,
    unique,
    workload,
    write_config,
)

pytestmark = pytest.mark.integration


async def _events(stack: Any, topic_factory: Any, n: int, *, bad: int = 0) -> tuple[str, str]:
    topic = await topic_factory(partitions=2)
    db = unique("prog")
    w = workload(MongoEvents(db, "people"), n, 200)
    events = list(w.events)
    for i in range(bad):  # not JSON: a decode-stage dead letter each
        events.insert(len(events) // 2 + i, (b'{"id": "x"}', b"\x00not json"))
    await produce(stack.bootstrap_servers, topic, events)
    return topic, db


async def test_catch_up_on_a_terminal_shows_one_live_line(
        stack: Any, topic_factory: Any, tmp_path: Path) -> None:
    n = 3000
    topic, _ = await _events(stack, topic_factory, n, bad=2)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra="  log_level: info\nbatch:\n  max_records: 200\n")
    cfg.write_text(cfg.read_text().replace("log_format: json", "log_format: console"))
    cmd = [sys.executable, "-m", "sink", "run", "--config", str(cfg), "--until-caught-up"]
    out = await asyncio.to_thread(run_on_pty, cmd)
    # tqdm redraws in place with carriage returns; the last drawing holds the final figures
    drawings = [d for d in re.split(r"[\r\n]", out) if "events ·" in d]
    assert drawings, out[-3000:]
    final = drawings[-1]
    total = n + 2
    assert f"{total}/{total} events" in final, final
    assert "dead letters 2" in final and "lag 0" in final and "ETA" in final, final
    assert "batch processed" not in out  # per-flush lines are debug now
    stored = await stored_offsets(stack.pg_dsn, group)
    assert sum(v for (t, _), v in stored.items() if t == topic) == total


async def test_catch_up_without_a_terminal_logs_summaries(
        stack: Any, topic_factory: Any, tmp_path: Path) -> None:
    n = 12000
    topic, _ = await _events(stack, topic_factory, n, bad=1)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra="  progress_interval_seconds: 0.3\nbatch:\n  max_records: 20\n")
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sink", "run", "--config", str(cfg), "--until-caught-up"],
        capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    summaries = [e for e in lines if e.get("event") == "progress"]
    final = [e for e in lines if e.get("event") == "progress final"]
    total = n + 1
    assert summaries, "no periodic summary while catching up"
    assert all(e["total"] == total and e["level"] == "info" for e in summaries)
    assert [e["applied"] for e in summaries] == sorted(e["applied"] for e in summaries)
    assert any(0 < e["applied"] < total for e in summaries)  # seen mid-way, not only at 0
    assert len(final) == 1 and final[0]["applied"] == total and final[0]["lag"] == 0
    assert final[0]["dead_letters"] == 1 and final[0]["events_per_second"] > 0
    assert not [e for e in lines if e.get("event") == "batch processed"]
    # far fewer lines than flushes: 12,001 events in flushes of 20
    assert len(summaries) < total / 20 / 4


async def test_workers_on_a_terminal_draw_one_line_for_the_group(
        stack: Any, topic_factory: Any, tmp_path: Path) -> None:
    """`run --workers 2 --until-caught-up` on a terminal: both workers drew a live line on
    the same terminal line, taking turns ("15771/15900" then "29871/30000": the second
    worker's total is what was left when it started), and each logged a `progress final`.
    Muting workers 1..N-1 is not enough: worker 0 may start after the others applied
    everything and draw "0/0 events". The fix needs one view of the group's start."""
    n = 6000
    topic, _ = await _events(stack, topic_factory, n)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra="  log_level: info\nbatch:\n  max_records: 200\n")
    cfg.write_text(cfg.read_text().replace("log_format: json", "log_format: console"))
    cmd = [sys.executable, "-m", "sink", "run", "--config", str(cfg), "--until-caught-up",
           "--workers", "2"]
    out = await asyncio.to_thread(run_on_pty, cmd)
    drawings = [d for d in re.split(r"[\r\n]", out) if "events ·" in d]
    assert drawings, out[-3000:]
    totals = {m.group(1) for d in drawings if (m := re.search(r"/(\d+) events", d))}
    assert totals == {str(n)}, totals
    assert f"{n}/{n} events" in drawings[-1]
    assert out.count("progress final") == 1, out[-3000:]
    stored = await stored_offsets(stack.pg_dsn, group)
    assert sum(v for (t, _), v in stored.items() if t == topic) == n
