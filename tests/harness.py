"""Pytest plugin: a real Kafka broker and a real PostgreSQL server for the integration tests.

``tests/conftest.py`` loads it with ``pytest_plugins = ["tests.harness"]``. Where the servers
come from, in order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` and ``WARP_TEST_PG_DSN`` both set: those servers are used as is;
2. a Docker engine answers (``docker info``): testcontainers Kafka (KRaft) and Postgres 15;
3. otherwise :class:`sink.stack.LocalStack` in a temporary directory, stopped at session end.

``WARP_TEST_DOCKER=0`` skips the Docker probe (forces the local stack).

Failure-injection tests ask for ``local_stack``, which skips unless the stack is local.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from sink.stack.local import LocalStack, create_topic


@dataclass
class Stack:
    bootstrap_servers: str
    pg_dsn: str
    local: LocalStack | None  # None: external servers or containers (no failure injection)


def docker_available() -> bool:
    """True when a Docker engine answers within a few seconds."""
    if os.environ.get("WARP_TEST_DOCKER", "auto") == "0":
        return False
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _containers() -> Iterator[Stack]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer

    kafka = KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
    pg = PostgresContainer("postgres:15", username="warp", password="warp-secret", dbname="warp",
                           driver=None)
    with kafka, pg:
        yield Stack(kafka.get_bootstrap_server(), pg.get_connection_url(), None)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The servers for this test session (see the module docstring).

    The local stack lives outside pytest's temporary root: pytest resets that root to mode
    0700 when another session starts, which would lock the PostgreSQL server's own user out
    of its data directory while two test sessions run side by side."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    dsn = os.environ.get("WARP_TEST_PG_DSN")
    if bootstrap and dsn:
        yield Stack(bootstrap, dsn, None)
    elif docker_available():
        yield from _containers()
    else:
        root = Path(tempfile.mkdtemp(prefix="warp-test-stack-"))
        local = LocalStack(root, kafka_proxy_listener=True)  # for tests/chaos
        atexit.register(local.down)  # also on Ctrl-C or a crashed session
        try:
            info = local.up()
            yield Stack(info.bootstrap_servers, info.pg_dsn, local)
        finally:
            local.down()
            atexit.unregister(local.down)
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def local_stack(stack: Stack) -> LocalStack:
    """The local stack, for failure injection (restart PostgreSQL, stop/start Kafka)."""
    if stack.local is None:
        pytest.skip("failure injection needs the local stack (external servers are in use)")
    return stack.local


@pytest.fixture
def topic_factory(stack: Stack) -> Callable[..., Awaitable[str]]:
    """``await topic_factory(partitions=3)`` creates a uniquely named topic and returns it."""

    async def make(partitions: int = 1, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        await create_topic(stack.bootstrap_servers, name, partitions)
        return name

    return make


@pytest.fixture
async def pg(stack: Stack) -> AsyncIterator[asyncpg.Connection[Any]]:
    """An asyncpg connection to ``stack.pg_dsn``, closed after the test."""
    conn: asyncpg.Connection[Any] = await asyncpg.connect(stack.pg_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def pg_schema_factory(stack: Stack) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """``await pg_schema_factory()`` creates a fresh schema; all are dropped after the test."""
    conn: asyncpg.Connection[Any] = await asyncpg.connect(stack.pg_dsn)
    made: list[str] = []

    async def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        await conn.execute(f'CREATE SCHEMA "{name}"')
        made.append(name)
        return name

    try:
        yield make
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
        if made:  # a fresh connection: the test may have restarted the server
            conn = await asyncpg.connect(stack.pg_dsn)
            try:
                for name in made:
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            finally:
                await conn.close()
