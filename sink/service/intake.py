"""The decode step of the loop: a fetched message becomes a buffered record, a counted
skip, or a dead letter waiting for its flush.

Nearly every message is handled without I/O and without a coroutine (`Intake.accept`
returns None); the rare one that needs I/O — an Avro schema id not cached yet, or a
tombstone of a topic whose table this process has not seen — comes back as an awaitable
that finishes the job, so the loop awaits only those.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import TopicPartition

from sink.decode import MessageDecoder
from sink.errors import DecodeError
from sink.metrics import Metrics
from sink.postgres import Router
from sink.records import Record, Skip
from sink.service.batcher import Batcher
from sink.service.dead_letters import DeadLetter

Retrying = Callable[..., Awaitable[Any]]


class Intake:
    def __init__(
        self,
        decoder: MessageDecoder,
        router: Router,
        batcher: Batcher,
        metrics: Metrics,
        *,
        table_for_topic: Callable[[str], Awaitable[tuple[str, str] | None]],
        retrying: Retrying,
        generation: Callable[[], int],
    ) -> None:
        self.decoder = decoder
        self.router = router
        self.batcher = batcher
        self.metrics = metrics
        self._table_for_topic = table_for_topic
        self._retrying = retrying
        self._generation = generation  # bumped when partitions are sought back

    def accept(self, tp: TopicPartition, msg: Any) -> Awaitable[None] | None:
        """Decode and buffer one message; an awaitable only when it needs I/O."""
        try:
            out = self.decoder.decode_cached(msg.key, msg.value, msg.topic)
        except DecodeError as exc:
            self._bad(tp, msg, exc)
            return None
        if out is None:  # an Avro schema id not seen yet: ask the registry
            return self._slow(tp, msg, None)
        if isinstance(out, Skip):
            self._skip(tp, msg, out.reason)
            return None
        if out.schema is None or out.table is None:
            return self._slow(tp, msg, out)
        out.schema, out.table = self.router.route(out.schema, out.table)
        self._add(tp, msg, out)
        return None

    async def _slow(self, tp: TopicPartition, msg: Any, out: Record | None) -> None:
        generation = self._generation()
        if out is None:
            try:
                decoded = await self._retrying(
                    lambda: self.decoder.decode(msg.key, msg.value, msg.topic),
                    "schema registry", pause=True)
            except DecodeError as exc:
                self._bad(tp, msg, exc)
                return
            if generation != self._generation():
                return  # sought back while the registry answered: this will be read again
            if isinstance(decoded, Skip):
                self._skip(tp, msg, decoded.reason)
                return
            out = decoded
        if out.schema is None or out.table is None:
            found = await self._table_for_topic(msg.topic)
            if generation != self._generation():
                return
            if found is None:
                self._skip(tp, msg, "tombstone_unknown_table")
                return
            out.schema, out.table = found
        else:
            out.schema, out.table = self.router.route(out.schema, out.table)
        self._add(tp, msg, out)

    def _add(self, tp: TopicPartition, msg: Any, out: Record) -> None:
        size = len(msg.key or b"") + len(msg.value or b"")
        out.topic, out.partition, out.offset, out.size = msg.topic, msg.partition, msg.offset, size
        self.batcher.add(tp, msg.offset, size, out, msg)

    def _skip(self, tp: TopicPartition, msg: Any, reason: str) -> None:
        self.metrics.skipped.labels(reason).inc()
        self.batcher.skipped(tp, msg.offset, len(msg.key or b"") + len(msg.value or b""))

    def _bad(self, tp: TopicPartition, msg: Any, exc: DecodeError) -> None:
        letter = DeadLetter(
            topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key,
            value=msg.value, headers=list(msg.headers or ()), error=exc, stage=_stage(exc),
        )
        schema, table = getattr(exc, "schema", None), getattr(exc, "table", None)
        if schema is not None and table is not None:  # the envelope named its table
            letter.schema, letter.table = self.router.route(schema, table)
        self.batcher.add_bad(tp, msg.offset, len(msg.key or b"") + len(msg.value or b""),
                             letter)


def _stage(exc: DecodeError) -> str:
    return "KEY_CONVERTER" if exc.code.startswith("bad_key") or "key" in exc.code else (
        "VALUE_CONVERTER")


__all__ = ["Intake"]
