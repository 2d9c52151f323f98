"""``run --workers N``: N sink processes in one consumer group on this host.

Python decodes on one core; a group of processes uses the others. Each worker is a
plain ``warp-sink run`` (same configuration, same group), so everything a single
process guarantees holds per partition. The parent forwards SIGTERM/SIGINT, and
gives each worker its own metrics port (base port + index) so they can be scraped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

import structlog

log = structlog.get_logger("sink.workers")


def run_workers(argv: list[str], workers: int, metrics_port: int,
                client_id: str = "warp-sink") -> int:
    """Start ``workers`` copies of ``warp-sink run`` with ``argv``; wait for all.
    Exit 0 only if every worker exited 0; otherwise the first non-zero code. Worker ``i``
    is ``<client_id>-<i>`` to Kafka, so ``status`` and broker logs tell them apart."""
    procs: list[subprocess.Popen[bytes]] = []
    for i in range(workers):
        extra = ["--set", f"observability.metrics_port={metrics_port + i}"] if metrics_port else []
        extra += ["--set", f"source.client_id={client_id}-{i}"]
        env = {**os.environ, "WARP_WORKER_INDEX": str(i)}
        procs.append(subprocess.Popen([sys.executable, "-m", "sink", "run", *argv, *extra],
                                      env=env))
    log.info("workers started", workers=workers, pids=[p.pid for p in procs])

    def forward(signum: int, _frame: FrameType | None) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes: list[int] = []
        for p in procs:
            while True:
                try:
                    codes.append(p.wait())
                    break
                except KeyboardInterrupt:  # forwarded already; keep waiting for the drain
                    time.sleep(0.1)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    failed = [c for c in codes if c != 0]
    return failed[0] if failed else 0
