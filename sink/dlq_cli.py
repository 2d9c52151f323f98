"""``warp-sink dlq inspect|replay``: read the dead-letter topic, and re-drive dead letters.

Both read the DLQ topic from its start to the end offsets seen when they start, with a
consumer in no group (assign + seek: nothing is committed, no group is joined).

Replay is idempotent through a ledger in the metadata schema, ``dlq_replays``: one row per
dead letter (DLQ topic, partition, offset) and target topic (a letter sent to a scratch
topic with ``--to-topic`` can still be re-driven to its own topic, once). A batch is first
claimed (rows in state ``pending``, committed), then produced, then marked ``done`` with
where it landed once the broker acknowledged it. A later run skips ``done`` rows.
``pending`` rows are what a run that died mid-batch leaves behind; they are settled by
looking for the record's ``warp.replayed.from`` header in the target topic from shortly
before the claim on: found, the row becomes ``done``; not found, the claim is dropped and
the letter is replayed again. One replay per DLQ topic runs at a time (a PostgreSQL
advisory lock), so a claim another run is still producing is never mistaken for a lost one.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import sys
import time
from collections.abc import AsyncGenerator, Awaitable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from . import kafka, metadata
from .config import Settings
from .errors import ConfigError, WarpError
from .names import quote
from .offsets_cli import (
    KAFKA_TIMEOUT,
    _start,
    _timed,
    admin_client,
    config_args,
    offsets_of,
    pg_connect,
    reader,
    settings_from,
    topic_partitions,
)

ERROR_HEADER_PREFIXES = ("__connect.errors.", "warp.")
REPLAYED_FROM = "warp.replayed.from"
MESSAGE_WIDTH = 160
PREVIEW_CHARS = 200
REPLAY_BATCH = 200
# Pending claims are settled by scanning the target from this long before the claim
# (record timestamps come from the producing host's clock or the broker's).
CLAIM_MARGIN_MS = 10 * 60 * 1000

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS {m}.dlq_replays (
    dlq_topic text NOT NULL,
    dlq_partition integer NOT NULL,
    dlq_offset bigint NOT NULL,
    target_topic text NOT NULL,
    target_partition integer,
    target_offset bigint,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    claimed_at timestamptz NOT NULL DEFAULT now(),
    claimed_at_ms bigint NOT NULL,
    replayed_at timestamptz,
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset, target_topic)
)
"""
_LEDGER_LOCK = 0x0C47_7220  # serialises the ledger's DDL between hosts


# --- reading dead letters -------------------------------------------------------------


@dataclass
class Letter:
    """One record of the DLQ topic, with its headers decoded."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    @classmethod
    def of(cls, rec: Any) -> Letter:
        return cls(rec.topic, rec.partition, rec.offset, rec.timestamp, rec.key, rec.value,
                   [(k, bytes(v or b"")) for k, v in (rec.headers or ())])

    def header(self, name: str) -> str | None:
        found = None
        for k, v in self.headers:
            if k == name:
                found = v.decode("utf-8", errors="replace")
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

    def original_headers(self) -> list[tuple[str, bytes]]:
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


def _one_line(text: str | None, width: int = MESSAGE_WIDTH) -> str:
    flat = re.sub(r"\s+", " ", text or "").strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _preview(data: bytes | None) -> str | None:
    if data is None:
        return None
    text = data[: PREVIEW_CHARS * 4].decode("utf-8", errors="replace")
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def _as_text(dl: Letter) -> str:
    src = (f"{dl.source_topic}[{dl.header('__connect.errors.partition')}]"
           f"@{dl.header('__connect.errors.offset')}") if dl.source_topic else "-"
    schema, table = dl.header("warp.schema") or "", dl.header("warp.table") or ""
    where = f"{schema}.{table}" if schema or table else "-"
    return (f"{dl.topic}[{dl.partition}]@{dl.offset}  source={src}  "
            f"stage={dl.header('__connect.errors.stage') or '-'}  "
            f"code={dl.error_code or '-'}  table={where}  "
            f"{_one_line(dl.header('__connect.errors.exception.message'))}")


def _as_json(dl: Letter) -> str:
    headers: dict[str, str] = {}
    for k, v in dl.headers:
        headers[k] = v.decode("utf-8", errors="replace")
    return json.dumps({
        "dlq": {"topic": dl.topic, "partition": dl.partition, "offset": dl.offset,
                "timestamp": dl.timestamp},
        "source": {"topic": dl.source_topic,
                   "partition": dl.header_int("__connect.errors.partition"),
                   "offset": dl.header_int("__connect.errors.offset")},
        "stage": dl.header("__connect.errors.stage"),
        "error_code": dl.error_code,
        "error_class": dl.header("__connect.errors.exception.class.name"),
        "message": dl.header("__connect.errors.exception.message"),
        "schema": dl.header("warp.schema") or None,
        "table": dl.header("warp.table") or None,
        "headers": headers,
        "key_b64": _b64(dl.key),
        "value_b64": _b64(dl.value),
        "key_preview": _preview(dl.key),
        "value_preview": _preview(dl.value),
    }, ensure_ascii=False)


def _dlq_topic(args: argparse.Namespace, settings: Settings) -> str:
    return str(args.dlq_topic or settings.dlq_topic)


# --- dlq inspect ---------------------------------------------------------------------------


async def _inspect(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit must be 0 or more")
    settings = settings_from(args)
    src = settings.source
    dlq = _dlq_topic(args, settings)
    shown = scanned = 0
    async with admin_client(src) as admin, reader(src) as consumer:
        cluster = await topic_partitions(admin)
        if dlq not in cluster:
            print(f"DLQ topic {dlq} does not exist: no dead letters yet", file=sys.stderr)
            return 0
        tps = [TopicPartition(dlq, p) for p in cluster[dlq]]
        if args.limit != 0:
            async with aclosing(scan(consumer, tps)) as records:
                async for rec in records:
                    scanned += 1
                    dl = Letter.of(rec)
                    if not dl.matches(args.topic, args.error_code):
                        continue
                    print(_as_json(dl) if args.json else _as_text(dl))
                    shown += 1
                    if args.limit is not None and shown >= args.limit:
                        break
    print(f"{shown} dead letters shown ({scanned} read from {dlq})", file=sys.stderr)
    return 0


# --- the replay ledger ---------------------------------------------------------------------


async def ensure_ledger(conn: asyncpg.Connection, schema: str) -> None:
    await metadata.migrate(conn, schema)  # creates the schema (under its own lock)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LEDGER_LOCK)
        await conn.execute(LEDGER_DDL.format(m=quote(schema)))


Claim = tuple[int, int, str]  # (DLQ partition, DLQ offset, target topic)


@dataclass
class Ledger:
    done: set[Claim]
    pending: dict[Claim, int]  # -> when claimed (ms since the epoch, the claiming host's clock)


async def load_ledger(conn: asyncpg.Connection, schema: str, dlq: str) -> Ledger:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL",
                                 f"{quote(schema)}.dlq_replays")
    if not exists:
        return Ledger(set(), {})
    rows = await conn.fetch(
        f"SELECT dlq_partition, dlq_offset, state, target_topic, claimed_at_ms "
        f"FROM {quote(schema)}.dlq_replays WHERE dlq_topic = $1", dlq)
    ledger = Ledger(set(), {})
    for r in rows:
        key = (r["dlq_partition"], r["dlq_offset"], r["target_topic"])
        if r["state"] == "done":
            ledger.done.add(key)
        else:
            ledger.pending[key] = r["claimed_at_ms"]
    return ledger


async def find_replayed(
    consumer: AIOKafkaConsumer,
    cluster: dict[str, list[int]],
    dlq: str,
    pending: dict[Claim, int],
) -> dict[Claim, tuple[int, int]]:
    """Which pending claims did reach their target: claim -> (partition, offset) in the
    target, read from the target's ``warp.replayed.from`` headers."""
    found: dict[Claim, tuple[int, int]] = {}
    by_target: dict[str, dict[str, Claim]] = {}
    since: dict[str, int] = {}
    for key, claimed_ms in pending.items():
        target = key[2]
        by_target.setdefault(target, {})[f"{dlq}:{key[0]}:{key[1]}"] = key
        since[target] = min(since.get(target, claimed_ms), claimed_ms)
    for target, wanted in by_target.items():
        if target not in cluster:
            continue
        tps = [TopicPartition(target, p) for p in cluster[target]]
        ms = max(0, since[target] - CLAIM_MARGIN_MS)
        at = await _timed(consumer.offsets_for_times({tp: ms for tp in tps}),
                          f"cannot look up offsets of {target} by time")
        start = {tp: hit.offset for tp, hit in at.items() if hit is not None}
        tps = [tp for tp in tps if tp in start]
        if not tps:
            continue
        async with aclosing(scan(consumer, tps, start)) as records:
            async for rec in records:
                for k, v in rec.headers or ():
                    if k == REPLAYED_FROM:
                        hit = wanted.get(bytes(v).decode("utf-8", errors="replace"))
                        if hit is not None:
                            found[hit] = (rec.partition, rec.offset)
    return found


async def settle_pending(
    conn: asyncpg.Connection, schema: str, dlq: str, ledger: Ledger,
    found: dict[Claim, tuple[int, int]],
) -> None:
    m = quote(schema)
    async with conn.transaction():
        await conn.executemany(
            f"UPDATE {m}.dlq_replays SET state = 'done', target_partition = $5, "
            "target_offset = $6, replayed_at = now() WHERE dlq_topic = $1 "
            "AND dlq_partition = $2 AND dlq_offset = $3 AND target_topic = $4",
            [(dlq, p, o, t, tp, to) for (p, o, t), (tp, to) in found.items()],
        )
        await conn.executemany(
            f"DELETE FROM {m}.dlq_replays "
            "WHERE dlq_topic = $1 AND dlq_partition = $2 AND dlq_offset = $3 "
            "AND target_topic = $4 AND state = 'pending'",
            [(dlq, *key) for key in ledger.pending if key not in found],
        )


# --- dlq replay ------------------------------------------------------------------------------


@dataclass
class Plan:
    letter: Letter
    target: str
    partition: int | None


@dataclass
class Tally:
    read: int = 0
    matched: int = 0
    replayed: int = 0
    already: int = 0
    no_target: int = 0
    failed: int = 0


async def _failed(exc: Exception) -> Any:
    raise exc


class Replayer:
    def __init__(self, settings: Settings, conn: asyncpg.Connection, dlq: str,
                 dry_run: bool) -> None:
        self.src = settings.source
        self.schema = settings.destination.metadata_schema
        self.conn = conn
        self.dlq = dlq
        self.dry_run = dry_run
        self.producer: AIOKafkaProducer | None = None
        self.tally = Tally()

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
                print(f"would replay {plan.letter.ref} -> {where}")
            self.tally.replayed += len(batch)
            return
        if self.producer is None:
            producer = kafka.producer(self.src)
            await _start(producer, self.src)
            self.producer = producer
        m = quote(self.schema)
        now_ms = int(time.time() * 1000)
        await self.conn.executemany(  # the claim, committed before anything is produced
            f"INSERT INTO {m}.dlq_replays (dlq_topic, dlq_partition, dlq_offset, target_topic, "
            "claimed_at_ms) VALUES ($1, $2, $3, $4, $5)",
            [(self.dlq, p.letter.partition, p.letter.offset, p.target, now_ms) for p in batch],
        )
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
        done = []
        for plan, res in zip(batch, results, strict=True):
            if isinstance(res, BaseException):
                self.tally.failed += 1
                print(f"FAILED {plan.letter.ref} -> {plan.target}: {type(res).__name__}: {res}",
                      file=sys.stderr)
                continue  # the claim stays pending: the next run settles it
            done.append((self.dlq, plan.letter.partition, plan.letter.offset, plan.target,
                         res.partition, res.offset))
            print(f"replayed {plan.letter.ref} -> {plan.target}[{res.partition}]@{res.offset}")
        await self.conn.executemany(
            f"UPDATE {m}.dlq_replays SET state = 'done', target_partition = $5, "
            "target_offset = $6, replayed_at = now() WHERE dlq_topic = $1 "
            "AND dlq_partition = $2 AND dlq_offset = $3 AND target_topic = $4",
            done,
        )
        self.tally.replayed += len(done)


async def _replay(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit must be 0 or more")
    settings = settings_from(args)
    src = settings.source
    schema = settings.destination.metadata_schema
    dlq = _dlq_topic(args, settings)
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
          f"failed {t.failed}")
    return 1 if t.failed else 0


async def _drive(args: argparse.Namespace, consumer: AIOKafkaConsumer,
                 cluster: dict[str, list[int]], dlq: str, ledger: Ledger,
                 replayer: Replayer) -> None:
    t = replayer.tally
    if args.limit == 0:
        return
    batch: list[Plan] = []
    planned = 0
    async with aclosing(scan(consumer, [TopicPartition(dlq, p) for p in cluster[dlq]])) as recs:
        async for rec in recs:
            t.read += 1
            dl = Letter.of(rec)
            if not dl.matches(args.topic, args.error_code):
                continue
            t.matched += 1
            target = args.to_topic or dl.source_topic
            if target and (dl.partition, dl.offset, target) in ledger.done:
                t.already += 1
                continue
            if not target or target not in cluster or target == dlq:
                t.no_target += 1
                print(f"skipped {dl.ref}: "
                      + ("no __connect.errors.topic header (use --to-topic)" if not target
                         else "its source topic is the DLQ itself" if target == dlq
                         else f"target topic {target} does not exist"),
                      file=sys.stderr)
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


# --- the command line --------------------------------------------------------------------


def _cmd_inspect(args: argparse.Namespace) -> int:
    return asyncio.run(_inspect(args))


def _cmd_replay(args: argparse.Namespace) -> int:
    return asyncio.run(_replay(args))


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic", help="only dead letters from this source topic")
    p.add_argument("--error-code", help="only dead letters with this warp.error.code")
    p.add_argument("--limit", type=int, help="at most this many dead letters")
    p.add_argument("--dlq-topic", help="the DLQ topic (default: errors.dlq_topic, "
                   "else <group_id>.dlq)")


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``dlq inspect|replay`` on ``warp-sink``'s subcommands."""
    dlq = subparsers.add_parser(
        "dlq", help="inspect and re-drive dead letters",
        description="The dead-letter topic: read it, or send its records back.",
    )
    sub = dlq.add_subparsers(dest="action", required=True, parser_class=type(dlq))

    inspect = sub.add_parser("inspect", help="print the dead letters, one per line")
    config_args(inspect)
    _filters(inspect)
    inspect.add_argument("--json", action="store_true",
                         help="JSON lines: headers decoded, key/value as base64 and a preview")
    inspect.set_defaults(fn=_cmd_inspect)

    replay = sub.add_parser(
        "replay", help="produce dead letters again (original key, value and headers)",
        description="Re-drive dead letters to their original topic (or --to-topic), once "
        "each: a ledger in the metadata schema remembers what was replayed.",
    )
    config_args(replay)
    _filters(replay)
    replay.add_argument("--to-topic", help="send here instead of each record's original topic")
    replay.add_argument("--dry-run", action="store_true",
                        help="print what would be replayed, produce nothing")
    replay.set_defaults(fn=_cmd_replay)
