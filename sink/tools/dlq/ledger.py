"""The replay ledger, ``<metadata_schema>.dlq_replays``, which makes ``dlq replay``
idempotent: one row per dead letter (DLQ topic, partition, offset) and target topic (a
letter sent to a scratch topic with ``--to-topic`` can still be re-driven to its own topic,
once). A batch is first claimed (rows in state ``pending``, committed), then produced, then
marked ``done`` with where it landed once the broker acknowledged it. A later run skips
``done`` rows. ``pending`` rows are what a run that died mid-batch leaves behind; they are
settled by looking for the record's ``warp.replayed.from`` header in the target topic from
shortly before the claim on: found, the row becomes ``done``; not found, the claim is
dropped and the letter is replayed again."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import aclosing
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from sink.postgres import migrate_metadata, quote
from sink.tools.clients import timed
from sink.tools.dlq.letters import scan

REPLAYED_FROM = "warp.replayed.from"
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


async def ensure_ledger(conn: asyncpg.Connection, schema: str) -> None:
    await migrate_metadata(conn, schema)  # creates the schema (under its own lock)
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
        at = await timed(consumer.offsets_for_times({tp: ms for tp in tps}),
                          f"cannot look up offsets of {target} by time")
        start = {tp: hit.offset for tp, hit in at.items() if hit is not None}
        tps = [tp for tp in tps if tp in start]
        if not tps:
            continue
        async with aclosing(scan(consumer, tps, start)) as records:
            async for rec in records:
                for k, v in rec.headers or ():
                    if k == REPLAYED_FROM and v is not None:  # null: not ours
                        hit = wanted.get(bytes(v).decode("utf-8", errors="replace"))
                        if hit is not None:
                            found[hit] = (rec.partition, rec.offset)
    return found


async def settle_pending(
    conn: asyncpg.Connection, schema: str, dlq: str, ledger: Ledger,
    found: dict[Claim, tuple[int, int]],
) -> None:
    """Pending claims found in their target become ``done``; the others are dropped."""
    async with conn.transaction():
        await mark_done(conn, schema, dlq, found.items())
        await conn.executemany(
            f"DELETE FROM {quote(schema)}.dlq_replays "
            "WHERE dlq_topic = $1 AND dlq_partition = $2 AND dlq_offset = $3 "
            "AND target_topic = $4 AND state = 'pending'",
            [(dlq, *key) for key in ledger.pending if key not in found],
        )


async def claim(
    conn: asyncpg.Connection, schema: str, dlq: str, claims: Iterable[Claim], now_ms: int
) -> None:
    """Record ``claims`` as ``pending`` (in their own commit, before anything is produced)."""
    await conn.executemany(
        f"INSERT INTO {quote(schema)}.dlq_replays (dlq_topic, dlq_partition, dlq_offset, "
        "target_topic, claimed_at_ms) VALUES ($1, $2, $3, $4, $5)",
        [(dlq, p, o, t, now_ms) for p, o, t in claims],
    )


async def mark_done(
    conn: asyncpg.Connection, schema: str, dlq: str,
    landed: Iterable[tuple[Claim, tuple[int, int]]],
) -> None:
    """Mark claims ``done``, each with the (partition, offset) it landed at in its target."""
    await conn.executemany(
        f"UPDATE {quote(schema)}.dlq_replays SET state = 'done', target_partition = $5, "
        "target_offset = $6, replayed_at = now() WHERE dlq_topic = $1 "
        "AND dlq_partition = $2 AND dlq_offset = $3 AND target_topic = $4",
        [(dlq, p, o, t, tp, to) for (p, o, t), (tp, to) in landed],
    )
