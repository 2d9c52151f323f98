"""The sink service: consume → decode → buffer → apply (one PostgreSQL transaction,
offsets included) → commit to Kafka. One direction, one loop.

Guarantees, in the order they are kept:
- a partition's offset is stored in PostgreSQL in the transaction that applies its
  records, and only moves from the value this instance last saw (a zombie that lost
  the partition is fenced and rolls back);
- the Kafka commit follows the PostgreSQL commit (for lag tooling only);
- a record is dead-lettered only after the broker acked it, before the transaction
  that moves its offset commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from sink.config import Settings
from sink.decode import DecoderOptions, MessageDecoder, SchemaRegistry
from sink.errors import FatalError
from sink.metrics import HealthServer, Metrics
from sink.postgres import BadRecords, OffsetConflict, Router
from sink.service import access, kafka
from sink.service.batcher import Batcher, FlushUnit
from sink.service.catchup import CatchUp
from sink.service.commits import KafkaCommitter
from sink.service.dead_letters import DeadLetterQueue, letter_for
from sink.service.destination import destination
from sink.service.intake import Intake
from sink.service.ownership import Ownership, RebalanceListener
from sink.service.progress import PROGRESS_ENV, Progress
from sink.service.readiness import DestinationProbe, readiness
from sink.service.report import report_flush, report_lag
from sink.service.retry import retrying
from sink.service.shutdown import close_within, describe_unapplied, supervise

log = structlog.get_logger("sink.service")
T = TypeVar("T")
_YIELD_EVERY = 64  # messages decoded between turns given to the flush in flight
_ABORT_WAIT_S = 1.0  # for cancelled work to unwind, once shutdown_timeout has passed
_CLOSE_WAIT_S = 2.0  # for each client to close


class Sink:
    def __init__(
        self, settings: Settings, *, until_caught_up: bool = False, force_replay: bool = False
    ) -> None:
        self.s = settings
        self.until_caught_up = until_caught_up
        self.force = force_replay
        self.pg = destination(settings)
        self.router = Router(settings.mapping)
        src = settings.source
        self.decoder = MessageDecoder(
            DecoderOptions(truncate=settings.mapping.truncate,
                           topic_tables=self.router.topic_tables(),
                           keyless=settings.mapping.keyless,
                           keyless_tables=settings.mapping.keyless_tables),
            key_format=src.key_format, value_format=src.value_format,
            registry=SchemaRegistry.from_config(src) if src.schema_registry_url else None,
        )
        self.metrics = Metrics()
        # aiokafka clients bind to the running loop: created in run().
        self.consumer: Any = None
        self.dlq: Any = None
        self.commits = KafkaCommitter(lambda: self.consumer, lambda: self.assignment,
                                      lambda done: report_lag(self.metrics, self.consumer, done))
        self.batcher = Batcher(settings.batch, settings.max_batch_records)
        self.intake = Intake(self.decoder, self.router, self.batcher, self.metrics,
                             tombstone_target=self.pg.tombstone_target,
                             retrying=self._retrying, generation=lambda: self._generation,
                             recent=max(10_000, 3 * settings.max_batch_records))
        self.owner: Ownership | None = None  # made in run(), with the consumer
        self.catchup = CatchUp()
        self.progress: Progress | None = None
        self._flush_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._heartbeat = time.monotonic()
        self._inflight: asyncio.Task[None] | None = None
        self._applying: FlushUnit | None = None  # the unit a transaction is applying
        self._running = False  # past start-up: consuming, so a stop drains
        self._aborted = False
        self._generation = 0  # bumped when partitions are sought back (offset conflict)
        self._last_house = 0.0
        self._next_purge = 0.0
        self.probe = DestinationProbe(self.pg.test_connection)
        self.health = HealthServer(
            self.metrics, self._alive,
            lambda: readiness(self.pg.connected, self.probe.ok, self.owner))
        self.metrics.on_render.append(
            lambda: self.metrics.pool(self.pg.database, *self.pg.pool_stats()))

    # --- lifecycle ---------------------------------------------------------------

    async def run(self) -> int:
        self.consumer = kafka.consumer(self.s.source,
                                       max_poll_records=self.s.max_batch_records,
                                       flush_seconds=self.s.shutdown_timeout)
        self.dlq = DeadLetterQueue(
            lambda: kafka.producer(self.s.source, max_request_size=self.s.dlq_max_bytes),
            self.s.dlq_topic,
            refused=lambda exc: access.raise_if_refused(exc, self.s.source,
                                                        dlq=self.s.dlq_topic))
        self.owner = Ownership(self.consumer, self.pg, self.batcher,
                               group_id=self.s.source.group_id,
                               auto_offset_reset=self.s.source.auto_offset_reset,
                               retry=self._retrying)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        obs = self.s.observability
        if obs.metrics_port:
            await self.health.start(obs.metrics_host, obs.metrics_port)
        main = asyncio.create_task(self._serve(), name="sink")
        try:
            return await supervise(
                main, self._stopping, deadline=self.s.shutdown_timeout,
                consuming=lambda: self._running,
                unapplied=lambda: describe_unapplied(self.batcher, self._applying),
                abort=lambda: self._abort(main), close=lambda: self._close(abort=False))
        except BaseException:
            await self._abort(main)  # run() itself cancelled (a no-op after supervise's)
            raise
        finally:
            await self._stop_progress(final=False)
            await self.probe.stop()
            await self.health.stop()

    async def _serve(self) -> None:
        await self._retrying(self.pg.connect, "postgresql connect")
        self.probe.start()
        await self._start_consumer()
        await self._start_progress()
        self._running = True
        await self._loop()
        await self._drain()
        await self._stop_progress(final=True)  # the figures need PostgreSQL: before closing

    async def _abort(self, main: asyncio.Task[None]) -> None:
        """Cancel the loop and the flush in flight (its transaction rolls back: nothing
        half-applied), and close the clients without waiting on the servers for long."""
        if self._aborted:
            return
        self._aborted = True
        work = [t for t in (main, self._inflight) if t is not None and not t.done()]
        for task in work:
            task.cancel()
        self.commits.cancel()
        if work:  # a rollback on a frozen server never answers: don't wait for it
            await asyncio.wait(work, timeout=_ABORT_WAIT_S)
        await self._close(abort=True)

    async def _start_progress(self) -> None:
        if os.environ.get(PROGRESS_ENV) == "off":
            return  # a worker of `run --workers N`: the parent shows the group's view
        src = self.s.source
        self.progress = Progress(
            self.metrics, lambda topics: self.pg.load_offsets(src.group_id, topics),
            interval=self.s.observability.progress_interval_seconds)
        if self.until_caught_up:
            starts = await self._retrying(
                lambda: self.catchup.starts(self.consumer, self.pg, src.group_id,
                                            src.auto_offset_reset), "progress start")
            self.progress.target(starts, self.catchup.end_offsets)
        self.progress.show()

    async def _stop_progress(self, *, final: bool) -> None:
        if self.progress is not None:
            await self.progress.stop(final=final)

    def stop(self) -> None:
        """Ask the loop to stop: no more fetching, then drain and commit."""
        self._stopping.set()

    @property
    def assignment(self) -> set[TopicPartition]:
        return self.owner.assignment if self.owner is not None else set()

    async def _start_consumer(self) -> None:
        src = self.s.source
        assert self.owner is not None
        listener = RebalanceListener(self.owner, self.flush, self.s.shutdown_timeout)
        if src.subscription_pattern:
            self.consumer.subscribe(pattern=src.subscription_pattern, listener=listener)
        else:
            self.consumer.subscribe(topics=src.topics, listener=listener)
        await self._retrying(lambda: access.start_consumer(self.consumer, src), "kafka connect")
        if self.until_caught_up:
            await self.catchup.snapshot(src, self.consumer)

    async def _drain(self) -> None:
        if self._inflight is not None:
            await self._inflight
            self._inflight = None
        await self.flush()

    async def _close(self, *, abort: bool) -> None:
        """Leave the group, flush the DLQ producer, close the pool: each bounded, so a
        broker or a PostgreSQL that does not answer delays the exit by seconds at most."""
        if self.consumer is not None:
            await close_within(_CLOSE_WAIT_S, self.consumer.stop())
        if self.dlq is not None:
            await close_within(_CLOSE_WAIT_S, self.dlq.stop())
        if abort:
            self.pg.terminate()
        else:
            await self.pg.disconnect(within=_CLOSE_WAIT_S)

    # --- the loop --------------------------------------------------------------

    async def _loop(self) -> None:
        s = self.s
        while not self._stopping.is_set():
            self._heartbeat = time.monotonic()
            self._reap()
            self._owner.raise_failure()
            try:
                batch = await self.consumer.getmany(
                    timeout_ms=100, max_records=s.max_batch_records
                )
            except KafkaError as exc:
                if fatal := access.refused(exc, s.source):
                    raise fatal from None
                log.warning("fetch failed, retrying", error=str(exc))
                await asyncio.sleep(0.5)
                continue
            generation = self._generation
            batcher, n, accept = self.batcher, 0, self.intake.accept
            for tp, messages in batch.items():
                for msg in messages:
                    # A re-seek (offset conflict) makes what was fetched before it stale.
                    if tp not in self.assignment or generation != self._generation:
                        break
                    slow = accept(tp, msg)
                    if slow is not None:
                        await slow
                    n += 1
                    if batcher.full():
                        await self._flush_behind()
                    elif n % _YIELD_EVERY == 0 and self._inflight is not None:
                        # A fetch that is already buffered returns without suspending, so
                        # without this the flush in flight would not advance past its
                        # next PostgreSQL round trip until this whole fetch is decoded.
                        await asyncio.sleep(0)
            if self._due():
                await self._flush_behind()
            await self._housekeeping()
            if self.until_caught_up and await self.catchup.reached(
                    self._owner, self.batcher, self.consumer, self.pg):
                log.info("caught up with the end offsets seen at start")
                return
        self.consumer.pause(*self.assignment)

    async def _flush_behind(self) -> None:
        """Apply what is buffered in a task, so the next batch is fetched and decoded
        while PostgreSQL writes this one. One unit in flight at most: when the next is due
        before the current is applied, wait (backpressure: the loop stops fetching, and
        aiokafka holds at most one fetch per partition ahead)."""
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
            self._reap()
        self._inflight = asyncio.create_task(self._flush_unit(), name="flush")
        await asyncio.sleep(0)  # the task takes the buffers now, not after the next fetch

    def _reap(self) -> None:
        """Surface the result of a finished flush task (a FatalError stops the loop)."""
        task = self._inflight
        if task is not None and task.done():
            self._inflight = None
            task.result()

    async def _housekeeping(self) -> None:
        """Once a second: lag gauges (also while idle); and for ``deletion_strategy: both``,
        the purge of rows soft-deleted longer than ``hard_delete_after``."""
        now = time.monotonic()
        if now - self._last_house < 1.0:
            return
        self._last_house = now
        for tp in self.assignment:
            hw = self.consumer.highwater(tp)
            if hw is None:
                continue
            done = self._owner.expected.get(tp)
            applied = done if done is not None else await self.consumer.position(tp)
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, hw - applied))
        if self.pg.deletion_strategy == "both" and now >= self._next_purge:
            interval = min(3600.0, max(60.0, self.pg.hard_delete_after.total_seconds() / 10))
            self._next_purge = now + interval
            try:
                purged = await self.pg.purge_soft_deleted()
            except Exception as exc:  # a failed purge is retried later
                log.warning("purge of soft-deleted rows failed; will retry", error=str(exc))
                self._next_purge = now + 60
            else:
                if purged:
                    log.info("purged soft-deleted rows", rows=purged)

    def _due(self) -> bool:
        self.metrics.buffered_bytes.set(self.batcher.nbytes)
        return self.batcher.due()

    # --- flushing ---------------------------------------------------------------

    async def flush(self, only: set[TopicPartition] | None = None) -> None:
        """Apply what is buffered (for ``only`` these partitions) and wait until Kafka has
        the offsets too: used on revoke and on shutdown."""
        await self._flush_unit(only)
        await self.commits.settle()

    async def _flush_unit(self, only: set[TopicPartition] | None = None) -> None:
        async with self._flush_lock:
            unit = self.batcher.take(only)
            if unit is not None:
                self._applying = unit
                try:
                    await self._apply(unit)
                finally:
                    self._applying = None
                    self.batcher.done(unit)

    async def _apply(self, unit: FlushUnit) -> None:
        errs = self.s.errors
        if unit.letters and errs.tolerance == "none":
            dl = unit.letters[0]
            raise FatalError(f"undecodable record at {dl.topic}[{dl.partition}]@{dl.offset}: "
                             f"{dl.error.code}: {dl.error.message}")
        offsets = self._owner.moves(unit.next_offsets)
        sent = False

        async def on_bad(failed: BadRecords) -> None:
            if errs.tolerance == "none":
                rec, err = failed[0]
                raise FatalError(f"record at {rec.topic}[{rec.partition}]@{rec.offset} refused "
                                 f"by PostgreSQL: {err.code}: {err.message}")
            await self.dlq.deliver(self.metrics,
                                   [letter_for(unit.raw, r, e) for r, e in failed])

        async def once() -> Any:
            nonlocal sent
            if unit.letters and not sent:  # acked before the offsets move past them
                await self.dlq.deliver(self.metrics, unit.letters)
                sent = True
            return await self.pg.apply(unit.records, offsets, self.s.source.group_id,
                                       force=self.force, on_bad=on_bad)

        try:
            result = await self._retrying(once, "apply", pause=True)
        except OffsetConflict as exc:
            log.warning("a partition's stored offset moved under us (another instance owns "
                        "it now); re-reading from the stored offsets", reason=str(exc))
            # The loop drops what it fetched before this (every partition's, not only the
            # unit's) and buffers of other partitions may hold records fetched alongside:
            # every owned partition is read again from its stored offset.
            self._generation += 1
            await self._owner.resync(self.assignment | set(unit.partitions))
            return
        self._owner.applied(unit.next_offsets)
        self.probe.answered()
        self.metrics.committed()
        self.metrics.pool(self.pg.database, *self.pg.pool_stats())
        report_flush(self.metrics, result, unit.records)
        self.commits.hand_over(dict(unit.next_offsets))

    async def _retrying(self, fn: Callable[[], Awaitable[T]], what: str, *,
                        pause: bool = False) -> T:
        """Retry transient failures; with ``pause``, fetching stops while retrying and resumes
        however it ends (an OffsetConflict met by the retry of a flush whose COMMIT went
        through unacknowledged left the partitions paused for good)."""
        paused = False

        def failed(exc: BaseException) -> None:
            nonlocal paused
            self.metrics.errors.labels("", "", getattr(exc, "code", "kafka")).inc()
            self._heartbeat = time.monotonic()  # waiting on purpose is not a stall
            if pause:
                self.consumer.pause(*self.assignment)
                paused = True

        try:
            return await retrying(fn, what, self.s.errors, on_failure=failed)
        finally:
            if paused:
                self.consumer.resume(*self.assignment)

    @property
    def _owner(self) -> Ownership:
        assert self.owner is not None, "run() makes the owner"
        return self.owner

    # --- health -----------------------------------------------------------------

    def _alive(self) -> bool:
        return time.monotonic() - self._heartbeat < max(60.0, self.s.shutdown_timeout * 2)


__all__ = ["Sink"]
