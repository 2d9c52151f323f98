"""The decode step of the loop: a fetched message becomes a buffered record, a counted
skip, or a dead letter waiting for its flush.

Nearly every message is handled without I/O and without a coroutine (`Intake.accept`
returns None); the rare one that needs I/O — an Avro schema id not cached yet, or a
tombstone whose key this process has not read recently — comes back as an awaitable
that finishes the job, so the loop awaits only those.

A tombstone (null value) names no table: it deletes the row its key names in the table
that key's records went to. `RecentKeys` answers for the keys read recently (buffered,
in flight, or just applied: Debezium writes the tombstone right after the delete), with
the key exactly as those records held it; otherwise PostgreSQL answers
(`PostgreSQLDestinationConnector.tombstone_target`), under the retry policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import TopicPartition

from sink.decode import MessageDecoder
from sink.errors import DecodeError, RecordError, WarpError
from sink.metrics import Metrics
from sink.postgres import Router, Target
from sink.records import Record, Skip
from sink.service.batcher import Batcher
from sink.service.dead_letters import DeadLetter

Retrying = Callable[..., Awaitable[Any]]
TombstoneTarget = Callable[[str, list[dict[str, Any]], int, "tuple[str, str] | None"],
                           Awaitable[Target | None]]
Seen = tuple[str, str, dict[str, Any]]  # schema, table, key of a key's latest record


class RecentKeys:
    """(topic, Kafka key bytes) → where that key's latest record went, for at least the
    last ``size`` records: two generations of a dict, so the hot path is one insert (done
    inline by `Intake.accept` into ``now``, then `roll` when full). ``size`` covers what is
    buffered and in flight, so a tombstone never misses a record PostgreSQL lacks yet."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.now: dict[tuple[str, bytes], Seen] = {}
        self._before: dict[tuple[str, bytes], Seen] = {}

    def note(self, topic: str, key: bytes, rec: Record) -> None:
        self.now[(topic, key)] = (rec.schema or "", rec.table or "", rec.key)
        if len(self.now) >= self.size:
            self.roll()

    def roll(self) -> None:
        self._before, self.now = self.now, {}

    def get(self, topic: str, key: bytes) -> Seen | None:
        found = self.now.get((topic, key))
        if found is None:
            found = self._before.get((topic, key))
        return found if found is not None and found[2] else None  # a TRUNCATE names no row


class Intake:
    def __init__(
        self,
        decoder: MessageDecoder,
        router: Router,
        batcher: Batcher,
        metrics: Metrics,
        *,
        tombstone_target: TombstoneTarget,
        retrying: Retrying,
        generation: Callable[[], int],
        recent: int = 10_000,
    ) -> None:
        self.decoder = decoder
        self.router = router
        self.batcher = batcher
        self.metrics = metrics
        self._tombstone_target = tombstone_target
        self._retrying = retrying
        self._generation = generation  # bumped when partitions are sought back
        self.recent = RecentKeys(recent)
        self._configured = router.topic_tables()

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
            seen = self.recent.get(msg.topic, msg.key) if msg.key is not None else None
            if seen is None:
                return self._slow(tp, msg, out)
            out.schema, out.table, out.key = seen
            self._add(tp, msg, out)
            return None
        out.schema, out.table = schema, table = self.router.route(out.schema, out.table)
        key = msg.key
        if key is not None:  # RecentKeys.note, inline: this runs for every record
            now = self.recent.now
            now[(msg.topic, key)] = (schema, table, out.key)
            if len(now) >= self.recent.size:
                self.recent.roll()
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
            seen = self.recent.get(msg.topic, msg.key) if msg.key is not None else None
            if seen is not None:  # read while this one waited on the registry
                out.schema, out.table, out.key = seen
                self._add(tp, msg, out)
                return
            rec = out
            raw = self._configured.get(msg.topic)
            configured = self.router.route(*raw) if raw is not None else None
            try:
                found = await self._retrying(
                    lambda: self._tombstone_target(msg.topic, [rec.key, *rec.alt_keys],
                                                   msg.offset, configured),
                    "tombstone table lookup", pause=True)
            except RecordError as exc:
                self._bad(tp, msg, exc)
                return
            if generation != self._generation():
                return
            if found is None:  # no table this topic fed has the key: nothing to delete
                self._skip(tp, msg, "tombstone_unknown_table")
                return
            out.schema, out.table, out.key = found.schema, found.table, found.key
        else:
            out.schema, out.table = self.router.route(out.schema, out.table)
            if msg.key is not None:
                self.recent.note(msg.topic, msg.key, out)
        self._add(tp, msg, out)

    def _add(self, tp: TopicPartition, msg: Any, out: Record) -> None:
        size = len(msg.key or b"") + len(msg.value or b"")
        out.topic, out.partition, out.offset, out.size = msg.topic, msg.partition, msg.offset, size
        self.batcher.add(tp, msg.offset, size, out, msg)

    def _skip(self, tp: TopicPartition, msg: Any, reason: str) -> None:
        self.metrics.skipped.labels(reason).inc()
        self.batcher.skipped(tp, msg.offset, len(msg.key or b"") + len(msg.value or b""))

    def _bad(self, tp: TopicPartition, msg: Any, exc: WarpError) -> None:
        letter = DeadLetter(
            topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key,
            value=msg.value, headers=list(msg.headers or ()), error=exc, stage=_stage(exc),
        )
        schema, table = getattr(exc, "schema", None), getattr(exc, "table", None)
        if schema is not None and table is not None:  # the envelope named its table
            letter.schema, letter.table = self.router.route(schema, table)
        self.batcher.add_bad(tp, msg.offset, len(msg.key or b"") + len(msg.value or b""),
                             letter)


def _stage(exc: WarpError) -> str:
    return "KEY_CONVERTER" if exc.code.startswith("bad_key") or "key" in exc.code else (
        "VALUE_CONVERTER")


__all__ = ["Intake"]
