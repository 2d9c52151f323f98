"""Outages seen from outside the process: readiness follows the destination (issue 12,
item 9), and a broker outage does not flood the log (item 13)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from sink.tools.events import MongoEvents, Oid
from tests.support import http_get, produce, start_sink, stored_offsets, unique, write_config

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])




def _ready_gauge(metrics: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith("cartridge_warp_ready "):
            return float(line.split()[1])
    return None


async def _until(check: Any, what: str, within: float) -> float:
    """Poll ``check()`` until true; returns the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def _events(db: str, start: int, n: int) -> list[tuple[bytes, bytes | None]]:
    ev = MongoEvents(db, "users")
    return [ev.insert({"_id": Oid(f"{i:024x}"), "n": i}) for i in range(start, start + n)]


async def test_readyz_follows_postgres(stack: Any, local_stack: Any, topic_factory: Any,
                                       tmp_path: Path) -> None:
    topic = await topic_factory(partitions=1)
    db, group, port = unique("ready"), unique("g"), _free_port()
    await produce(stack.bootstrap_servers, topic, _events(db, 0, 50))
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    cfg.write_text(cfg.read_text().replace(
        "metrics_port: 0", f'metrics_port: {port}\n  metrics_host: "127.0.0.1"'))
    log = tmp_path / "sink.log"
    proc = await start_sink(cfg, log=log)
    stopped = False
    try:
        async def ready() -> bool:
            assert proc.returncode is None, log.read_text()[-2000:]
            try:
                return (await http_get(port, "/readyz"))[0] == 200
            except OSError:
                return False

        await _until(ready, "/readyz 200", 60)
        assert _ready_gauge((await http_get(port, "/metrics"))[1]) == 1

        await asyncio.to_thread(local_stack.postgres.ctl, "stop", "-m", "immediate")
        stopped = True

        async def not_ready() -> bool:
            return (await http_get(port, "/readyz"))[0] == 503

        took = await _until(not_ready, "/readyz 503 with PostgreSQL stopped", 10)
        assert took < 5, took
        status, body = await http_get(port, "/readyz")
        assert status == 503 and "PostgreSQL" in body, (status, body)
        assert _ready_gauge((await http_get(port, "/metrics"))[1]) == 0
        assert (await http_get(port, "/healthz"))[0] == 200  # alive: retrying is not a stall
        await asyncio.sleep(2)  # it stays not ready while PostgreSQL is down
        assert (await http_get(port, "/readyz"))[0] == 503

        await asyncio.to_thread(local_stack.postgres.ctl, "start")
        stopped = False
        await _until(ready, "/readyz 200 once PostgreSQL is back", 30)
        assert _ready_gauge((await http_get(port, "/metrics"))[1]) == 1
        await produce(stack.bootstrap_servers, topic, _events(db, 50, 50))

        async def applied() -> bool:
            return (await stored_offsets(stack.pg_dsn, group)).get((topic, 0)) == 100

        await _until(applied, "the 100 records applied", 60)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if stopped:
            await asyncio.to_thread(local_stack.postgres.ctl, "start")
        if proc.returncode is None:
            proc.kill()
    assert code == 0, log.read_text()[-3000:]


async def test_broker_outage_logs_a_line_per_interval(
    stack: Any, local_stack: Any, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory(partitions=2)
    db, group = unique("outage"), unique("g")
    await produce(stack.bootstrap_servers, topic, _events(db, 0, 200))
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    log = tmp_path / "sink.log"
    proc = await start_sink(cfg, log=log)
    try:
        async def applied(n: int) -> bool:
            assert proc.returncode is None, log.read_text()[-2000:]
            return sum((await stored_offsets(stack.pg_dsn, group)).values()) == n

        await _until(lambda: applied(200), "the first 200 records applied", 60)
        before = len(log.read_bytes().splitlines())
        await local_stack.astop_kafka()
        await asyncio.sleep(20)
        during = log.read_bytes().splitlines()[before:]
        await local_stack.astart_kafka()
        await produce(stack.bootstrap_servers, topic, _events(db, 200, 200))
        await _until(lambda: applied(400), "the next 200 records applied", 120)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 0, log.read_text()[-3000:]
    lines = [json.loads(line) for line in during]
    by_event: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line)
    summary = {event: len(got) for event, got in by_event.items()}
    # The outage was seen, and reported with how often it repeated...
    unable = [e for e in by_event if e.startswith("Unable connect")]
    assert unable, summary
    assert any(line.get("repeated", 0) > 0 for e in unable for line in by_event[e]), summary
    # ...but each kind of line at most once per 10 s interval (20 s: the first, then two).
    assert all(n <= 3 for n in summary.values()), summary
    assert len(lines) <= 40, summary
