"""``run --until-caught-up``: the end offsets seen at start, and whether they are applied."""

from __future__ import annotations

import re
from typing import Any

import structlog
from aiokafka import TopicPartition

from sink.config import SourceConfig
from sink.postgres import PostgreSQLDestinationConnector
from sink.service import kafka
from sink.service.batcher import Batcher
from sink.service.ownership import Ownership

log = structlog.get_logger("sink.catchup")


class CatchUp:
    def __init__(self) -> None:
        self.end_offsets: dict[TopicPartition, int] = {}
        self.start_offsets: dict[TopicPartition, int] = {}

    async def snapshot(self, src: SourceConfig, consumer: Any, *, quiet: bool = False) -> None:
        """Every partition of the subscribed topics and its end offset, now (``quiet``:
        without the log line, for a view that re-reads them every few seconds)."""
        client = kafka.admin(src)
        await client.start()
        try:
            topics = await client.list_topics()
            wanted = sorted(t for t in topics if (
                re.fullmatch(src.topic_pattern, t) if src.topic_pattern else t in src.topics))
            described = await client.describe_topics(wanted) if wanted else []
        finally:
            await client.close()
        tps = [TopicPartition(d["topic"], p["partition"])
               for d in described for p in d.get("partitions") or ()]
        self.end_offsets = dict(await consumer.end_offsets(tps)) if tps else {}
        if not quiet:
            log.info("caught-up target", partitions=len(tps),
                     messages=sum(self.end_offsets.values()))

    async def starts(self, consumer: Any, pg: PostgreSQLDestinationConnector, group_id: str,
                     auto_offset_reset: str) -> dict[TopicPartition, int]:
        """Where each target partition starts: its stored offset, else where
        ``auto_offset_reset`` puts it (for the progress total only)."""
        tps = sorted(self.end_offsets)
        if not tps:
            return {}
        stored = await pg.load_offsets(group_id, sorted({tp.topic for tp in tps}))
        missing = [tp for tp in tps if (tp.topic, tp.partition) not in stored]
        begin = dict(await consumer.beginning_offsets(missing)) if missing else {}
        self.start_offsets = {
            tp: stored.get((tp.topic, tp.partition),
                           begin.get(tp, 0) if auto_offset_reset == "earliest"
                           else self.end_offsets[tp])
            for tp in tps}
        return self.start_offsets

    async def reached(self, owner: Ownership, batcher: Batcher, consumer: Any,
                      pg: PostgreSQLDestinationConnector) -> bool:
        """True when every partition is applied up to its end offset: ours from what we
        applied, the other members' from the offsets table."""
        if not owner.ever_assigned:
            return False
        others: list[tuple[TopicPartition, int]] = []
        for tp, end in self.end_offsets.items():
            if end == 0:
                continue
            if tp in owner.assignment:
                if batcher.pending(tp):
                    return False  # fetched, not applied yet
                done = owner.expected.get(tp)
                # Nothing pending: everything fetched is applied, so the position counts
                # (it also steps over offsets that hold no message, e.g. txn markers).
                if (done is None or done < end) and await consumer.position(tp) < end:
                    return False
            else:
                others.append((tp, end))
        if others:  # the other members' partitions: one query for all of them
            stored = await pg.load_offsets(owner.group_id, sorted({tp.topic for tp, _ in others}))
            return all(stored.get((tp.topic, tp.partition), 0) >= end for tp, end in others)
        return True
