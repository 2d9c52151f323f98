"""The dead-letter topic: failed records with their original bytes and the reason.

Headers use Kafka Connect's names (``__connect.errors.*``) so existing DLQ tooling
reads them, plus ``warp.*`` headers of our own. A record's offset moves only after
the broker acknowledged its dead letter (the caller awaits `send`).

Any record the consumer could read can be dead-lettered: the producer's
``max_request_size`` is ``errors.dlq_max_bytes``; a letter the broker still refuses as too
large (the DLQ topic's ``max.message.bytes``) goes again with its value (and a very large
key) cut to a prefix, its headers whole, and ``warp.value.truncated: true`` — the
original stays in the source topic at the coordinates the headers name. A record with
neither key nor value (Kafka allows it, the producer does not) carries an empty value and
``warp.value.null: true``.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

from sink.errors import FatalError, WarpError
from sink.logs import scrub
from sink.metrics import Metrics
from sink.records import Record

log = structlog.get_logger("sink.dlq")
SINK_VERSION = "0.1.0"
TRUNCATED = "warp.value.truncated"
KEY_TRUNCATED = "warp.key.truncated"
ORIGINAL_BYTES = "warp.value.original.bytes"
NULL_VALUE = "warp.value.null"
# What a refused letter keeps of its value, tried in turn: 512 KiB fits the broker's
# default max.message.bytes (1 MiB) with room for headers; then less; then nothing.
_TRUNCATE_STEPS = (512 * 1024, 32 * 1024, 0)
_KEY_KEEP = 16 * 1024  # a key is kept whole up to this when the value is cut
_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)


@dataclass(slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    error: WarpError
    stage: str  # KEY_CONVERTER | VALUE_CONVERTER | TASK_PUT
    schema: str | None = None
    table: str | None = None


def headers_for(dl: DeadLetter) -> list[tuple[str, bytes | None]]:
    err = dl.error
    trace = "".join(traceback.format_exception(err)) if err.__traceback__ else repr(err)
    own = [
        ("__connect.errors.topic", dl.topic),
        ("__connect.errors.partition", str(dl.partition)),
        ("__connect.errors.offset", str(dl.offset)),
        ("__connect.errors.stage", dl.stage),
        ("__connect.errors.exception.class.name", type(err).__name__),
        ("__connect.errors.exception.message", scrub(err.message)[:4000]),
        ("__connect.errors.exception.stacktrace", scrub(trace)[-8000:]),
        ("warp.error.code", err.code),
        ("warp.schema", dl.schema or ""),
        ("warp.table", dl.table or ""),
        ("warp.sink.version", SINK_VERSION),
        ("warp.timestamp", str(int(time.time() * 1000))),
    ]
    kept = [(k, v) for k, v in dl.headers if not k.startswith(("__connect.errors.", "warp."))]
    return kept + [(k, v.encode("utf-8")) for k, v in own]


def letter_for(raw: Mapping[tuple[TopicPartition, int], Any], rec: Record,
               err: WarpError) -> DeadLetter:
    """The dead letter of a record PostgreSQL refused: the original message's bytes and
    headers (from ``raw``, the flush unit's messages by partition and offset)."""
    msg = raw.get((TopicPartition(rec.topic or "", rec.partition or 0), rec.offset or 0))
    return DeadLetter(
        topic=rec.topic or "", partition=rec.partition or 0, offset=rec.offset or 0,
        key=msg.key if msg else None, value=msg.value if msg else None,
        headers=list(msg.headers or ()) if msg else [], error=err, stage="TASK_PUT",
        schema=rec.schema, table=rec.table,
    )


class DeadLetterQueue:
    """Produces dead letters; the producer is made on first use (most runs never need it)."""

    def __init__(self, make_producer: Callable[[], AIOKafkaProducer], topic: str, *,
                 refused: Callable[[Exception], Awaitable[None]] | None = None) -> None:
        """``refused``: raises the FatalError behind a send failure a person must fix (an
        ACL denial on the DLQ topic), or returns to let the failure go to the retries."""
        self.refused = refused
        self._make = make_producer
        self.producer: AIOKafkaProducer | None = None
        self.topic = topic

    async def start(self) -> AIOKafkaProducer:
        if self.producer is None:
            producer = self._make()
            await producer.start()
            self.producer = producer
        return self.producer

    async def stop(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()

    async def deliver(self, metrics: Metrics, letters: list[DeadLetter]) -> None:
        """:meth:`send`, then count and log each letter (the operator's trail)."""
        try:
            await self.send(letters)
        except Exception as exc:
            if self.refused is not None:
                await self.refused(exc)
            raise
        for dl in letters:
            metrics.dlq_records.labels(dl.topic, dl.error.code).inc()
            metrics.errors.labels(dl.schema or "", dl.table or "", dl.error.code).inc()
            log.warning("record dead-lettered", topic=dl.topic, partition=dl.partition,
                        offset=dl.offset, error_code=dl.error.code, reason=dl.error.message,
                        dlq_topic=self.topic)

    async def send(self, letters: list[DeadLetter]) -> None:
        """Send and wait until the broker acknowledged every letter."""
        if not letters:
            return
        producer = await self.start()
        sent: list[Any] = []
        for dl in letters:
            try:
                sent.append(await producer.send(self.topic, **_record(dl)))
            except _TOO_LARGE as exc:  # over max_request_size: refused before sending
                sent.append(_raise(exc))
        results = await asyncio.gather(*sent, return_exceptions=True)
        if not any(isinstance(r, _TOO_LARGE) for r in results):
            failure = next((r for r in results if isinstance(r, BaseException)), None)
            if failure is not None:
                raise failure
            return
        # After a refusal, batches sent behind it fail too (sequence numbers): send each
        # letter not acknowledged again, alone, cutting only what is still refused.
        for dl, res in zip(letters, results, strict=True):
            if isinstance(res, BaseException):
                await self._send_cut(dl)

    async def _renew(self) -> AIOKafkaProducer:
        """A fresh producer after a refused batch: aiokafka's idempotent producer counted
        the refused batch's sequence numbers, the broker did not, and every later batch
        would fail OutOfOrderSequenceNumber."""
        await self.stop()
        return await self.start()

    async def _send_cut(self, dl: DeadLetter) -> None:
        """A letter refused as too large: alone first (it may only have shared a batch with
        a large one), then with its value cut shorter at each refusal. Never retried as
        is: the broker gives the same answer to the same bytes."""
        last: BaseException | None = None
        for keep in (None, *_TRUNCATE_STEPS):
            producer = await self._renew()
            try:
                await (await producer.send(self.topic, **_record(dl, keep)))
            except _TOO_LARGE as exc:
                last = exc
                continue
            if keep is not None:
                log.warning("dead letter too large for the DLQ topic: value truncated",
                            topic=dl.topic, partition=dl.partition, offset=dl.offset,
                            value_bytes=len(dl.value or b""), kept_bytes=keep,
                            dlq_topic=self.topic)
            return
        await self._renew()
        raise FatalError(
            f"the DLQ topic {self.topic} refuses the dead letter of {dl.topic}"
            f"[{dl.partition}]@{dl.offset} even without its value ({last}): its "
            "max.message.bytes is below the size of the error headers")


def _record(dl: DeadLetter, keep: int | None = None) -> dict[str, Any]:
    """The producer arguments of a dead letter; ``keep``: bytes of the value kept."""
    key, value, headers = dl.key, dl.value, headers_for(dl)
    if keep is not None:
        original = len(value or b"")
        if value is not None and len(value) > keep:
            value = value[:keep]
            headers += [(TRUNCATED, b"true"), (ORIGINAL_BYTES, str(original).encode())]
        if key is not None and len(key) > max(keep, _KEY_KEEP):
            key = key[:max(keep, _KEY_KEEP)]
            headers.append((KEY_TRUNCATED, b"true"))
    if key is None and value is None:
        value = b""
        headers.append((NULL_VALUE, b"true"))
    return {"key": key, "value": value, "headers": headers}


async def _raise(exc: BaseException) -> Any:
    raise exc
