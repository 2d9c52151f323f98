"""Hostile operator (attack pass) on ``run --workers N``: a stop while the group is still
starting (PostgreSQL or the broker not reachable) must behave as it does for one process:
exit 0 at once, one clean log, no worker left behind, no traceback."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import start_sink, unique, write_config

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("silent", [False, True], ids=["refused", "silent"])
@pytest.mark.parametrize("down", ["postgres", "kafka"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_while_the_group_starts_exits_0_at_once(
    stack: Any, tmp_path: Path, down: str, sig: signal.Signals, silent: bool
) -> None:
    """``silent``: the server accepts connections and never answers (a frozen host), so the
    parent is still taking the group's progress view when the signal comes."""
    server = None
    if silent:
        async def hold(_r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
            await asyncio.sleep(3600)
        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
    else:
        port = _closed_port()
    dsn = stack.pg_dsn if down != "postgres" else f"postgresql://warp@127.0.0.1:{port}/warp"
    bootstrap = stack.bootstrap_servers if down != "kafka" else f"127.0.0.1:{port}"
    cfg = write_config(tmp_path / "c.yaml", bootstrap=bootstrap, dsn=dsn,
                       topic=unique("t"), group=unique("g"))
    log = tmp_path / "run.log"
    proc = await start_sink(cfg, "--workers", "2", log=log)
    await asyncio.sleep(4)
    assert proc.returncode is None  # still starting: waiting for the unreachable server
    t0 = time.monotonic()
    proc.send_signal(sig)
    code = await asyncio.wait_for(proc.wait(), 20)
    took = time.monotonic() - t0
    text = log.read_text(errors="replace")
    assert (code, "Traceback" in text) == (0, False), text[-3000:]
    assert took < 10, took
    if silent:  # stopped in the parent's start: no worker was started at all
        assert '"workers started"' not in text
        assert "stopped before start-up finished" in text
    if server is not None:
        server.close()
