"""``warp-sink status``: the group as it runs, in one screen.

Members and their partitions (DescribeGroups), per partition the stored offset (the
offsets table: the truth), the committed one (Kafka, for lag tooling), the end offset,
the lag and the age of the last flush that moved it, and the dead letters of the last hour
per error code (read from the DLQ topic from the offset of one hour ago). Reads only: no
group is joined, nothing is committed. ``--watch`` refreshes (and adds events/s, from the
stored offsets' change between refreshes); ``--json`` prints one document per refresh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from sink.config import Settings
from sink.errors import WarpError
from sink.logs import scrub
from sink.postgres import load_offset_ages
from sink.tools.clients import (
    Member,
    admin_client,
    group_members,
    offsets_of,
    pg_connect,
    reader,
    timed,
)
from sink.tools.common import config_args, run_async, settings_from
from sink.tools.dlq.letters import Letter, scan
from sink.tools.offsets.cli import committed_offsets
from sink.tools.offsets.plan import selected_partitions

DLQ_WINDOW_S = 3600


@dataclass
class PartitionStatus:
    topic: str
    partition: int
    stored: int | None
    committed: int | None
    end: int
    lag: int
    last_flush_age_seconds: float | None
    member: str | None


@dataclass
class Status:
    group_id: str
    state: str
    members: list[Member]
    partitions: list[PartitionStatus]
    dlq_topic: str
    dead_letters_last_hour: dict[str, int]
    events_per_second: float | None = None
    taken_at: float = field(default_factory=time.time)

    @property
    def stored_total(self) -> int:
        return sum(p.stored or 0 for p in self.partitions)


async def dead_letters_since(consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient,
                             topic: str, since_ms: int) -> dict[str, int]:
    """Dead letters written at or after ``since_ms``, counted per error code."""
    metadata = await timed(admin.describe_topics([topic]), f"cannot describe {topic}")
    tps = [TopicPartition(topic, p["partition"])
           for d in metadata if d.get("error_code", 0) == 0
           for p in d.get("partitions") or ()]
    if not tps:
        return {}
    found = await timed(consumer.offsets_for_times({tp: since_ms for tp in tps}),
                        f"cannot look up {topic}'s offsets by time")
    _, end = await offsets_of(consumer, tps)
    start = {tp: (found[tp].offset if found.get(tp) is not None else end[tp]) for tp in tps}
    counts: Counter[str] = Counter()
    async for rec in scan(consumer, tps, start):
        counts[Letter.of(rec).error_code or "unknown"] += 1
    return dict(sorted(counts.items()))


async def gather(settings: Settings) -> Status:
    src = settings.source
    group = src.group_id
    async with admin_client(src) as admin, reader(src) as consumer:
        tps = await selected_partitions(settings, admin, None, None)
        state, members = await group_members(admin, group)
        begin, end = await offsets_of(consumer, tps)
        committed = await committed_offsets(admin, group, tps)
        letters = await dead_letters_since(consumer, admin, settings.dlq_topic,
                                           int((time.time() - DLQ_WINDOW_S) * 1000))
    async with pg_connect(settings) as conn:
        try:
            stored = await load_offset_ages(conn, settings.destination.metadata_schema, group,
                                            sorted({tp.topic for tp in tps}))
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
            stored = {}  # the sink never ran against this database
    owner = {p: f"{m.client_id}@{m.host}" for m in members for p in m.partitions}
    rows = []
    for tp in sorted(tps):
        s, age = stored.get((tp.topic, tp.partition), (None, None))
        c = committed.get(tp)
        # Nothing stored or committed: reading starts at the log start (offsets before it
        # were deleted by retention and will never be read).
        position = s if s is not None else (c if c is not None else begin[tp])
        rows.append(PartitionStatus(tp.topic, tp.partition, s, c, end[tp],
                                    max(0, end[tp] - position), age,
                                    owner.get(f"{tp.topic}[{tp.partition}]")))
    return Status(group, state, members, rows, settings.dlq_topic, letters)


def render(st: Status) -> str:
    out = [f"group {st.group_id}: {st.state}, {len(st.members)} member(s)"
           + (f", {st.events_per_second:,.0f} events/s" if st.events_per_second is not None
              else "")]
    if st.members:
        out.append(_table([("MEMBER", "HOST", "PARTITIONS")] + [
            (m.client_id, m.host, ", ".join(m.partitions) or "-") for m in st.members]))
    out.append(_table([("TOPIC", "PARTITION", "STORED", "COMMITTED", "END", "LAG",
                        "LAST FLUSH", "MEMBER")] + [
        (p.topic, str(p.partition), _dash(p.stored), _dash(p.committed), str(p.end),
         str(p.lag), _age(p.last_flush_age_seconds), p.member or "-")
        for p in st.partitions]))
    total = sum(st.dead_letters_last_hour.values())
    codes = ", ".join(f"{code} {n}" for code, n in st.dead_letters_last_hour.items())
    out.append(f"dead letters in the last hour ({st.dlq_topic}): {total}"
               + (f" ({codes})" if codes else ""))
    return "\n".join(out)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    return f"{s}s ago" if s < 120 else f"{s // 60}m ago" if s < 7200 else f"{s // 3600}h ago"


def as_json(st: Status) -> str:
    return json.dumps(asdict(st))


async def _status(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    previous: Status | None = None
    while True:
        try:
            st = await gather(settings)
        except WarpError as exc:
            if not args.watch:
                raise
            # A watch outlives a restart of Kafka or PostgreSQL: it says so and tries again.
            print(f"warp-sink status: {scrub(str(exc))} (retrying every {args.interval:g}s)",
                  file=sys.stderr, flush=True)
            await asyncio.sleep(args.interval)
            continue
        if previous is not None and st.taken_at > previous.taken_at:
            st.events_per_second = round(
                (st.stored_total - previous.stored_total) / (st.taken_at - previous.taken_at), 1)
        if args.json:
            print(as_json(st), flush=True)
        else:
            if args.watch and sys.stdout.isatty():
                print("\x1b[H\x1b[2J", end="")  # a refreshed screen, not a scroll
            print(render(st), flush=True)
            if args.watch:
                print()
        if not args.watch:
            return 0
        previous = st
        await asyncio.sleep(args.interval)


def _seconds(text: str) -> float:
    """A refresh interval: 0 or less would query Kafka and PostgreSQL in a tight loop."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def add_parser(subparsers: Any) -> None:
    """Register ``status`` on ``warp-sink``'s subcommands."""
    p = subparsers.add_parser(
        "status", help="the group as it runs: members, offsets, lag, dead letters",
        description="Members and partitions, stored/committed/end offsets, lag, age of the "
        "last flush, dead letters of the last hour. Reads only.")
    config_args(p)
    p.add_argument("--watch", action="store_true", help="refresh until interrupted")
    p.add_argument("--interval", type=_seconds, default=2.0, metavar="SECONDS",
                   help="seconds between refreshes with --watch (default 2)")
    p.add_argument("--json", action="store_true", help="one JSON document per refresh")
    p.set_defaults(fn=run_async(_status))
