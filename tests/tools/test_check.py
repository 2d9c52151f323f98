"""`warp-sink check` against the real Kafka and PostgreSQL (and the in-process schema
registry): exit 0 with one OK line per check for a good configuration; exit 1 with a FAIL
line naming the problem and a hint for each broken one; secrets never shown."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from sink import logs
from sink.cli import main
from tests.schema_registry_server import RegistryServer
from tests.support import produce, unique

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _forget_secrets() -> Any:
    yield
    logs.clear_secrets()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(tmp_path: Path, stack: Any, topic: str, group: str, extra: str = "") -> Path:
    path = tmp_path / f"c-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(f"""
source:
  bootstrap_servers: "{stack.bootstrap_servers}"
  topics: ["{topic}"]
  group_id: "{group}"
destination:
  connection_string: "{stack.pg_dsn}"
  connection_timeout: 10
{extra}""", encoding="utf-8")
    return path


async def check(
    capsys: pytest.CaptureFixture[str], path: Path, *flags: str
) -> tuple[int, list[str]]:
    argv = ["check", "--config", str(path)]
    for flag in flags:
        argv += ["--set", flag]
    code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out.splitlines()


def line(lines: list[str], prefix: str) -> str:
    found = [ln for ln in lines if ln.split(" ", 1)[-1].lstrip().startswith(prefix)]
    assert len(found) == 1, (prefix, lines)
    return found[0]


async def test_good_config(stack: Any, topic_factory: Any, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    topic = await topic_factory(partitions=2)
    group = unique("g")
    await produce(stack.bootstrap_servers, topic, [(b"k", b"v")])
    path = config(tmp_path, stack, topic, group)

    code, lines = await check(capsys, path)
    assert code == 0, lines
    assert line(lines, "kafka").startswith(f"OK    kafka {stack.bootstrap_servers}: 1 topics found")
    assert f"group {group}: new (no commits yet" in line(lines, "kafka")
    assert f"dead-letter topic {group}.dlq does not exist yet" in line(lines, "kafka")
    assert line(lines, "schema registry") == (
        "OK    schema registry: not configured (key_format json, value_format json)")
    pg = line(lines, "postgresql")
    assert pg.startswith("OK    postgresql postgresql://") and ":***@" in pg
    assert "PostgreSQL 1" in pg and "may create schemas and tables" in pg
    assert lines[-1] == "all checks passed"

    # once the group has committed, its state and commits are reported
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap_servers, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): 1})
    finally:
        await consumer.stop()
    code, lines = await check(capsys, path)
    assert code == 0 and f"group {group}: Empty, 1 partitions committed" in line(lines, "kafka")


async def test_topic_pattern(stack: Any, topic_factory: Any, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    prefix = f"chk{uuid.uuid4().hex[:6]}"
    await topic_factory(prefix=prefix)
    await topic_factory(prefix=prefix)
    path = config(tmp_path, stack, "x", unique("g"))
    code, lines = await check(capsys, path, "source.topics=[]",
                              f"source.topic_pattern={prefix}-.*")
    assert code == 0 and "2 topics match the pattern" in line(lines, "kafka")
    code, lines = await check(capsys, path, "source.topics=[]",
                              "source.topic_pattern=nothing-matches-this-.*")
    assert code == 1
    assert "FAIL  kafka" in line(lines, "kafka") and "no topic matches" in line(lines, "kafka")


async def test_wrong_kafka_port(stack: Any, topic_factory: Any, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, stack, await topic_factory(), unique("g"))
    port = closed_port()
    code, lines = await check(capsys, path, f"source.bootstrap_servers=127.0.0.1:{port}")
    assert code == 1
    kafka = line(lines, "kafka")
    assert kafka.startswith(f"FAIL  kafka 127.0.0.1:{port}: cannot reach the brokers")
    assert "hint: check source.bootstrap_servers" in kafka
    assert line(lines, "postgresql").startswith("OK")  # the other checks still ran
    assert lines[-1] == "1 of 3 checks failed"


async def test_missing_topic(stack: Any, topic_factory: Any, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    present = await topic_factory()
    missing = f"absent-{uuid.uuid4().hex[:8]}"
    path = config(tmp_path, stack, present, unique("g"))
    code, lines = await check(capsys, path, f'source.topics=["{present}", "{missing}"]')
    assert code == 1
    assert f"FAIL  kafka {stack.bootstrap_servers}: topics not found: {missing} (hint:" in \
        line(lines, "kafka")


async def test_missing_tls_file(stack: Any, topic_factory: Any, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, stack, await topic_factory(), unique("g"))
    code, lines = await check(capsys, path, "source.security_protocol=SSL",
                              f"source.ssl_cafile={tmp_path / 'nope.pem'}")
    assert code == 1
    assert "source.ssl_cafile" in line(lines, "kafka") and "not readable" in line(lines, "kafka")


async def test_wrong_postgres_password_prints_masked(
    stack: Any, topic_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, stack, await topic_factory(), unique("g"))
    user_part, _, host_part = stack.pg_dsn.split("://", 1)[1].rpartition("@")
    user = user_part.partition(":")[0]
    wrong = f"postgresql://{user}:Not-The-Pw-31337@{host_part}"
    code, lines = await check(capsys, path, f"destination.connection_string={wrong}")
    assert code == 1
    pg = line(lines, "postgresql")
    assert pg.startswith(f"FAIL  postgresql postgresql://{user}:***@{host_part}: ")
    assert "password authentication failed" in pg and "hint: check the user and password" in pg
    assert "Not-The-Pw-31337" not in "\n".join(lines)


async def test_unreachable_postgres(stack: Any, topic_factory: Any, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, stack, await topic_factory(), unique("g"))
    port = closed_port()
    code, lines = await check(capsys, path,
                              f"destination.connection_string=postgresql://u:pw-4242@127.0.0.1:"
                              f"{port}/db")
    assert code == 1
    pg = line(lines, "postgresql")
    assert f"cannot connect to 127.0.0.1:{port}" in pg and "pw-4242" not in pg


async def test_postgres_user_without_create_rights(
    stack: Any, pg: asyncpg.Connection[Any], topic_factory: Any, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    role = f"warp_ro_{uuid.uuid4().hex[:8]}"
    try:
        await pg.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'ro-pw-5555'")
    except asyncpg.InsufficientPrivilegeError:
        pytest.skip("the test user may not create roles")
    try:
        host_part = stack.pg_dsn.split("://", 1)[1].rpartition("@")[2]
        path = config(tmp_path, stack, await topic_factory(), unique("g"))
        code, lines = await check(capsys, path, "destination.connection_string="
                                  f"postgresql://{role}:ro-pw-5555@{host_part}")
        assert code == 1
        pg_line = line(lines, "postgresql")
        assert f"user {role} may not create schemas" in pg_line
        assert "GRANT CREATE ON DATABASE" in pg_line and "ro-pw-5555" not in pg_line
    finally:
        await pg.execute(f"DROP ROLE IF EXISTS {role}")


async def test_schema_registry(stack: Any, topic_factory: Any, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, stack, await topic_factory(), unique("g"))
    with RegistryServer(username="sink", password="Reg-Pw-8080") as srv:
        srv.register("t-value", {"type": "string"})
        auth = [f"source.schema_registry_url={srv.url}", "source.schema_registry_username=sink"]
        code, lines = await check(capsys, path, *auth,
                                  "source.schema_registry_password=Reg-Pw-8080")
        assert code == 0, lines
        assert line(lines, "schema registry") == (
            f"OK    schema registry: {srv.url} answers (1 subjects)")
        code, lines = await check(capsys, path, *auth,
                                  "source.schema_registry_password=Wrong-Reg-Pw")
        assert code == 1
        reg = line(lines, "schema registry")
        assert reg.startswith("FAIL  schema registry:") and "refused the credentials" in reg
        assert "Wrong-Reg-Pw" not in "\n".join(lines)
    code, lines = await check(capsys, path, f"source.schema_registry_url={srv.url}")
    assert code == 1  # the server is gone
    reg = line(lines, "schema registry")
    assert reg.startswith(f"FAIL  schema registry: cannot use {srv.url}")
    assert "hint: check source.schema_registry_url" in reg
