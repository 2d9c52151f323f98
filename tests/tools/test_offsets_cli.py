"""``warp-sink offsets show|reset`` against real Kafka and PostgreSQL: the offsets table and
the group's commits both move (or, with --dry-run, neither), a live group is refused."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sink.postgres import metadata
from sink.stack.local import create_topic
from tests.support import committed_offsets, warp

pytestmark = pytest.mark.integration

PARTS = 3
PER_PHASE = 5  # records per partition before the cut time, and again after it


# --- fixtures --------------------------------------------------------------------------------


@dataclass
class Data:
    topic: str
    cut: datetime  # every partition: offsets < PER_PHASE are before it, the rest after


@pytest.fixture(scope="module")
async def data(stack: Any) -> Data:
    """One topic, PARTS partitions, 2 * PER_PHASE records each, timestamps an hour ago and
    an hour ago + 10 s; read only by the tests (each moves its own group)."""
    topic = f"offsets-{uuid.uuid4().hex[:12]}"
    await create_topic(stack.bootstrap_servers, topic, PARTS)
    base = int(time.time() * 1000) - 3_600_000
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers, acks="all")
    await producer.start()
    try:
        futures = []
        for phase, ts in ((0, base), (1, base + 10_000)):
            for p in range(PARTS):
                for i in range(PER_PHASE):
                    futures.append(await producer.send(
                        topic, value=f"{phase}-{p}-{i}".encode(), partition=p, timestamp_ms=ts))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return Data(topic, datetime.fromtimestamp((base + 5_000) / 1000, UTC))


@dataclass
class Env:
    config: Path
    group: str
    schema: str
    topic: str
    bootstrap: str
    pg: asyncpg.Connection

    async def stored(self) -> dict[int, int]:
        rows = await self.pg.fetch(
            f'SELECT partition, next_offset FROM "{self.schema}".kafka_offsets '
            "WHERE group_id = $1 AND topic = $2", self.group, self.topic)
        return {r["partition"]: r["next_offset"] for r in rows}

    async def committed(self) -> dict[int, int | None]:
        return await committed_offsets(self.bootstrap, self.group, self.topic)

    async def seed(self, table: dict[int, int], group: dict[int, int]) -> None:
        await metadata.migrate(self.pg, self.schema)
        await metadata.set_offsets(
            self.pg, self.schema, self.group, {(self.topic, p): o for p, o in table.items()})
        if group:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group,
                                        enable_auto_commit=False)
            await consumer.start()
            try:
                offsets = {TopicPartition(self.topic, p): o for p, o in group.items()}
                consumer.assign(list(offsets))
                await consumer.commit(offsets)
            finally:
                await consumer.stop()


@pytest.fixture
async def env(stack: Any, data: Data, tmp_path: Path) -> AsyncIterator[Env]:
    group = f"g_{uuid.uuid4().hex[:8]}"
    schema = f"m_{uuid.uuid4().hex[:8]}"
    config = tmp_path / "c.yaml"
    config.write_text(f"""
source:
  bootstrap_servers: "{stack.bootstrap_servers}"
  topics: ["{data.topic}"]
  group_id: "{group}"
destination:
  connection_string: "{stack.pg_dsn}"
  metadata_schema: "{schema}"
observability:
  metrics_port: 0
""", encoding="utf-8")
    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        yield Env(config, group, schema, data.topic, stack.bootstrap_servers, conn)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def plan_lines(out: str) -> dict[int, str]:
    return {int(line.split("[")[1].split("]")[0]): line
            for line in out.splitlines() if line.startswith("offsets-")}


# --- offsets show -----------------------------------------------------------------------------


async def test_show_lists_table_group_and_log_end(env: Env, capsys: Any) -> None:
    await env.seed(table={0: 3, 1: 4}, group={0: 2, 1: 4, 2: 6})
    assert await warp("offsets", "show", "--config", str(env.config)) == 0
    out = capsys.readouterr().out
    rows = {int(cols[1]): cols for cols in (line.split() for line in out.splitlines())
            if cols and cols[0] == env.topic}
    end = 2 * PER_PHASE
    assert rows[0] == [env.topic, "0", "3", "2", "0", str(end), str(end - 3)]
    assert rows[1] == [env.topic, "1", "4", "4", "0", str(end), str(end - 4)]
    assert rows[2] == [env.topic, "2", "-", "6", "0", str(end), str(end - 6)]

    assert await warp("offsets", "show", "--config", str(env.config), "--json",
                      "--topic", env.topic) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["group_id"] == env.group
    parts = {p["partition"]: p for p in doc["partitions"]}
    assert parts[0] == {"topic": env.topic, "partition": 0, "stored": 3, "committed": 2,
                             "log_start": 0, "log_end": end, "lag": end - 3,
                             "position_from": "table"}
    assert (parts[2]["stored"], parts[2]["committed"], parts[2]["position_from"]) == (
        None, 6, "group")


async def test_show_before_the_sink_ever_ran(env: Env, capsys: Any) -> None:
    # No metadata schema, no commits: the lag counts from auto_offset_reset (earliest).
    assert await warp("offsets", "show", "--config", str(env.config), "--json") == 0
    parts = json.loads(capsys.readouterr().out)["partitions"]
    assert [(p["stored"], p["committed"], p["lag"]) for p in parts] == [
        (None, None, 2 * PER_PHASE)] * PARTS


# --- offsets reset ----------------------------------------------------------------------------


def _targets(data: Data) -> list[tuple[str, int]]:
    return [("earliest", 0), ("latest", 2 * PER_PHASE), ("7", 7),
            (data.cut.isoformat(), PER_PHASE)]


async def test_reset_dry_run_moves_nothing(env: Env, data: Data, capsys: Any) -> None:
    await env.seed(table={p: 3 for p in range(PARTS)}, group={p: 3 for p in range(PARTS)})
    for to, want in _targets(data):
        assert await warp("offsets", "reset", "--config", str(env.config), "--to", to,
                          "--dry-run") == 0, to
        out = capsys.readouterr().out
        plan = plan_lines(out)
        assert sorted(plan) == list(range(PARTS)), out
        for line in plan.values():
            assert f"table 3 -> {want}" in line and f"group 3 -> {want}" in line, (to, line)
        assert "dry run: nothing changed" in out
    assert await env.stored() == {p: 3 for p in range(PARTS)}
    assert await env.committed() == {p: 3 for p in range(PARTS)}


@pytest.mark.parametrize("which", ["earliest", "latest", "offset", "datetime"])
async def test_reset_moves_table_and_group(env: Env, data: Data, which: str,
                                           capsys: Any) -> None:
    await env.seed(table={0: 3, 1: 3}, group={0: 3})  # partition 2: nothing yet
    to, want = dict(zip(["earliest", "latest", "offset", "datetime"], _targets(data),
                        strict=True))[which]
    assert await warp("offsets", "reset", "--config", str(env.config), "--to", to) == 0
    out = capsys.readouterr().out
    assert "group offsets committed" in out
    # what the next run reads again: from the new offset up to the stored one (partition 2
    # stored nothing: up to its end)
    again = sum(max(0, s - want) for s in [3, 3, *[2 * PER_PHASE] * (PARTS - 2)])
    if again:
        assert f"{again} events will be read again" in out, out
    else:
        assert "read again" not in out, out
    assert await env.stored() == {p: want for p in range(PARTS)}
    assert await env.committed() == {p: want for p in range(PARTS)}


async def test_reset_offset_is_clamped_and_one_partition(env: Env, capsys: Any) -> None:
    await env.seed(table={p: 3 for p in range(PARTS)}, group={p: 3 for p in range(PARTS)})
    assert await warp("offsets", "reset", "--config", str(env.config), "--to", "999",
                      "--topic", env.topic, "--partition", "1") == 0
    captured = capsys.readouterr()
    assert f"offset 999 is past the log end; using {2 * PER_PHASE}" in captured.err
    assert sorted(plan_lines(captured.out)) == [1]
    assert await env.stored() == {0: 3, 1: 2 * PER_PHASE, 2: 3}
    assert await env.committed() == {0: 3, 1: 2 * PER_PHASE, 2: 3}


async def test_reset_refused_while_the_group_has_a_live_member(env: Env, capsys: Any) -> None:
    await env.seed(table={p: 3 for p in range(PARTS)}, group={p: 3 for p in range(PARTS)})
    member = AIOKafkaConsumer(env.topic, bootstrap_servers=env.bootstrap, group_id=env.group,
                              enable_auto_commit=False, client_id="live-member")
    await member.start()
    try:
        deadline = time.monotonic() + 30
        while not member.assignment():
            assert time.monotonic() < deadline, "the member never got an assignment"
            await member.getmany(timeout_ms=200)

        assert await warp("offsets", "reset", "--config", str(env.config),
                          "--to", "earliest") == 1
        err = capsys.readouterr().err
        assert "live member" in err and "live-member" in err and "--force" in err
        assert await env.stored() == {p: 3 for p in range(PARTS)}

        assert await warp("offsets", "reset", "--config", str(env.config), "--to", "earliest",
                          "--dry-run") == 0
        assert "would be refused" in capsys.readouterr().err

        assert await warp("offsets", "reset", "--config", str(env.config), "--to", "earliest",
                          "--force") == 0
        out = capsys.readouterr().out
        assert "group commit skipped" in out
        assert await env.stored() == {p: 0 for p in range(PARTS)}
    finally:
        await member.stop()
    assert await env.committed() == {p: 3 for p in range(PARTS)}  # the group refused


@pytest.mark.parametrize("argv, message", [
    (["--to", "yesterday"], "--to takes"),
    (["--to", "earliest", "--partition", "1"], "--partition needs --topic"),
    (["--to", "earliest", "--topic", "no-such-topic-here"], "topic not found"),
    (["--to", "earliest", "--topic", "{topic}", "--partition", "9"], "no partition 9"),
    (["--to", "earliest", "--partition", "x"], "invalid int"),
])
async def test_reset_bad_usage_exits_2(env: Env, argv: list[str], message: str,
                                       capsys: Any) -> None:
    args = [a.replace("{topic}", env.topic) for a in argv]
    assert await warp("offsets", "reset", "--config", str(env.config), *args) == 2
    assert message in capsys.readouterr().err
    assert await env.committed() == {p: None for p in range(PARTS)}



async def test_show_and_reset_with_a_topic_pattern(env: Env, capsys: Any) -> None:
    text = env.config.read_text()
    env.config.write_text(text.replace(f'topics: ["{env.topic}"]',
                                       f'topic_pattern: "{env.topic[:-3]}.*"'))
    assert await warp("offsets", "reset", "--config", str(env.config), "--to", "latest") == 0
    assert await env.stored() == {p: 2 * PER_PHASE for p in range(PARTS)}
    capsys.readouterr()
    assert await warp("offsets", "show", "--config", str(env.config), "--json") == 0
    parts = json.loads(capsys.readouterr().out)["partitions"]
    assert {(p["topic"], p["lag"]) for p in parts} == {(env.topic, 0)}
