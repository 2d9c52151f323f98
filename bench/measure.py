"""Measuring one process of the benchmark (``bench/run.py``): spawn it, poll its peak RSS,
stop it when it is done, take wall time and CPU seconds from ``wait4``; the steady-state rate
from progress samples; how the figures are printed.

Used by ``bench/systems.py`` (each system is run through :func:`run_process`) and by
``bench/scenarios.py`` and ``bench/reporting.py`` (:class:`Measured`, :func:`fmt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- measuring a process -----------------------------------------------------------------


@dataclass
class Measured:
    system: str
    events: int = 0
    seconds: float | None = None
    rate: float | None = None
    steady: float | None = None
    peak_rss_mb: float | None = None
    cpu_s: float | None = None
    state_ok: bool | None = None
    state: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    exit: int | None = None


def spawn(cmd: list[str], logfile: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session, output appended to ``logfile``."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                                start_new_session=True)


def peak_rss_kb(pid: int) -> int:
    """``VmHWM`` of a live process: the peak RSS of its current image. (``wait4``'s
    ``ru_maxrss`` cannot be used: Linux carries the forking parent's high-water mark
    across ``exec`` into the child's.)"""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def reap(pid: int, *, block: bool) -> tuple[int, int, Any]:
    """``os.wait4``: (pid or 0 while running, status, rusage of the child)."""
    return os.wait4(pid, 0 if block else os.WNOHANG)


async def run_process(
    cmd: list[str], logfile: Path, *, done: Callable[[], Awaitable[bool]] | None = None,
    failed: Callable[[], Awaitable[str | None]] | None = None,
    sample: Callable[[float], Awaitable[None]] | None = None, limit_s: float = 3600,
    env: dict[str, str] | None = None, watch: Callable[[int], None] | None = None,
) -> tuple[float | None, int | None, float | None, float | None, str]:
    """Spawn ``cmd``; return (seconds, exit code, peak RSS MB, CPU s, note).

    Without ``done``: seconds = spawn → exit. With ``done``: seconds = spawn → ``done()``
    true, then SIGTERM and reap (rusage covers the whole life). ``watch`` is called with
    the pid on every poll while the process runs."""
    t0 = time.perf_counter()
    proc = spawn(cmd, logfile, env)
    seconds: float | None = None
    note = ""
    stop_at: float | None = None  # when we sent SIGTERM
    next_sample = next_check = 0.0
    hwm = 0
    try:
        while True:
            hwm = max(hwm, peak_rss_kb(proc.pid))
            if watch is not None:
                watch(proc.pid)
            pid, status, rusage = reap(proc.pid, block=False)
            now = time.perf_counter() - t0
            if pid:
                code = os.waitstatus_to_exitcode(status)
                if stop_at is None and done is None:
                    seconds = now
                    if code != 0:
                        note, seconds = f"exit {code}: {tail(logfile, 1)}", None
                elif stop_at is None:
                    note = f"exited (code {code}) before it was done: {tail(logfile, 1)}"
                break
            if stop_at is not None:
                if now - stop_at > 60:
                    proc.kill()
                await asyncio.sleep(0.1)
                continue
            if sample is not None and now >= next_sample:
                next_sample = now + 0.5
                await sample(now)
            if now >= next_check:
                next_check = now + 0.2
                if done is not None and await done():
                    seconds = time.perf_counter() - t0
                elif failed is not None and (why := await failed()):
                    note = why
                elif now > limit_s:
                    note = f"no result within {limit_s:.0f} s"
                if seconds is not None or note:
                    stop_at = now
                    proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.02)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        reap(proc.pid, block=True)
        raise
    rss = hwm / 1024 if hwm else None
    cpu = rusage.ru_utime + rusage.ru_stime
    return seconds, code, rss, cpu, note


def tail(path: Path, n: int = 5) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip()[:300] for line in lines[-n:])


def steady_rate(samples: list[tuple[float, int]], total: int) -> float | None:
    """Least-squares slope of progress between 10 % and 90 % of ``total``."""
    pts = [(t, n) for t, n in samples if 0.1 * total <= n <= 0.9 * total]
    if len(pts) < 3:
        return None
    mt = sum(t for t, _ in pts) / len(pts)
    mn = sum(n for _, n in pts) / len(pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    return sum((t - mt) * (n - mn) for t, n in pts) / den if den else None


# --- printing a measurement -------------------------------------------------------------


def fmt(v: float | None, nd: int = 1) -> str:
    return "—" if v is None else f"{v:,.{nd}f}"


def fmt_rate(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"
