"""The dead-letter topic: failed records with their original bytes and the reason.

Headers use Kafka Connect's names (``__connect.errors.*``) so existing DLQ tooling
reads them, plus ``warp.*`` headers of our own. A record's offset moves only after
the broker acknowledged its dead letter (the caller awaits `send`).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from sink.errors import WarpError
from sink.logs import scrub

SINK_VERSION = "0.1.0"


@dataclass(slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    error: WarpError
    stage: str  # KEY_CONVERTER | VALUE_CONVERTER | TASK_PUT
    schema: str | None = None
    table: str | None = None


def headers_for(dl: DeadLetter) -> list[tuple[str, bytes]]:
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


class DeadLetterQueue:
    """Produces dead letters; the producer is made on first use (most runs never need it)."""

    def __init__(self, make_producer: Callable[[], AIOKafkaProducer], topic: str) -> None:
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

    async def send(self, letters: list[DeadLetter]) -> None:
        """Send and wait until the broker acknowledged every letter."""
        if not letters:
            return
        producer = await self.start()
        futures = [
            await producer.send(
                self.topic, key=dl.key, value=dl.value, headers=headers_for(dl)
            )
            for dl in letters
        ]
        await asyncio.gather(*futures)
