"""Peer 2: the Debezium JDBC sink connector in Kafka Connect standalone.

The jars come from Maven Central through ``bench/peers/pom.xml`` (Kafka Connect runtime
4.1.1, ``io.debezium:debezium-connector-jdbc`` and ``io.debezium:debezium-connector-mongodb``
for its ``ExtractNewDocumentState`` SMT, the PostgreSQL JDBC driver), resolved once into
``~/.m2`` and cached as a classpath like the local stack's Kafka classpath.

:func:`command` writes ``worker.properties``, ``connector.properties`` and a log4j2 file into
a directory and returns the ``java ... ConnectStandalone`` command line. Everything is one
classpath (no ``plugin.path`` isolation): the two Debezium artifacts share one version.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

from sink.stack.kafka import StackError, maven_classpath

POM = Path(__file__).resolve().parent / "pom.xml"
# Kafka's own connect-standalone.sh default heap (KAFKA_HEAP_OPTS).
JVM_OPTS = ["-Xms256M", "-Xmx2G", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
LOG4J2 = ("status=warn\nappender.out.type=Console\nappender.out.name=OUT\n"
          "appender.out.layout.type=PatternLayout\nappender.out.layout.pattern=[%d] %p %m (%c)%n\n"
          "rootLogger.level=INFO\nrootLogger.appenderRef.out.ref=OUT\n"
          "logger.hib.name=org.hibernate\nlogger.hib.level=WARN\n"
          "logger.mchange.name=com.mchange\nlogger.mchange.level=WARN\n")


class ConnectUnavailable(RuntimeError):
    """The Kafka Connect peer cannot be set up here (no Java/Maven, jars not resolvable)."""


def classpath(pom: Path = POM) -> str:
    """Connect + the Debezium JDBC sink + the MongoDB SMT + pgjdbc, resolved once."""
    try:
        return maven_classpath(pom, "bench-connect-classpath", timeout=1200)
    except StackError as exc:
        raise ConnectUnavailable(str(exc)) from exc


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).is_file():
        raise ConnectUnavailable("java not found (Connect 4.x needs Java 17+)")
    return java


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _props(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def connector_config(name: str, topic: str, table: str, pg_dsn: str) -> dict[str, str]:
    """The JDBC sink as the brief sets it: upsert on the record key, deletes on, basic
    schema evolution; MongoDB envelopes unwrapped by ExtractNewDocumentState (nested
    documents flattened to ``parent_child`` columns, the JDBC sink cannot store structs)."""
    dsn = urlsplit(pg_dsn)
    return {
        "name": name,
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": topic,
        "connection.url": f"jdbc:postgresql://{dsn.hostname}:{dsn.port}{dsn.path}",
        "connection.username": dsn.username or "",
        "connection.password": dsn.password or "",
        "insert.mode": "upsert",
        "primary.key.mode": "record_key",
        "delete.enabled": "true",
        "schema.evolution": "basic",
        "collection.name.format": table,
        "transforms": "unwrap",
        "transforms.unwrap.type":
            "io.debezium.connector.mongodb.transforms.ExtractNewDocumentState",
        "transforms.unwrap.flatten.struct": "true",
        "transforms.unwrap.flatten.struct.delimiter": "_",
        "transforms.unwrap.array.encoding": "array",
    }


def command(workdir: Path, bootstrap: str, name: str, topic: str, table: str,
            pg_dsn: str) -> list[str]:
    """Write the worker/connector files under ``workdir`` and return the command."""
    workdir.mkdir(parents=True, exist_ok=True)
    worker = {
        "bootstrap.servers": bootstrap,
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "true",
        "value.converter.schemas.enable": "true",
        "offset.storage.file.filename": str(workdir / "connect.offsets"),
        "listeners": f"http://127.0.0.1:{_free_port()}",
        "plugin.discovery": "only_scan",
    }
    (workdir / "worker.properties").write_text(_props(worker))
    (workdir / "connector.properties").write_text(
        _props(connector_config(name, topic, table, pg_dsn)))
    (workdir / "log4j2.properties").write_text(LOG4J2)
    return [_java(), *JVM_OPTS, f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
            "-cp", classpath(), "org.apache.kafka.connect.cli.ConnectStandalone",
            str(workdir / "worker.properties"), str(workdir / "connector.properties")]


def rest_url(workdir: Path) -> str:
    """The worker's REST address (``listeners`` in the worker.properties :func:`command` wrote)."""
    for line in (workdir / "worker.properties").read_text().splitlines():
        if line.startswith("listeners="):
            return line.partition("=")[2]
    raise ConnectUnavailable(f"no listeners in {workdir / 'worker.properties'}")
