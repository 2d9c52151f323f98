"""The real Debezium PostgreSQL connector for the end-to-end suite: a second PostgreSQL
server with ``wal_level=logical`` (the local stack's :class:`PostgresServer`, so it runs as
the ``postgres`` account when we are root), and Kafka Connect 4.1 standalone with
``io.debezium:debezium-connector-postgres`` from Maven Central (``pom.xml`` beside this
file, resolved once like the stack's Kafka classpath), writing to the session's Kafka.

One Connect worker runs one connector per converter set-up (:data:`SETUPS`); converters
are per connector, so one JVM serves all of them, each with its own topic prefix, slot and
publication.

Drain: Debezium confirms a slot LSN only after Connect committed the offsets of records the
producer got acks for. So once a marker row is in each prefix's marker topic and every
slot's ``confirmed_flush_lsn`` has passed the LSN taken just before the marker, everything
before it is durably in Kafka and the topics' end offsets are final.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from sink.stack.kafka import maven_classpath
from sink.stack.postgres import PostgresServer, pg_dsn
from sink.stack.process import free_ports, pid_alive, stop_process, tail

POM = Path(__file__).resolve().parent / "pom.xml"
CONNECT_JVM = ["-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:MaxMetaspaceSize=192m",
               "-Djava.awt.headless=true"]
LOG4J2 = ("status=warn\nappender.out.type=Console\nappender.out.name=OUT\n"
          "appender.out.layout.type=PatternLayout\n"
          "appender.out.layout.pattern=[%d{ISO8601}] %p %m (%c)%n\n"
          "rootLogger.level=INFO\nrootLogger.appenderRef.out.ref=OUT\n"
          "logger.cfg.name=org.apache.kafka.common.config.AbstractConfig\nlogger.cfg.level=WARN\n"
          "logger.plugins.name=org.apache.kafka.connect.runtime.isolation\n"
          "logger.plugins.level=WARN\n")
JSON = "org.apache.kafka.connect.json.JsonConverter"

# The converter set-ups compared: name -> connector properties on top of the common ones.
SETUPS: dict[str, dict[str, str]] = {
    "schemas": {"key.converter.schemas.enable": "true", "value.converter.schemas.enable": "true"},
    "noschemas": {"key.converter.schemas.enable": "false",
                  "value.converter.schemas.enable": "false"},
    "strings": {"key.converter.schemas.enable": "true", "value.converter.schemas.enable": "true",
                "decimal.handling.mode": "string", "interval.handling.mode": "string"},
    # Debezium's column.propagate.source.type: every field's schema carries the source
    # column's type, length and scale (``__debezium.source.column.*``).
    "propagate": {"key.converter.schemas.enable": "true",
                  "value.converter.schemas.enable": "true",
                  "column.propagate.source.type": ".*"},
}


class RigUnavailable(RuntimeError):
    """Java, Maven or the PostgreSQL server binaries are missing here."""


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    exe = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not exe or not Path(exe).is_file():
        raise RigUnavailable("java not found (Kafka Connect 4.x needs Java 17+)")
    return exe


def _props(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


class SourcePostgres(PostgresServer):
    """The local stack's server with logical decoding on and replication connections open."""

    def init(self) -> None:
        fresh = not self.initialized
        super().init()
        if not fresh:
            return
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("wal_level = logical\nmax_replication_slots = 10\n"
                       "max_wal_senders = 10\ntimezone = 'UTC'\n")
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 scram-sha-256\n")

    async def up(self) -> str:
        """Start the server (initialised once) and return the sink role's DSN."""
        self.init()
        if self.pid() is None:
            self.ctl("start")
        await self.setup(self.port())
        return pg_dsn(self.port())


@dataclass
class Capture:
    """What the fixture hands the tests: where the source is and which topics hold what."""

    source_dsn: str
    bootstrap: str
    prefixes: dict[str, str]  # set-up name -> topic prefix
    workload: list[dict[str, Any]]
    connect_log: Path
    seconds: dict[str, float]

    def topic(self, setup: str, table: str) -> str:
        return f"{self.prefixes[setup]}.app.{table}"


class Connect:
    """ConnectStandalone with one Debezium PostgreSQL connector per set-up, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.dir = root
        self.log = root / "connect.log"
        self.pid: int | None = None
        self.rest = ""

    pom = POM
    classpath_name = "debezium-pg-connect"

    def command(self, bootstrap: str, source_port: int, prefixes: dict[str, str]) -> list[str]:
        try:
            cp = maven_classpath(self.pom, self.classpath_name, timeout=1200)
        except Exception as exc:
            raise RigUnavailable(str(exc)) from exc
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "log4j2.properties").write_text(LOG4J2)
        self.rest = f"http://127.0.0.1:{free_ports(1)[0]}"
        worker = {
            "bootstrap.servers": bootstrap, "key.converter": JSON, "value.converter": JSON,
            "offset.storage.file.filename": str(self.dir / "connect.offsets"),
            # Debezium confirms slot LSNs (the drain signal) only when Connect commits
            # offsets: every second instead of the default minute.
            "offset.flush.interval.ms": "1000",
            "listeners": self.rest,
            # Every jar ships service manifests: ServiceLoader finds the plugins in ~0.2 s,
            # where scanning 70 jars by reflection costs seconds.
            "plugin.discovery": "service_load",
            "producer.enable.idempotence": "true", "producer.linger.ms": "5",
        }
        files = [self.dir / "worker.properties"]
        files[0].write_text(_props(worker))
        for setup, prefix in prefixes.items():
            path = self.dir / f"connector-{setup}.properties"
            path.write_text(_props(self.connector(setup, prefix, source_port, bootstrap)))
            files.append(path)
        return [_java(), *CONNECT_JVM,
                f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}", "-cp", cp,
                "org.apache.kafka.connect.cli.ConnectStandalone", *map(str, files)]

    def connector(self, setup: str, prefix: str, source_port: int, bootstrap: str
                  ) -> dict[str, str]:
        """The connector properties of one converter set-up."""
        user, password, database = "warp", "warp-secret", "warp"
        return {
            "name": f"pg-{setup}",
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "tasks.max": "1", "database.hostname": "127.0.0.1",
            "database.port": str(source_port), "database.user": user,
            "database.password": password, "database.dbname": database,
            "topic.prefix": prefix, "plugin.name": "pgoutput",
            "slot.name": f"slot_{setup}", "publication.name": f"pub_{setup}",
            "publication.autocreate.mode": "all_tables", "schema.include.list": "app",
            "snapshot.mode": "initial", "hstore.handling.mode": "json",
            # Debezium drops TRUNCATE events by default ("t"): the suite wants them.
            "skipped.operations": "none", "tombstones.on.delete": "true",
            "status.update.interval.ms": "1000",
            "topic.creation.default.replication.factor": "1",
            "topic.creation.default.partitions": "1",
            "key.converter": JSON, "value.converter": JSON,
            **SETUPS[setup],
        }

    def start(self, cmd: list[str]) -> None:
        with self.log.open("ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
        self.pid = proc.pid

    def status(self, name: str) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.rest}/connectors/{name}/status",
                                        timeout=3) as resp:
                return dict(json.loads(resp.read()))
        except (urllib.error.URLError, OSError, ValueError):
            return None

    async def wait_running(self, names: list[str], within: float = 180) -> None:
        deadline = time.monotonic() + within
        pending = set(names)
        while pending:
            if self.pid is None or not pid_alive(self.pid):
                raise RuntimeError(f"Kafka Connect exited:\n{tail(self.log, 60)}")
            for name in sorted(pending):
                st = await asyncio.to_thread(self.status, name)
                if st is None:
                    continue
                tasks = st.get("tasks") or []
                states = [st.get("connector", {}).get("state")] + [t.get("state") for t in tasks]
                if "FAILED" in states:
                    raise RuntimeError(f"connector {name} FAILED: {json.dumps(st)[:3000]}")
                if tasks and all(s == "RUNNING" for s in states):
                    pending.discard(name)
            if time.monotonic() > deadline:
                raise RuntimeError(f"connectors {sorted(pending)} not RUNNING after "
                                   f"{within:.0f} s\n{tail(self.log, 40)}")
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.pid is not None and pid_alive(self.pid):
            stop_process(self.pid, signal.SIGTERM)


async def end_offsets(bootstrap: str, prefixes: list[str]) -> dict[tuple[str, int], int]:
    """Log-end offset of every partition of every topic starting with one of ``prefixes``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        # topics() does not keep the metadata in the client: read partitions from the answer
        cluster = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(t, p) for t in cluster.topics()
                 if any(t.startswith(f"{x}.") for x in prefixes)
                 for p in (cluster.partitions_for_topic(t) or set())]
        if not parts:
            return {}
        ends = await consumer.end_offsets(parts)
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def wait_messages(bootstrap: str, prefix: str, at_least: int, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        total = sum((await end_offsets(bootstrap, [prefix])).values())
        if total >= at_least:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{prefix}: only {total}/{at_least} messages after {within} s")
        await asyncio.sleep(0.2)


async def drain(dsn: str, bootstrap: str, prefixes: list[str], marker_sql: str,
                marker_table: str, within: float = 120) -> None:
    """Insert the marker and wait until every prefix has it and every slot confirmed it."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        before = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
        await conn.execute(marker_sql)
        deadline = time.monotonic() + within
        while True:
            behind = await conn.fetchval(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical' "
                "AND (confirmed_flush_lsn IS NULL OR confirmed_flush_lsn < $1::text::pg_lsn)",
                before)
            ends = await end_offsets(bootstrap, prefixes)
            markers = [ends.get((f"{p}.app.{marker_table}", 0), 0) for p in prefixes]
            if behind == 0 and all(n >= 2 for n in markers):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"not drained after {within} s: {behind} slots behind, "
                                   f"marker messages {markers}")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def run_workload(dsn: str, steps: list[tuple[str, list[str], bool]]) -> list[dict[str, Any]]:
    """Each step in one transaction; a step expected to fail must fail."""
    out: list[dict[str, Any]] = []
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        for label, stmts, expect_error in steps:
            entry: dict[str, Any] = {"step": label, "ok": True}
            try:
                async with conn.transaction():
                    for sql in stmts:
                        await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                if not expect_error:
                    raise
                entry = {"step": label, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            else:
                assert not expect_error, f"workload step {label!r} should have failed"
            out.append(entry)
    finally:
        await conn.close()
    return out


def stop_quietly(connect: Connect, source: PostgresServer) -> None:
    with contextlib.suppress(Exception):
        connect.stop()
    with contextlib.suppress(Exception):
        source.stop()
