"""The clients the operator commands (``offsets``, ``dlq``) use, each call bounded by
:data:`KAFKA_TIMEOUT`: a Kafka consumer in no group, the admin client, topic and offset
metadata, and one PostgreSQL connection. A failure is one :class:`~sink.errors.WarpError`
with a one-line reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

from sink.config import Settings, SourceConfig, postgres_connect_args, show_dsn
from sink.errors import WarpError
from sink.service import kafka_admin, kafka_security

KAFKA_TIMEOUT = 30.0  # seconds for connecting and for each metadata / offset request


async def timed(aw: Awaitable[Any], what: str) -> Any:
    try:
        return await asyncio.wait_for(aw, timeout=KAFKA_TIMEOUT)
    except TimeoutError:
        raise WarpError(f"{what}: no answer within {KAFKA_TIMEOUT:.0f} s") from None
    except KafkaError as exc:
        raise WarpError(f"{what}: {type(exc).__name__}: {exc}") from None


async def start(client: Any, src: SourceConfig) -> None:
    await timed(client.start(), f"cannot reach Kafka at {src.bootstrap_servers}")


@asynccontextmanager
async def reader(src: SourceConfig) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer in no group: reads and looks up offsets, never commits or joins."""
    client = AIOKafkaConsumer(
        bootstrap_servers=src.bootstrap_servers,
        client_id=f"{src.client_id}-tool",
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        fetch_max_bytes=src.fetch_max_bytes,
        max_partition_fetch_bytes=min(src.fetch_max_bytes, 8 * 1024 * 1024),
        **kafka_security(src),
    )
    await start(client, src)
    try:
        yield client
    finally:
        await client.stop()


@asynccontextmanager
async def admin_client(src: SourceConfig) -> AsyncIterator[AIOKafkaAdminClient]:
    client = kafka_admin(src)
    await start(client, src)
    try:
        yield client
    finally:
        await client.close()


async def topic_partitions(admin: AIOKafkaAdminClient) -> dict[str, list[int]]:
    """Every topic of the cluster with its partitions. (Asking for all topics, not by name:
    a by-name metadata request may auto-create a topic that does not exist.)"""
    described = await timed(admin.describe_topics(), "cannot read topic metadata")
    out: dict[str, list[int]] = {}
    for t in described:
        if t.get("error_code", 0) == 0:
            out[t["topic"]] = sorted(p["partition"] for p in t.get("partitions") or [])
    return out


async def offsets_of(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(log start, log end) of each partition; the end is the last stable offset, what a
    read_committed consumer (the sink) can reach."""
    if not tps:
        return {}, {}
    begin = await timed(consumer.beginning_offsets(tps), "cannot read log start offsets")
    end = await timed(consumer.end_offsets(tps), "cannot read log end offsets")
    return dict(begin), dict(end)


@asynccontextmanager
async def pg_connect(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    d = settings.destination
    try:
        conn = await asyncpg.connect(
            **postgres_connect_args(d), timeout=d.connection_timeout,
            command_timeout=d.command_timeout,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        shown = show_dsn(d.connection_string.get_secret_value())
        raise WarpError(
            f"cannot connect to PostgreSQL at {shown}: {type(exc).__name__}: {exc}"
        ) from None
    try:
        yield conn
    finally:
        await conn.close()


@dataclass
class Member:
    client_id: str
    host: str
    partitions: list[str]


async def group_members(admin: AIOKafkaAdminClient, group: str) -> tuple[str, list[Member]]:
    """The group's state and its members with the partitions each was assigned."""
    responses = await timed(admin.describe_consumer_groups([group]),
                            f"cannot describe group {group}")
    for resp in responses:
        for g in resp.to_object()["groups"]:
            if g["group"] != group:
                continue
            if g["error_code"] != 0:
                raise WarpError(f"cannot describe group {group}: error code {g['error_code']}")
            members = []
            for m in g["members"]:
                raw = m.get("member_assignment") or b""
                tps = ConsumerProtocolMemberAssignment.decode(raw).partitions() if raw else []
                members.append(Member(m["client_id"], m["client_host"].lstrip("/"),
                                      [f"{tp.topic}[{tp.partition}]" for tp in sorted(tps)]))
            return g["state"], sorted(members, key=lambda x: (x.client_id, x.host))
    return "Dead", []
