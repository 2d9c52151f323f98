"""``run --workers N``: N sink processes in one consumer group on this host.

Python decodes on one core; a group of processes uses the others. Each worker is a
plain ``warp-sink run`` (same configuration, same group), so everything a single
process guarantees holds per partition. The parent forwards SIGTERM/SIGINT, gives each
worker its own metrics port (base port + index) so they can be scraped, and shows the
group's one progress view (:mod:`sink.service.group_view`); the workers show none.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Coroutine
from types import FrameType
from typing import Any

import structlog

from sink.config import Settings
from sink.service.destination import destination
from sink.service.group_view import PROGRESS_ENV, GroupView

log = structlog.get_logger("sink.workers")


def run_workers(argv: list[str], workers: int, settings: Settings, *,
                until_caught_up: bool = False) -> int:
    """Start ``workers`` copies of ``warp-sink run`` with ``argv``; wait for all.
    Exit 0 only if every worker exited 0; otherwise the first non-zero code. Worker ``i``
    is ``<client_id>-<i>`` to Kafka, so ``status`` and broker logs tell them apart."""
    return asyncio.run(_run(argv, workers, settings, until_caught_up))


async def _run(argv: list[str], workers: int, settings: Settings,
               until_caught_up: bool) -> int:
    loop = asyncio.get_running_loop()
    procs: list[subprocess.Popen[bytes]] = []
    stopping = asyncio.Event()

    def forward(signum: int, _frame: FrameType | None = None) -> None:
        stopping.set()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    # From the start: the view may wait up to its timeout on a server that does not answer,
    # and a stop then is a stop while starting (exit 0 at once, as for one process).
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, forward, sig, None)
    try:
        view = GroupView(settings, destination(settings), until_caught_up=until_caught_up)
        # Before any worker starts: the view's start is the group's, not what was left of it.
        shown = await _unless_stopped(view.start(), stopping)
        if shown is None or stopping.is_set():
            await view.stop(final=False)
            log.info("stopped before start-up finished; no worker was started")
            return 0
        procs += _spawn(argv, workers, settings, view_shown=shown)
        codes = await asyncio.gather(*(asyncio.to_thread(p.wait) for p in procs))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    failed = [c for c in codes if c != 0]
    await view.stop(final=not failed)
    return failed[0] if failed else 0


async def _unless_stopped(start: Coroutine[Any, Any, bool], stopping: asyncio.Event
                          ) -> bool | None:
    """``start``'s result, or None when a stop came first (``start`` is cancelled)."""
    task = asyncio.ensure_future(start)
    stop = asyncio.ensure_future(stopping.wait())
    await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


def _spawn(argv: list[str], workers: int, settings: Settings, *,
           view_shown: bool) -> list[subprocess.Popen[bytes]]:
    port = settings.observability.metrics_port
    client_id = settings.source.client_id
    procs: list[subprocess.Popen[bytes]] = []
    for i in range(workers):
        extra = ["--set", f"observability.metrics_port={port + i}"] if port else []
        extra += ["--set", f"source.client_id={client_id}-{i}"]
        env = {**os.environ, "WARP_WORKER_INDEX": str(i)}
        # Without the group's view (it could not start), worker 0 still shows its own:
        # one line on the terminal either way.
        if view_shown or i:
            env[PROGRESS_ENV] = "off"
        procs.append(subprocess.Popen([sys.executable, "-m", "sink", "run", *argv, *extra],
                                      env=env))
    log.info("workers started", workers=workers, pids=[p.pid for p in procs])
    return procs
