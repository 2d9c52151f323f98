"""Whether the destination answers, for ``/readyz`` and ``cartridge_warp_ready``.

A pool that was opened once says nothing about now: PostgreSQL may have stopped,
restarted or frozen since. A background task asks ``SELECT 1`` once a second (cheap,
and a probe every scrape would not be), and the probe endpoints read the cached
answer. No answer within ``timeout`` seconds counts as not answering; a ping that is
still hung is not started again until it returns. A flush that committed within the
last second is an answer too: under load no ping competes with the flushes for the
pool's connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from sink.service.ownership import Ownership

log = structlog.get_logger("sink.readiness")


class DestinationProbe:
    def __init__(self, ping: Callable[[], Coroutine[Any, Any, bool]], *, interval: float = 1.0,
                 timeout: float = 2.0) -> None:
        self._ping = ping
        self.interval = interval
        self.timeout = timeout
        self.ok = True  # the probe starts right after a successful connect
        self._pending: asyncio.Task[bool] | None = None
        self._task: asyncio.Task[None] | None = None
        self._answered = 0.0  # monotonic time of the last commit seen

    def answered(self) -> None:
        """PostgreSQL just committed a flush."""
        self._answered = time.monotonic()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="destination-probe")

    async def stop(self) -> None:
        for task in (self._task, self._pending):
            if task is not None and not task.done():
                task.cancel()
        self._task = self._pending = None

    async def check(self) -> bool:
        if time.monotonic() - self._answered < self.interval:
            self._set(True)
            return True
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._ping(), name="destination-ping")
        done, _ = await asyncio.wait({self._pending}, timeout=self.timeout)
        ok = bool(done) and not self._pending.cancelled() and (
            self._pending.exception() is None and self._pending.result())
        self._set(ok)
        return ok

    def _set(self, ok: bool) -> None:
        if ok != self.ok:
            (log.info if ok else log.warning)(
                "PostgreSQL answers again; ready" if ok else
                "PostgreSQL is not answering; not ready until it does")
        self.ok = ok

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval)



def readiness(connected: bool, answering: bool, owner: Ownership | None) -> tuple[bool, str]:
    """``/readyz``: connected to a PostgreSQL that answers, and holding an assignment (or
    idle in a group with more members than partitions)."""
    if not connected:
        return False, "not connected to PostgreSQL"
    if not answering:
        return False, "PostgreSQL is not answering"
    if owner is None or not owner.ever_assigned:
        return False, "waiting for a partition assignment"
    if not owner.assignment:
        return True, "idle: the group has more members than partitions"
    return True, f"ready: {len(owner.assignment)} partitions"


__all__ = ["DestinationProbe", "readiness"]
