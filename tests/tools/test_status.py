"""``warp-sink status`` against a running group of two real sink processes with a dead
letter: members and their partitions, offsets, lag, flush age, dead letters per code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete

from sink.tools.events import MongoEvents
from tests.config.runs import free_port
from tests.support import produce, start_sink, unique, wait_progress, workload, write_config

pytestmark = pytest.mark.integration


def _status(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sink", "status", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=60, check=False)


async def _wait_members(cfg: Path, n: int, within: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    doc: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        proc = await asyncio.to_thread(_status, cfg, "--json")
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        if doc["state"] == "Stable" and len(doc["members"]) == n and \
                all(m["partitions"] for m in doc["members"]):
            return doc
        await asyncio.sleep(0.5)
    raise AssertionError(f"the group never had {n} members with partitions: {doc}")


async def test_status_of_a_running_group_with_two_members_and_a_dead_letter(
        stack: Any, topic_factory: Any, tmp_path: Path) -> None:
    topic = await topic_factory(partitions=2)
    group = unique("g")
    events = list(workload(MongoEvents(unique("st"), "people"), 400, 50).events)
    events.insert(100, (b'{"id": "x"}', b"\x00not json"))  # one decode-stage dead letter
    await produce(stack.bootstrap_servers, topic, events)
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    procs = [await start_sink(cfg, log=tmp_path / f"sink{i}.log") for i in range(2)]
    try:
        assert await wait_progress(stack.pg_dsn, group, len(events), within=120) == len(events)
        doc = await _wait_members(cfg, 2)

        assert doc["group_id"] == group
        owned = sorted(p for m in doc["members"] for p in m["partitions"])
        assert owned == [f"{topic}[0]", f"{topic}[1]"]  # each partition has one owner
        assert all(m["client_id"] and m["host"] for m in doc["members"])
        parts = {p["partition"]: p for p in doc["partitions"]}
        assert sorted(parts) == [0, 1]
        assert sum(p["end"] for p in parts.values()) == len(events)
        for p in parts.values():
            assert p["stored"] == p["end"] and p["lag"] == 0
            assert p["member"] is not None
            assert p["last_flush_age_seconds"] is not None and \
                0 <= p["last_flush_age_seconds"] < 300
        assert doc["dead_letters_last_hour"] == {"bad_json": 1}, doc["dead_letters_last_hour"]

        text = await asyncio.to_thread(_status, cfg)
        assert text.returncode == 0, text.stderr
        out = text.stdout
        assert f"group {group}: Stable, 2 member(s)" in out
        assert "MEMBER" in out and "LAST FLUSH" in out
        assert f"dead letters in the last hour ({group}.dlq): 1 (bad_json 1)" in out

        # --watch refreshes and adds events/s from the stored offsets' change
        watch = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sink", "status", "--config", str(cfg), "--watch",
            "--interval", "0.5", "--json", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        assert watch.stdout is not None
        docs = [json.loads(await asyncio.wait_for(watch.stdout.readline(), 30))
                for _ in range(2)]
        watch.terminate()
        await watch.wait()
        assert docs[0]["events_per_second"] is None and docs[1]["events_per_second"] == 0
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        for p in procs:
            await asyncio.wait_for(p.wait(), 60)


async def test_lag_of_a_group_that_never_ran_counts_from_the_log_start(
    stack: Any, topic_factory: Any, tmp_path: Path
) -> None:
    """Retention deleted the topic's first 60 messages; a new group (nothing stored,
    nothing committed) has 40 to read, not 100: status counted the lag from offset 0."""
    topic = await topic_factory(partitions=1)
    await produce(stack.bootstrap_servers, topic,
                  [(b'{"id": "1"}', b'{"ts_ms": 1}') for _ in range(100)])
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(60)})
    finally:
        await admin.close()
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=unique("never-ran"))
    proc = await asyncio.to_thread(_status, cfg, "--json")
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)["partitions"]
    assert (row["stored"], row["committed"], row["end"]) == (None, None, 100)
    assert row["lag"] == 40


async def test_watch_outlives_an_unreachable_postgresql_and_stops_on_sigint(
    stack: Any, topic_factory: Any, tmp_path: Path
) -> None:
    """`status --watch` is left running on a screen: a PostgreSQL (or Kafka) restart must
    not end it. It ended at the first failed refresh with exit 1."""
    topic = await topic_factory(partitions=1)
    dead = f"postgresql://warp@127.0.0.1:{free_port()}/warp"  # nothing listens there
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers, dsn=dead,
                       topic=topic, group=unique("watch"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sink", "status", "--config", str(cfg), "--watch",
        "--interval", "0.5", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        while sum("cannot connect to PostgreSQL" in line for line in lines) < 3:
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, f"status --watch ended: {lines}"
            lines.append(line.decode())
        assert proc.returncode is None
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
    rest = (await proc.stderr.read()).decode()
    assert "Traceback" not in "".join(lines) + rest
    assert all("retrying every 0.5s" in line for line in lines if "cannot connect" in line)


def test_interval_must_be_positive(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", bootstrap="127.0.0.1:9", dsn="postgresql://h/d",
                       topic="t", group="g")
    for bad in ("0", "-1", "nan"):
        done = _status(cfg, "--watch", "--interval", bad)
        assert done.returncode == 2 and "--interval" in done.stderr, (bad, done.stderr)
