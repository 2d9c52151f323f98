"""No servers: the repeat limiter of library warnings (issue 12, item 13) and the
destination probe behind ``/readyz`` (item 9), with a clock and pings the test controls.
The real-stack tests are in ``test_outages.py``."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from sink import logs
from sink.service.readiness import DestinationProbe


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_a_repeated_library_warning_is_printed_once_per_interval(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    logs.configure("json", "info", out)
    kafka = logging.getLogger("aiokafka")
    for second in range(25):  # a 25 s outage, 50 failures a second
        now[0] = 1000.0 + second
        for _ in range(50):
            kafka.error("Unable connect to node with id %s: %s", 1, "refused")
        kafka.warning("Heartbeat failed for group %s", "g")
    logging.getLogger("asyncpg").warning("once")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    unable = [line for line in lines if line["event"].startswith("Unable connect")]
    # at 0 s, 10 s and 20 s; the later ones say how many were held back meanwhile
    assert [line.get("repeated") for line in unable] == [None, 499, 499]
    beats = [line for line in lines if line["event"].startswith("Heartbeat")]
    assert [line.get("repeated") for line in beats] == [None, 9, 9]
    assert [line["event"] for line in lines if line["logger"] == "asyncpg"] == ["once"]
    assert len(lines) == 7


def test_the_sinks_own_lines_and_library_info_are_not_limited(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure("json", "debug", out)
    log = structlog.get_logger("sink.service")
    for i in range(20):
        log.warning("record dead-lettered", offset=i)
        logging.getLogger("aiokafka").info("joined group %s", "g")
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events.count("record dead-lettered") == 20
    assert events.count("joined group g") == 20


async def test_probe_not_ready_while_the_ping_fails_or_hangs() -> None:
    answer: list[object] = [True]
    release = asyncio.Event()

    async def ping() -> bool:
        if answer[0] == "hang":
            await release.wait()
            return True
        if answer[0] == "raise":
            raise OSError("connection refused")
        return bool(answer[0])

    probe = DestinationProbe(ping, interval=0.05, timeout=0.2)
    assert await probe.check() and probe.ok
    answer[0] = False
    assert not await probe.check() and not probe.ok
    answer[0] = "raise"
    assert not await probe.check()
    answer[0] = "hang"
    started = asyncio.get_running_loop().time()
    assert not await probe.check()
    assert asyncio.get_running_loop().time() - started < 0.5  # bounded by the timeout
    assert not await probe.check()  # the hung ping is waited on, not started again
    release.set()
    assert await probe.check() and probe.ok


async def test_a_recent_commit_answers_for_the_ping() -> None:
    pings = 0

    async def ping() -> bool:
        nonlocal pings
        pings += 1
        return False

    probe = DestinationProbe(ping, interval=0.5, timeout=0.1)
    probe.answered()
    assert await probe.check() and pings == 0
    await asyncio.sleep(0.6)
    assert not await probe.check() and pings == 1
