"""The local stack and the test harness: real Kafka and PostgreSQL answer, restarts keep
data, ``down`` leaves nothing running."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from sink.stack import kafka
from sink.stack.local import LocalStack, create_topic, main, pid_alive
from tests.harness import Stack

pytestmark = pytest.mark.integration

TopicFactory = Callable[..., Awaitable[str]]


async def _produce(bootstrap: str, topic: str, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"g-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    try:
        got: list[bytes] = []
        while len(got) < count:
            msg = await asyncio.wait_for(consumer.getone(), 30)
            got.append(msg.value)
        return got
    finally:
        await consumer.stop()


def _procs_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in entry.read_bytes() and pid_alive(int(entry.parent.name)):
                pids.append(int(entry.parent.name))
        except OSError:
            continue
    return pids


async def test_kafka_round_trip(stack: Stack, topic_factory: TopicFactory) -> None:
    topic = await topic_factory(partitions=3)
    await _produce(stack.bootstrap_servers, topic, b"hello")
    assert await _consume(stack.bootstrap_servers, topic, 1) == [b"hello"]


async def test_create_topic_is_idempotent(stack: Stack, topic_factory: TopicFactory) -> None:
    topic = await topic_factory(partitions=2)
    await create_topic(stack.bootstrap_servers, topic, 2)
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
    await admin.start()
    try:
        [meta] = await admin.describe_topics([topic])
        assert sorted(p["partition"] for p in meta["partitions"]) == [0, 1]
    finally:
        await admin.close()


async def test_postgres_answers_with_password(
    stack: Stack, pg: asyncpg.Connection[Any], pg_schema_factory: Callable[[], Awaitable[str]]
) -> None:
    assert await pg.fetchval("SELECT 1") == 1
    schema = await pg_schema_factory()
    await pg.execute(f'CREATE TABLE "{schema}".t (id int PRIMARY KEY)')
    assert await pg.fetchval(f'SELECT count(*) FROM "{schema}".t') == 0
    if stack.local is not None:  # host logins are checked by password
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(stack.pg_dsn.replace("warp-secret", "wrong"))


def test_up_is_idempotent(local_stack: LocalStack) -> None:
    # Other tests stop and start PostgreSQL with pg_ctl: the first up() records its pid.
    before = local_stack.up()
    assert local_stack.info() == before
    started = time.monotonic()
    again = local_stack.up()
    assert time.monotonic() - started < 5
    assert again == before
    assert again.kafka_pid > 0 and again.pg_pid > 0
    assert pid_alive(again.kafka_pid) and pid_alive(again.pg_pid)


async def test_restart_postgres_keeps_data(stack: Stack, local_stack: LocalStack) -> None:
    table = f"keep_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(stack.pg_dsn)
    await conn.execute(f"CREATE TABLE {table} (v int); INSERT INTO {table} VALUES (42)")
    before = local_stack.info()
    assert before is not None
    after = await local_stack.arestart_postgres(immediate=True)
    assert after.pg_port == before.pg_port and after.pg_dsn == before.pg_dsn
    assert after.pg_pid != before.pg_pid and not pid_alive(before.pg_pid)
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        await conn.fetchval("SELECT 1")  # the crash cut the old session
    conn.terminate()
    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        assert await conn.fetchval(f"SELECT v FROM {table}") == 42
        await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()


async def test_restart_kafka_keeps_messages(
    stack: Stack, local_stack: LocalStack, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory(partitions=1)
    await _produce(stack.bootstrap_servers, topic, b"before")
    before = local_stack.info()
    assert before is not None
    await local_stack.astop_kafka()
    assert not pid_alive(before.kafka_pid)
    after = await local_stack.astart_kafka()
    assert after.bootstrap_servers == before.bootstrap_servers
    assert after.kafka_pid != before.kafka_pid
    await _produce(stack.bootstrap_servers, topic, b"after")
    assert await _consume(stack.bootstrap_servers, topic, 2) == [b"before", b"after"]


def test_cli_up_env_down_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "cli-stack"
    args = ["--dir", str(root)]
    try:
        assert main(["up", *args]) == 0
        info = LocalStack(root).info()
        assert info is not None
        out = capsys.readouterr().out
        assert out.startswith("# kafka")
        assert main(["env", *args]) == 0
        env = capsys.readouterr().out.splitlines()
        assert env == [f"export KAFKA_BOOTSTRAP_SERVERS={info.bootstrap_servers}",
                       f"export WARP_PG_DSN={info.pg_dsn}"]
        assert main(["status", *args]) == 0
    finally:
        assert main(["down", *args]) == 0
    assert not pid_alive(info.kafka_pid) and not pid_alive(info.pg_pid)
    assert _procs_mentioning(str(root)) == []
    assert not (root / "stack.json").exists()
    capsys.readouterr()
    assert main(["env", *args]) == 1
    assert "no stack is up" in capsys.readouterr().err


def test_down_without_up_is_harmless(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path / "never")
    stack.down()
    assert stack.info() is None


def test_up_without_the_repository_says_so_and_sets_nothing_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pip install .` ships sink/ only: the pom that resolves Kafka's jars stays in the
    repository. The installed `warp-sink stack up` ran initdb, then died on a bare
    "[Errno 2] No such file or directory: .../site-packages/deploy/local/pom.xml"."""
    monkeypatch.setattr(kafka, "POM", tmp_path / "site-packages" / "deploy/local/pom.xml")
    monkeypatch.delenv("WARP_KAFKA_CLASSPATH", raising=False)
    root = tmp_path / "installed-stack"
    try:
        assert main(["up", "--dir", str(root)]) == 1
    finally:
        main(["down", "--dir", str(root)])
    err = capsys.readouterr().err
    assert "deploy/local/pom.xml" in err and "from a clone" in err
    assert "WARP_KAFKA_CLASSPATH" in err and "Errno" not in err
    assert not (root / "pg" / "data").exists() and LocalStack(root).info() is None
    assert _procs_mentioning(str(root)) == []


def test_warp_sink_stack_down_purge_deletes_the_data(tmp_path: Path) -> None:
    from sink import cli

    root = tmp_path / "purged"
    (root / "pg").mkdir(parents=True)
    (root / "pg" / "keep-me").write_text("data")
    assert cli.main(["stack", "down", "--dir", str(root)]) == 0
    assert (root / "pg" / "keep-me").is_file()  # without --purge the data stays
    assert cli.main(["stack", "down", "--purge", "--dir", str(root)]) == 0
    assert not root.exists()
