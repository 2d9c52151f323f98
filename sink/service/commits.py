"""Kafka's copy of the offsets, committed behind PostgreSQL and off the write path.

PostgreSQL's offsets table is the truth (a restart seeks to it); the group's Kafka
commits exist for lag tooling (``kafka-consumer-groups``, Burrow, the lag gauges). A
Kafka commit is a broker round trip plus a replicated write to ``__consumer_offsets``:
awaiting it after every transaction put it on the critical path of every flush (about
a third of a flush's wall time on a local broker). So commits are coalesced here: a
flush hands over its partitions' next offsets and returns; one commit is in flight at
a time and carries the newest offset of every partition handed over meanwhile.

Guarantees:
- an offset is handed over only after the PostgreSQL transaction that stored it
  committed, so Kafka never runs ahead of PostgreSQL;
- :meth:`settle` returns once everything handed over before it was committed (or
  failed and was logged): the service calls it after every public ``flush`` — on
  revoke, before the partitions are released, and on shutdown;
- a failed commit is logged and dropped, never raised: the next flush's commit (or the
  next owner's) supersedes it, and PostgreSQL is unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from aiokafka import TopicPartition

log = structlog.get_logger("sink.commits")

Offsets = dict[TopicPartition, int]


class KafkaCommitter:
    def __init__(
        self,
        consumer: Callable[[], Any],
        owned: Callable[[], set[TopicPartition]],
        on_committed: Callable[[Offsets], None] | None = None,
    ) -> None:
        self._consumer = consumer
        self._owned = owned
        self.on_committed = on_committed  # called with what each commit carried
        self._pending: Offsets = {}
        self._task: asyncio.Task[None] | None = None

    def hand_over(self, offsets: Offsets) -> None:
        """Commit these next offsets soon (after any commit in flight)."""
        self._pending.update(offsets)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="kafka-commit")

    async def settle(self) -> None:
        """Wait until everything handed over so far is committed (or logged as failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._pending.clear()

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            owned = self._owned()
            commit = {tp: o for tp, o in batch.items() if tp in owned}
            if not commit:
                continue
            try:
                await self._consumer().commit(commit)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # PostgreSQL holds the truth
                log.info("kafka commit skipped", error=str(exc))
                continue
            if self.on_committed is not None:
                with contextlib.suppress(Exception):
                    self.on_committed(commit)
