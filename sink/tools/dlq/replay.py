"""``warp-sink dlq replay``: produce dead letters again, with their original key, value and
headers (plus ``warp.replayed.from``), to their source topic (same partition) or
``--to-topic``, once each through the ledger (:mod:`sink.tools.dlq.ledger`). One replay per DLQ
topic runs at a time (a PostgreSQL advisory lock), so a claim another run is still
producing is never mistaken for a lost one."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sink.config import Settings
from sink.errors import ConfigError, WarpError
from sink.service import kafka_producer, terminal_bar
from sink.tools.clients import (
    admin_client,
    offsets_of,
    pg_connect,
    reader,
    start,
    topic_partitions,
)
from sink.tools.common import settings_from
from sink.tools.dlq.ledger import (
    REPLAYED_FROM,
    Claim,
    Ledger,
    claim,
    ensure_ledger,
    find_replayed,
    load_ledger,
    mark_done,
    settle_pending,
)
from sink.tools.dlq.letters import Letter, scan

REPLAY_BATCH = 200
SUMMARY_EVERY_S = 5.0


@dataclass
class Plan:
    letter: Letter
    target: str
    partition: int | None

    @property
    def key(self) -> Claim:
        return (self.letter.partition, self.letter.offset, self.target)


@dataclass
class Tally:
    read: int = 0
    matched: int = 0
    replayed: int = 0
    already: int = 0
    no_target: int = 0
    truncated: int = 0
    failed: int = 0


class _Output:
    """Per-letter lines and the progress of a replay. On a terminal, one live line on
    stderr (the per-letter lines are written around it); elsewhere a summary line on
    stderr every ``SUMMARY_EVERY_S``."""

    def __init__(self, total: int | None, tally: Tally) -> None:
        """``total`` None: plain lines only (before the DLQ's size is known)."""
        self.tally = tally
        self.total = total
        self.bar = terminal_bar(total, sys.stderr, unit="letter") \
            if total is not None and sys.stderr.isatty() else None
        self.next_summary = time.monotonic() + SUMMARY_EVERY_S

    def say(self, text: str, *, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        if self.bar is not None:
            self.bar.write(text, file=stream)
        else:
            print(text, file=stream)

    def _figures(self) -> str:
        return f"replayed {self.tally.replayed} · failed {self.tally.failed}"

    def read_one(self) -> None:
        t = self.tally
        if self.bar is not None:
            self.bar.set_postfix_str(self._figures(), refresh=False)
            self.bar.update(1)
        elif time.monotonic() >= self.next_summary:
            self.next_summary = time.monotonic() + SUMMARY_EVERY_S
            print(f"dlq replay: read {t.read} of {self.total}, replayed {t.replayed}, "
                  f"failed {t.failed}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self._figures())  # the last flush's results
            self.bar.close()


async def _failed(exc: Exception) -> Any:
    raise exc


class Replayer:
    def __init__(self, settings: Settings, conn: asyncpg.Connection, dlq: str,
                 dry_run: bool) -> None:
        self.src = settings.source
        self.max_bytes = settings.dlq_max_bytes
        self.schema = settings.destination.metadata_schema
        self.conn = conn
        self.dlq = dlq
        self.dry_run = dry_run
        self.producer: AIOKafkaProducer | None = None
        self.tally = Tally()
        self.out = _Output(None, self.tally)

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def flush(self, batch: list[Plan]) -> None:
        if not batch:
            return
        if self.dry_run:
            for plan in batch:
                where = plan.target + (f"[{plan.partition}]" if plan.partition is not None
                                       else "")
                self.out.say(f"would replay {plan.letter.ref} -> {where}")
            self.tally.replayed += len(batch)
            return
        if self.producer is None:
            producer = kafka_producer(self.src, max_request_size=self.max_bytes)
            await start(producer, self.src)
            self.producer = producer
        # The claim, committed before anything is produced.
        await claim(self.conn, self.schema, self.dlq, [p.key for p in batch],
                    int(time.time() * 1000))
        sent: list[Awaitable[Any]] = []
        for plan in batch:
            dl = plan.letter
            headers = [*dl.original_headers(), (REPLAYED_FROM, dl.ref.encode("utf-8"))]
            try:
                sent.append(await self.producer.send(
                    plan.target, key=dl.key, value=dl.value, headers=headers,
                    partition=plan.partition,
                ))
            except Exception as exc:  # refused before sending (e.g. too large)
                sent.append(_failed(exc))
        results = await asyncio.gather(*sent, return_exceptions=True)
        done: list[tuple[Claim, tuple[int, int]]] = []
        for plan, res in zip(batch, results, strict=True):
            if isinstance(res, BaseException):
                self.tally.failed += 1
                self.out.say(f"FAILED {plan.letter.ref} -> {plan.target}: "
                             f"{type(res).__name__}: {res}", err=True)
                continue  # the claim stays pending: the next run settles it
            done.append((plan.key, (res.partition, res.offset)))
            self.out.say(
                f"replayed {plan.letter.ref} -> {plan.target}[{res.partition}]@{res.offset}")
        await mark_done(self.conn, self.schema, self.dlq, done)
        self.tally.replayed += len(done)


async def replay(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit must be 0 or more")
    settings = settings_from(args)
    src = settings.source
    schema = settings.destination.metadata_schema
    dlq = str(args.dlq_topic or settings.dlq_topic)
    async with admin_client(src) as admin, reader(src) as consumer:
        cluster = await topic_partitions(admin)
        if args.to_topic is not None and args.to_topic not in cluster:
            raise ConfigError(f"--to-topic {args.to_topic} does not exist")
        if args.to_topic == dlq:
            raise ConfigError("--to-topic is the DLQ topic itself")
        if dlq not in cluster:
            print(f"DLQ topic {dlq} does not exist: nothing to replay")
            return 0
        async with pg_connect(settings) as conn:
            lock = f"warp.dlq_replay:{schema}:{dlq}"
            if not args.dry_run:
                await ensure_ledger(conn, schema)
                got = await conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", lock)
                if not got:
                    raise WarpError(f"another replay of {dlq} is running")
            replayer = Replayer(settings, conn, dlq, args.dry_run)
            try:
                ledger = await load_ledger(conn, schema, dlq)
                if ledger.pending:
                    found = await find_replayed(consumer, cluster, dlq, ledger.pending)
                    if not args.dry_run:
                        await settle_pending(conn, schema, dlq, ledger, found)
                    print(f"{len(ledger.pending)} claims left by an interrupted replay: "
                          f"{len(found)} had reached their topic, "
                          f"{len(ledger.pending) - len(found)} are replayed again")
                    ledger.done |= set(found)
                await _drive(args, consumer, cluster, dlq, ledger, replayer)
            finally:
                await replayer.close()
                if not args.dry_run:
                    await conn.fetchval(
                        "SELECT pg_advisory_unlock(hashtextextended($1, 0))", lock)
    t = replayer.tally
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{dlq}: read {t.read}, matched {t.matched}, {verb} {t.replayed}, "
          f"already replayed {t.already}, without a target topic {t.no_target}, "
          f"truncated {t.truncated}, failed {t.failed}")
    return 1 if t.failed else 0


async def _drive(args: argparse.Namespace, consumer: AIOKafkaConsumer,
                 cluster: dict[str, list[int]], dlq: str, ledger: Ledger,
                 replayer: Replayer) -> None:
    if args.limit == 0:
        return
    tps = [TopicPartition(dlq, p) for p in cluster[dlq]]
    begin, end = await offsets_of(consumer, tps)
    replayer.out = out = _Output(sum(end[tp] - begin[tp] for tp in tps), replayer.tally)
    try:
        await _each(args, consumer, tps, dlq, cluster, ledger, replayer, out)
    finally:
        out.close()


async def _each(args: argparse.Namespace, consumer: AIOKafkaConsumer,
                tps: list[TopicPartition], dlq: str, cluster: dict[str, list[int]],
                ledger: Ledger, replayer: Replayer, out: _Output) -> None:
    t = replayer.tally
    batch: list[Plan] = []
    planned = 0
    async with aclosing(scan(consumer, tps)) as recs:
        async for rec in recs:
            t.read += 1
            out.read_one()
            dl = Letter.of(rec)
            if not dl.matches(args.topic, args.error_code):
                continue
            t.matched += 1
            if dl.truncated:  # a prefix is not the record: the original is in its topic
                t.truncated += 1
                print(f"skipped {dl.ref}: its value was truncated to fit the DLQ topic; the "
                      f"original is {dl.source_topic}[{dl.header('__connect.errors.partition')}]"
                      f"@{dl.header('__connect.errors.offset')}", file=sys.stderr)
                continue
            target = args.to_topic or dl.source_topic
            if target and (dl.partition, dl.offset, target) in ledger.done:
                t.already += 1
                continue
            if not target or target not in cluster or target == dlq:
                t.no_target += 1
                out.say(f"skipped {dl.ref}: "
                        + ("no __connect.errors.topic header (use --to-topic)" if not target
                           else "its source topic is the DLQ itself" if target == dlq
                           else f"target topic {target} does not exist"), err=True)
                continue
            # Back to where it came from, when that is the target: same partition, so the
            # key's order in the topic is kept.
            src_part = dl.header_int("__connect.errors.partition")
            partition = (src_part if target == dl.source_topic and src_part is not None
                         and src_part in cluster[target] else None)
            batch.append(Plan(dl, target, partition))
            planned += 1
            if len(batch) >= REPLAY_BATCH:
                await replayer.flush(batch)
                batch = []
            if args.limit is not None and planned >= args.limit:
                break
    await replayer.flush(batch)
