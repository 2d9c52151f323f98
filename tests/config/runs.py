"""Running the real ``warp-sink`` process and scraping its ``/metrics`` while it runs:
shared by the tests that search everything the process emits for secrets."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sink", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def scrape(port: int) -> str | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
    return raw.partition(b"\r\n\r\n")[2].decode()


async def run_and_scrape(config: Path, port: int, *args: str,
                         stop_when: str | None = None) -> tuple[int, str, str, list[str]]:
    """Run ``warp-sink run``, scraping /metrics until it exits (or, with ``stop_when``,
    until a scrape contains that text, then SIGTERM)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sink", "run", "--config", str(config), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    communicate = asyncio.create_task(proc.communicate())
    scrapes: list[str] = []
    deadline = asyncio.get_running_loop().time() + 60
    try:
        while not communicate.done() and asyncio.get_running_loop().time() < deadline:
            body = await scrape(port)
            if body:
                scrapes.append(body)
                if stop_when and stop_when in body and proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    stop_when = None
            await asyncio.sleep(0.02)
        if not communicate.done():  # stuck: stop it, and show what it logged
            proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(communicate, 40)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), scrapes
