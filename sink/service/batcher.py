"""Per-partition buffers between the decoder and the writer, and when to flush them.

A partition's buffer holds its decoded records in offset order, the dead letters
found while decoding, the original bytes (for dead letters of write failures), and
the offset after the last message seen — skipped messages advance it too, so the
stored offset always covers everything read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from sink.config import BatchConfig
from sink.records import Record
from sink.service.dead_letters import DeadLetter

# The consumer's message as fetched (aiokafka ``ConsumerRecord``: key, value, headers),
# kept by reference until its flush commits, for the dead letter of a write failure.
Raw = Any


@dataclass(slots=True)
class Buffer:
    records: list[Record] = field(default_factory=list)
    bad: list[DeadLetter] = field(default_factory=list)
    raw: dict[int, Raw] = field(default_factory=dict)  # offset -> the fetched message
    next_offset: int | None = None  # None: nothing read since the last flush
    nbytes: int = 0
    count: int = 0  # messages read, skipped ones included
    since: float = 0.0


@dataclass(slots=True)
class FlushUnit:
    """What one transaction applies: records and dead letters of some partitions, and
    each partition's next offset."""

    partitions: list[TopicPartition]
    records: list[Record]
    letters: list[DeadLetter]
    next_offsets: dict[TopicPartition, int]
    raw: dict[tuple[TopicPartition, int], Raw] = field(default_factory=dict)


class Batcher:
    def __init__(self, cfg: BatchConfig, max_records: int) -> None:
        self.cfg = cfg
        self.max_records = max_records
        self.buffers: dict[TopicPartition, Buffer] = {}
        self.inflight: set[TopicPartition] = set()  # taken by a unit being applied
        self.count = 0  # messages buffered (not yet taken), skipped ones included
        self.nbytes = 0  # bytes of the messages buffered (not yet taken)
        self.max_bytes = min(cfg.max_bytes, cfg.max_buffered_bytes)

    def _buffer(self, tp: TopicPartition, offset: int, size: int) -> Buffer:
        buf = self.buffers.get(tp)
        if buf is None:
            buf = self.buffers[tp] = Buffer()
        if buf.next_offset is None:
            buf.since = time.monotonic()
        buf.next_offset = offset + 1
        buf.nbytes += size
        buf.count += 1
        self.nbytes += size
        self.count += 1
        return buf

    def skipped(self, tp: TopicPartition, offset: int, size: int) -> None:
        self._buffer(tp, offset, size)

    def add(self, tp: TopicPartition, offset: int, size: int, record: Record, raw: Raw) -> None:
        buf = self._buffer(tp, offset, size)
        buf.records.append(record)
        buf.raw[offset] = raw

    def add_bad(self, tp: TopicPartition, offset: int, size: int, letter: DeadLetter) -> None:
        self._buffer(tp, offset, size).bad.append(letter)

    def pending(self, tp: TopicPartition) -> bool:
        """Read but not yet applied (buffered, or in a unit being applied)."""
        buf = self.buffers.get(tp)
        return tp in self.inflight or (buf is not None and buf.next_offset is not None)

    def full(self) -> bool:
        """Over max_records or max_bytes: flush now, not at the end of the fetch."""
        return self.count >= self.max_records or self.nbytes >= self.max_bytes

    def due(self) -> bool:
        """Flush on size, bytes or age: whichever comes first."""
        if self.count == 0:
            return False
        if self.full():
            return True
        oldest = min(b.since for b in self.buffers.values() if b.next_offset is not None)
        return (time.monotonic() - oldest) * 1000 >= self.cfg.max_age_ms

    def take(self, only: set[TopicPartition] | None = None) -> FlushUnit | None:
        """Move the buffered partitions (all, or ``only``) into a unit to apply. New
        messages go to fresh buffers meanwhile; `done` releases the unit's partitions."""
        tps = [tp for tp, b in self.buffers.items()
               if b.next_offset is not None and (only is None or tp in only)]
        if not tps:
            return None
        bufs = [(tp, self.buffers.pop(tp)) for tp in tps]
        for _, b in bufs:
            self.nbytes -= b.nbytes
            self.count -= b.count
        self.inflight.update(tps)
        return FlushUnit(
            partitions=tps,
            records=[r for _, b in bufs for r in b.records],
            letters=[dl for _, b in bufs for dl in b.bad],
            next_offsets={tp: b.next_offset or 0 for tp, b in bufs},
            raw={(tp, off): raw for tp, b in bufs for off, raw in b.raw.items()},
        )

    def done(self, unit: FlushUnit) -> None:
        self.inflight.difference_update(unit.partitions)

    def drop(self, tps: list[TopicPartition] | set[TopicPartition]) -> None:
        """Forget buffered partitions (applied, or to be read again)."""
        for tp in tps:
            buf = self.buffers.pop(tp, None)
            if buf is not None:
                self.nbytes -= buf.nbytes
                self.count -= buf.count
