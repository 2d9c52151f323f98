"""Processes and ports for the local stack's servers: free loopback ports, whether a pid
or a port is alive, stopping a process and waiting for it, a log's tail, and running a
coroutine from synchronous code."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
STOP_TIMEOUT_S = 30.0


class StackError(RuntimeError):
    """The local stack cannot be started, reached or stopped."""


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh loop in a helper thread: safe whether or not a loop runs here,
    and the caller's thread keeps its own event loop."""
    with ThreadPoolExecutor(1, thread_name_prefix="warp-stack") as pool:
        return pool.submit(asyncio.run, coro).result()


def free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie counts as gone; our own are reaped)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def stop_process(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid`` and wait until it is gone (SIGKILL after STOP_TIMEOUT_S)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while pid_alive(pid):
        if time.monotonic() > deadline and sig != signal.SIGKILL:
            sig = signal.SIGKILL
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + STOP_TIMEOUT_S
        time.sleep(0.05)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
        return True
    return False
