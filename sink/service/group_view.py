"""``run --workers N``: one progress view for the whole group, drawn by the parent.

Each worker's own view would show the group's figures (progress is read from the offsets
table), but N of them on one terminal take turns on the same line, each with the total it
saw when it started, and a worker that starts after the others applied everything draws
"0/0". So the parent takes the group's start and end once, before any worker starts, and
renders the one view (a live line on a terminal, ``progress`` log lines elsewhere, one
``progress final`` when every worker ended well); the workers run with theirs off
(:data:`PROGRESS_ENV`).

Without ``--until-caught-up`` there is no fixed end: the view re-reads the end offsets
every few seconds, so its total is what has arrived and its lag what is left of it.
The view is for people only: if Kafka or PostgreSQL cannot be read at start, the workers
run without it (they have their own retry policy and say what is wrong).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from aiokafka import TopicPartition

from sink.config import Settings
from sink.metrics import Metrics
from sink.postgres import PostgreSQLDestinationConnector
from sink.service import kafka
from sink.service.catchup import CatchUp
from sink.service.progress import PROGRESS_ENV, Progress

__all__ = ["PROGRESS_ENV", "GroupView"]

log = structlog.get_logger("sink.workers")

_START_TIMEOUT_S = 30.0
_REFRESH_S = 5.0


class GroupView:
    """The group's progress, from the offsets table and the topics' end offsets."""

    def __init__(self, settings: Settings, pg: PostgreSQLDestinationConnector, *,
                 until_caught_up: bool) -> None:
        self.s = settings
        self.pg = pg
        self.until_caught_up = until_caught_up
        self.catchup = CatchUp()
        self.progress: Progress | None = None
        self._consumer: Any = None
        self._starts: dict[TopicPartition, int] = {}
        self._refresh: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        """Take the group's start and end and show the view; False (and a warning) when
        they cannot be read in time: the workers then run without a view."""
        try:
            await asyncio.wait_for(self._start(), timeout=_START_TIMEOUT_S)
        except Exception as exc:  # a view only: never keep the workers from running
            log.warning("group progress unavailable; workers run without it",
                        error=type(exc).__name__)
            await self.close()
            return False
        return True

    async def _start(self) -> None:
        src = self.s.source
        await self.pg.connect()
        self._consumer = kafka.consumer(src, max_poll_records=1)
        await self._consumer.start()
        self.progress = Progress(
            Metrics(), lambda topics: self.pg.load_offsets(src.group_id, topics),
            interval=self.s.observability.progress_interval_seconds, dead_letters=False)
        await self._target()
        self.progress.show()
        if not self.until_caught_up:
            self._refresh = asyncio.create_task(self._refreshing(), name="group-view-refresh")

    async def _target(self) -> None:
        """(Re)read the end offsets; a partition seen for the first time starts where the
        group stands on it (stored offset, else where ``auto_offset_reset`` puts it)."""
        src = self.s.source
        await self.catchup.snapshot(src, self._consumer, quiet=self.progress is not None and
                                    bool(self._starts))
        new = [tp for tp in self.catchup.end_offsets if tp not in self._starts]
        if new:
            starts = await self.catchup.starts(self._consumer, self.pg, src.group_id,
                                               src.auto_offset_reset)
            self._starts.update({tp: starts[tp] for tp in new})
        assert self.progress is not None
        self.progress.target(self._starts, self.catchup.end_offsets)

    async def _refreshing(self) -> None:
        next_at = time.monotonic() + _REFRESH_S
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = time.monotonic() + _REFRESH_S
            with contextlib.suppress(Exception):  # the last totals stand until it answers
                await self._target()

    async def stop(self, *, final: bool) -> None:
        """``final``: every worker ended well; show the group's last figures once."""
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
            self._refresh = None
        if self.progress is not None:
            await self.progress.stop(final=final)
        await self.close()

    async def close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None
        with contextlib.suppress(Exception):
            await self.pg.disconnect(within=2)
