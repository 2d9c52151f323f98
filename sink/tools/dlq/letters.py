"""Reading the dead-letter topic: :class:`Letter`, one of its records with the headers
the DLQ producer (:mod:`sink.service.dead_letters`) added, and :func:`scan`, which
reads topic partitions up to the end offsets seen when it starts, with a consumer in no
group (assign + seek: nothing is committed, no group is joined)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from sink.errors import WarpError
from sink.tools.clients import KAFKA_TIMEOUT, offsets_of

ERROR_HEADER_PREFIXES = ("__connect.errors.", "warp.")


@dataclass
class Letter:
    """One record of the DLQ topic, with its headers decoded."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    # A header's value may be null (Kafka tells null from empty): kept as None.
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)

    @classmethod
    def of(cls, rec: Any) -> Letter:
        return cls(rec.topic, rec.partition, rec.offset, rec.timestamp, rec.key, rec.value,
                   [(k, None if v is None else bytes(v)) for k, v in (rec.headers or ())])

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` as text; None when absent or null."""
        found = None
        for k, v in self.headers:
            if k == name:
                found = None if v is None else v.decode("utf-8", errors="replace")
        return found

    def header_int(self, name: str) -> int | None:
        text = self.header(name)
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None

    @property
    def source_topic(self) -> str | None:
        return self.header("__connect.errors.topic")

    @property
    def error_code(self) -> str | None:
        return self.header("warp.error.code")

    @property
    def ref(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def truncated(self) -> bool:
        """The DLQ topic refused the whole record: only a prefix of its value is here."""
        return self.header("warp.value.truncated") == "true"

    def original_headers(self) -> list[tuple[str, bytes | None]]:
        """The record's own headers: everything the DLQ producer did not add."""
        return [(k, v) for k, v in self.headers if not k.startswith(ERROR_HEADER_PREFIXES)]

    def matches(self, topic: str | None, code: str | None) -> bool:
        return (topic is None or self.source_topic == topic) and (
            code is None or self.error_code == code
        )


async def scan(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    start: dict[TopicPartition, int] | None = None,
) -> AsyncGenerator[Any, None]:
    """Yield the records of ``tps``, partition by partition in offset order, from ``start``
    (default: the log start) to the end offsets seen now."""
    begin, end = await offsets_of(consumer, tps)
    for tp in sorted(tps):
        first = max(begin[tp], (start or {}).get(tp, begin[tp]))
        if first >= end[tp]:
            continue
        consumer.assign([tp])
        consumer.seek(tp, first)
        last_progress = time.monotonic()
        while await consumer.position(tp) < end[tp]:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=500)
            records = batch.get(tp, [])
            if records:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > KAFKA_TIMEOUT:
                raise WarpError(f"reading {tp.topic}[{tp.partition}] made no progress for "
                                f"{KAFKA_TIMEOUT:.0f} s")
            for rec in records:
                if rec.offset >= end[tp]:
                    break
                yield rec
