"""Planning ``offsets reset``: the ``--to`` target (earliest, latest, an offset, a point in
time), the partitions a command acts on, and the offset each of them moves to."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from sink.config import Settings
from sink.errors import ConfigError
from sink.tools.clients import timed, topic_partitions
from sink.tools.common import warn

Target = str | int | datetime  # "earliest" | "latest" | an offset | a point in time


def parse_target(text: str) -> Target:
    """``earliest``, ``latest``, an integer offset, or an ISO-8601 date/time (UTC unless it
    names a zone). Anything else is a usage error."""
    t = text.strip()
    if t.lower() in ("earliest", "latest"):
        return t.lower()
    if re.fullmatch(r"[+-]?\d+", t):
        return int(t)
    try:
        when = datetime.fromisoformat(t)
    except ValueError:
        raise ConfigError(
            f"--to takes earliest, latest, an offset or an ISO-8601 date/time, got {text!r}"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def describe_target(target: Target) -> str:
    return target.isoformat() if isinstance(target, datetime) else str(target)


async def selected_partitions(
    settings: Settings, admin: AIOKafkaAdminClient, topic: str | None, partition: int | None
) -> list[TopicPartition]:
    """The partitions a command acts on: ``--topic`` (and ``--partition``), else the
    configured topics (or the topics matching ``topic_pattern``)."""
    if partition is not None and topic is None:
        raise ConfigError("--partition needs --topic")
    cluster = await topic_partitions(admin)
    src = settings.source
    if topic is not None:
        topics = [topic]
    elif src.topics:
        topics = list(src.topics)
    else:
        pattern = src.topic_pattern or ""
        topics = sorted(t for t in cluster if not t.startswith("__") and re.fullmatch(pattern, t))
        if not topics:
            raise ConfigError(f"no topic matches topic_pattern {pattern!r}")
    missing = [t for t in topics if t not in cluster]
    if missing:
        raise ConfigError(f"topic not found: {', '.join(missing)}")
    tps = [TopicPartition(t, p) for t in topics for p in cluster[t]]
    if partition is not None:
        tps = [tp for tp in tps if tp.partition == partition]
        if not tps:
            raise ConfigError(
                f"topic {topic} has no partition {partition} (it has {len(cluster[topic or ''])})"
            )
    return tps


async def new_offsets(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    target: Target,
    begin: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Where ``target`` puts each partition, given its log ``begin`` and ``end``: an offset
    is clamped to the log (with a warning), a time is the first offset at or after it."""
    if target == "earliest":
        return {tp: begin[tp] for tp in tps}
    if target == "latest":
        return {tp: end[tp] for tp in tps}
    if isinstance(target, int):
        out = {}
        for tp in tps:
            new = min(max(target, begin[tp]), end[tp])
            if new != target:
                where = "before the log start" if target < begin[tp] else "past the log end"
                warn(f"{tp.topic}[{tp.partition}]: offset {target} is {where}; using {new}")
            out[tp] = new
        return out
    assert isinstance(target, datetime)
    ms = int(target.timestamp() * 1000)
    if ms < 0:
        raise ConfigError(f"--to {target.isoformat()} is before 1970")
    found = await timed(
        consumer.offsets_for_times({tp: ms for tp in tps}), "cannot look up offsets by time"
    )
    # No record at or after that time: the partition's end.
    return {tp: (found[tp].offset if found.get(tp) is not None else end[tp]) for tp in tps}
