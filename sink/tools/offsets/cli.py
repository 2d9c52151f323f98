"""``warp-sink offsets show|reset``: where the group stands, and replays by moving offsets.

The sink's position is the offsets table in PostgreSQL (``<metadata_schema>.kafka_offsets``,
written in the data transaction); the group's committed Kafka offsets follow it for lag
tooling. ``reset`` moves both. A group with live members rejects commits from outside, and
its members would overwrite a moved table on their next flush, so ``reset`` refuses while
the group has members unless ``--force`` (then the table still moves: a member that writes
next finds its expected offset gone, drops its buffers and re-reads the table).

The target and the partitions are planned in :mod:`sink.tools.offsets.plan`; the clients come
from :mod:`sink.tools.clients`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaError

from sink.config import Settings, SourceConfig
from sink.errors import ConfigError, WarpError
from sink.postgres import load_offsets, migrate_metadata, set_offsets
from sink.service import kafka_consumer
from sink.tools.clients import (
    KAFKA_TIMEOUT,
    admin_client,
    group_members,
    offsets_of,
    pg_connect,
    reader,
    start,
    timed,
)
from sink.tools.common import config_args, run_async, settings_from, warn
from sink.tools.offsets.plan import (
    Target,
    describe_target,
    new_offsets,
    parse_target,
    selected_partitions,
)

__all__ = [
    "GroupState",
    "Row",
    "Target",
    "add_parser",
    "committed_offsets",
    "describe_group",
    "parse_target",
    "selected_partitions",
    "stored_offsets",
]


async def stored_offsets(
    conn: asyncpg.Connection, settings: Settings, topics: list[str]
) -> dict[tuple[str, int], int]:
    """The offsets table's rows for the group; empty when the sink never ran here."""
    try:
        return await load_offsets(
            conn, settings.destination.metadata_schema, settings.source.group_id, topics
        )
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return {}


async def committed_offsets(
    admin: AIOKafkaAdminClient, group: str, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The group's committed offsets (partitions without one are left out)."""
    if not tps:
        return {}
    got = await timed(
        admin.list_consumer_group_offsets(group, partitions=tps),
        f"cannot read the committed offsets of group {group}",
    )
    return {tp: om.offset for tp, om in got.items() if om.offset >= 0}


@dataclass
class GroupState:
    state: str
    members: list[str]  # "client_id@host" of each live member


async def describe_group(admin: AIOKafkaAdminClient, group: str) -> GroupState:
    """The group's state and live members (DescribeGroups through the group coordinator)."""
    state, members = await group_members(admin, group)
    return GroupState(state, [f"{m.client_id}@{m.host}" for m in members])


# --- offsets show ------------------------------------------------------------------------


@dataclass
class Row:
    topic: str
    partition: int
    stored: int | None
    committed: int | None
    log_start: int
    log_end: int
    position: int
    position_from: str  # table | group | auto_offset_reset

    @property
    def lag(self) -> int:
        return max(0, self.log_end - self.position)


async def _show(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    src = settings.source
    group = src.group_id
    async with admin_client(src) as admin, reader(src) as consumer:
        tps = await selected_partitions(settings, admin, args.topic, None)
        begin, end = await offsets_of(consumer, tps)
        committed = await committed_offsets(admin, group, tps)
    async with pg_connect(settings) as conn:
        stored = await stored_offsets(conn, settings, sorted({tp.topic for tp in tps}))

    rows: list[Row] = []
    for tp in sorted(tps):
        s = stored.get((tp.topic, tp.partition))
        c = committed.get(tp)
        if s is not None:
            pos, source = s, "table"
        elif c is not None:
            pos, source = c, "group"
        else:
            pos = begin[tp] if src.auto_offset_reset == "earliest" else end[tp]
            source = "auto_offset_reset"
        rows.append(Row(tp.topic, tp.partition, s, c, begin[tp], end[tp], pos, source))

    if args.json:
        print(json.dumps({
            "group_id": group,
            "metadata_schema": settings.destination.metadata_schema,
            "partitions": [
                {"topic": r.topic, "partition": r.partition, "stored": r.stored,
                 "committed": r.committed, "log_start": r.log_start, "log_end": r.log_end,
                 "lag": r.lag, "position_from": r.position_from}
                for r in rows
            ],
        }))
        return 0
    print(f"group {group}; offsets table {settings.destination.metadata_schema}.kafka_offsets")
    table = [("TOPIC", "PARTITION", "STORED", "COMMITTED", "LOG-START", "LOG-END", "LAG")]
    for r in rows:
        lag = str(r.lag) if r.position_from != "auto_offset_reset" else f"{r.lag}*"
        table.append((r.topic, str(r.partition), _dash(r.stored), _dash(r.committed),
                      str(r.log_start), str(r.log_end), lag))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    if any(r.position_from == "auto_offset_reset" for r in rows):
        print(f"* nothing stored or committed: counted from auto_offset_reset "
              f"({src.auto_offset_reset})")
    return 0


def _dash(value: int | None) -> str:
    return "-" if value is None else str(value)


# --- offsets reset -----------------------------------------------------------------------


async def _commit(src: SourceConfig, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` for the group from a consumer that assigns, never joins."""
    client = kafka_consumer(src, max_poll_records=1)
    await start(client, src)
    try:
        client.assign(sorted(offsets))
        await asyncio.wait_for(client.commit(offsets), timeout=KAFKA_TIMEOUT)
    finally:
        await client.stop()


async def _reset(args: argparse.Namespace) -> int:
    target = parse_target(args.to)  # usage errors before any I/O
    if args.partition is not None and args.topic is None:
        raise ConfigError("--partition needs --topic")
    settings = settings_from(args)
    src = settings.source
    group = src.group_id
    schema = settings.destination.metadata_schema

    async with admin_client(src) as admin, reader(src) as consumer:
        tps = sorted(await selected_partitions(settings, admin, args.topic, args.partition))
        begin, end = await offsets_of(consumer, tps)
        new = await new_offsets(consumer, tps, target, begin, end)
        committed = await committed_offsets(admin, group, tps)
        state = await describe_group(admin, group)
    async with pg_connect(settings) as conn:
        stored = await stored_offsets(conn, settings, sorted({tp.topic for tp in tps}))

        print(f"group {group}: reset to {describe_target(target)}"
              f"{' (dry run)' if args.dry_run else ''}")
        for tp in tps:
            old_s = _dash(stored.get((tp.topic, tp.partition)))
            old_c = _dash(committed.get(tp))
            print(f"{tp.topic}[{tp.partition}]  table {old_s} -> {new[tp]}  "
                  f"group {old_c} -> {new[tp]}  (log {begin[tp]}..{end[tp]})")

        live = ", ".join(state.members)
        if args.dry_run:
            if state.members and not args.force:
                warn(f"group {group} has live members ({live}): a real reset would be refused "
                     "(stop the sink, or --force)")
            print("dry run: nothing changed")
            return 0
        if state.members and not args.force:
            raise WarpError(
                f"group {group} has {len(state.members)} live member(s) ({live}); stop the sink "
                "instances first, or pass --force to move the table anyway"
            )

        await migrate_metadata(conn, schema)  # the offsets table exists from here on
        async with conn.transaction():
            await set_offsets(
                conn, schema, group, {(tp.topic, tp.partition): new[tp] for tp in tps}
            )
            try:
                await _commit(src, new)
                kafka_note = "group offsets committed"
            except (CommitFailedError, KafkaError, TimeoutError, WarpError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if not args.force:
                    # Rolls back the table too: nothing moved.
                    raise WarpError(
                        f"the group rejected the commit ({reason}); nothing changed "
                        "(did a member join? stop the sink, or --force)"
                    ) from None
                kafka_note = f"group commit skipped: rejected ({reason})"
    print(f"offsets table updated ({len(tps)} partitions); {kafka_note}")
    again = sum(max(0, (stored.get((tp.topic, tp.partition)) or end[tp]) - new[tp]) for tp in tps)
    if again:
        print(f"{again} events will be read again; `warp-sink run --until-caught-up` applies "
              "them and shows its progress (the ordering guard skips changes already applied "
              "unless --force-replay)")
    if state.members:
        print(f"note: live members ({live}) re-read the table when they next write or are "
              "assigned these partitions")
    return 0


# --- the command line --------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``offsets show|reset`` on ``warp-sink``'s subcommands."""
    off = subparsers.add_parser(
        "offsets", help="show the group's offsets, or move them (replay)",
        description="The offsets table in PostgreSQL and the group's Kafka commits.",
    )
    sub = off.add_subparsers(dest="action", required=True, parser_class=type(off))

    show = sub.add_parser(
        "show", help="stored, committed and log-end offsets and lag, per partition"
    )
    config_args(show)
    show.add_argument("--topic", help="only this topic (default: the configured topics)")
    show.add_argument("--json", action="store_true", help="one JSON document")
    show.set_defaults(fn=run_async(_show))

    reset = sub.add_parser(
        "reset", help="move the offsets table and the group's commits (replay)",
        description="Move both the offsets table and the group's committed offsets. Refuses "
        "while the group has live members unless --force.",
    )
    config_args(reset)
    reset.add_argument(
        "--to", required=True, metavar="earliest|latest|OFFSET|DATETIME",
        help="target: log start, log end, an offset (clamped to the log), or an ISO-8601 "
        "time (UTC unless a zone is given; the first offset at or after it)",
    )
    reset.add_argument("--topic", help="only this topic (default: the configured topics)")
    reset.add_argument("--partition", type=int, help="only this partition (needs --topic)")
    reset.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    reset.add_argument(
        "--force", action="store_true",
        help="move the table even while the group has live members (their Kafka commit "
        "is skipped if the group rejects it)",
    )
    reset.set_defaults(fn=run_async(_reset))
