"""Which partitions this instance owns, where each starts, and the stored offset each
partition's next flush must move from (the fencing token against zombie writers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition

from sink.errors import FatalError, WarpError
from sink.postgres import PostgreSQLDestinationConnector
from sink.service.batcher import Batcher

log = structlog.get_logger("sink.ownership")

Retry = Callable[[Callable[[], Awaitable[Any]], str], Awaitable[Any]]


class Ownership:
    def __init__(self, consumer: Any, pg: PostgreSQLDestinationConnector, batcher: Batcher,
                 *, group_id: str, auto_offset_reset: str, retry: Retry) -> None:
        self.consumer = consumer
        self.pg = pg
        self.batcher = batcher
        self.group_id = group_id
        self.auto_offset_reset = auto_offset_reset
        self.retry = retry
        self.assignment: set[TopicPartition] = set()
        self.expected: dict[TopicPartition, int | None] = {}  # None: no row stored yet
        self.ever_assigned = False
        self.failure: Exception | None = None  # the assignment failed (see RebalanceListener)

    def raise_failure(self) -> None:
        """Raise what made an assignment fail: aiokafka logs a listener's exception and goes
        on, which would leave the sink up and reading nothing."""
        exc = self.failure
        if exc is not None:
            raise exc if isinstance(exc, WarpError) else FatalError(
                f"partition assignment failed: {type(exc).__name__}: {exc}") from exc

    def moves(self, next_offsets: dict[TopicPartition, int]
              ) -> dict[tuple[str, int], tuple[int | None, int]]:
        """(expected, new) per partition, for `metadata.store_offsets`."""
        return {(tp.topic, tp.partition): (self.expected.get(tp), nxt)
                for tp, nxt in next_offsets.items()}

    def applied(self, next_offsets: dict[TopicPartition, int]) -> None:
        self.expected.update(next_offsets)

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        """Seek every partition (stored offset, else the group's commit, else
        auto_offset_reset), then publish the assignment with no await in between.

        aiokafka activates an assignment before awaiting the listener, so records of
        these partitions may be fetched — and dropped by the loop — meanwhile; the
        explicit seeks read them again."""
        # All of it under the retry policy: PostgreSQL and the broker are asked here, and a
        # connection lost on the way must be waited out, not end the listener.
        stored, starts = await self.retry(lambda: self._starts(assigned), "load offsets")
        self.batcher.drop(assigned)
        for tp in assigned:
            self.expected[tp] = stored.get((tp.topic, tp.partition))
            self.consumer.seek(tp, starts[tp])
        self.assignment |= assigned
        self.ever_assigned = True
        log.info("partitions assigned",
                 partitions=sorted(f"{t.topic}[{t.partition}]" for t in assigned))

    async def _starts(self, assigned: set[TopicPartition]) -> tuple[
            dict[tuple[str, int], int], dict[TopicPartition, int | None]]:
        topics = sorted({tp.topic for tp in assigned})
        stored = await self.pg.load_offsets(self.group_id, topics)
        starts: dict[TopicPartition, int | None] = {}
        for tp in assigned:
            offset = stored.get((tp.topic, tp.partition))
            starts[tp] = offset if offset is not None else await self.consumer.committed(tp)
        reset = [tp for tp, off in starts.items() if off is None]
        if reset:
            edge = (self.consumer.beginning_offsets if self.auto_offset_reset == "earliest"
                    else self.consumer.end_offsets)
            starts.update(await edge(reset))
        return stored, starts

    def released(self, tps: set[TopicPartition]) -> None:
        """Forget partitions that went to another member (buffers dropped, unapplied)."""
        self.batcher.drop(tps)
        for tp in tps:
            self.expected.pop(tp, None)
        self.assignment -= tps

    async def resync(self, tps: set[TopicPartition]) -> None:
        """After an offset conflict: drop the buffers and seek the partitions still owned
        back to where the stored offsets say (nothing buffered was applied). The caller
        passes every partition whose fetched or buffered records it drops: one left out
        would continue past them and store an offset beyond a gap."""
        mine = {tp for tp in tps if tp in self.assignment}
        self.released(set(tps))
        if mine:
            await self.assigned(mine)


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Called by aiokafka around a group rebalance.

    ``on_partitions_revoked`` runs before the partitions go to another member: what is
    buffered for them is applied and committed first, within ``timeout`` seconds; if
    that fails, the buffers are dropped — nothing of them was committed, and the next
    owner reads them again from the stored offsets.
    ``on_partitions_assigned`` runs before the first records are handed to the loop:
    see `Ownership.assigned`.
    """

    def __init__(self, owner: Ownership, flush: Callable[[set[TopicPartition]], Awaitable[None]],
                 timeout: float) -> None:
        self.owner = owner
        self.flush = flush
        self.timeout = timeout

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        try:
            await asyncio.wait_for(self.flush(set(revoked)), timeout=self.timeout)
        except (TimeoutError, WarpError) as exc:
            log.warning("could not flush revoked partitions; dropping their buffers",
                        error=str(exc))
        self.owner.released(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await self.owner.assigned(set(assigned))
        except Exception as exc:
            # aiokafka logs a listener's exception and carries on, the partitions assigned
            # in the group but never sought nor read: a silent stall. The loop raises it.
            self.owner.failure = exc
            raise
