"""Kafka Connect for the MariaDB-source suite: the Debezium MariaDB connector 3.5.0.Final
(``pom-mariadb.xml`` says why not 3.6.1), one connector per converter set-up in one worker,
each with its own topic prefix, replica server id and schema-history topic on the session's
Kafka.

A worker of its own rather than one more connector in the PostgreSQL suite's: the PostgreSQL
connector is 3.6.1 and this one 3.5.0, and their shared Debezium jars cannot be on one
classpath in two versions; the two suites also run without each other's source server.

Drain: the connector reads the binlog in order and the worker's producer is
idempotent, so once a marker row is in every prefix's marker topic, everything before it
was sent; the topics' end offsets are final once they stop moving (read twice, a second
apart).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tests.e2e.debezium import rig
from tests.e2e.debezium.mariadb_server import DATABASE, PASSWORD, USER

POM = rig.POM.with_name("pom-mariadb.xml")

# The converter set-ups compared: name -> connector properties on top of the common ones.
SETUPS: dict[str, dict[str, str]] = {
    "schemas": {"key.converter.schemas.enable": "true", "value.converter.schemas.enable": "true"},
    "noschemas": {"key.converter.schemas.enable": "false",
                  "value.converter.schemas.enable": "false"},
    "strings": {"key.converter.schemas.enable": "true", "value.converter.schemas.enable": "true",
                "decimal.handling.mode": "string"},
    # The source column's type, length and scale as schema parameters
    # (__debezium.source.column.*): what a sink needs for varchar(n), datetime(p), time(p).
    "propagate": {"key.converter.schemas.enable": "true",
                  "value.converter.schemas.enable": "true",
                  "column.propagate.source.type": ".*"},
}


class MariaDBConnect(rig.Connect):
    pom = POM
    classpath_name = "debezium-mariadb-connect"

    def connector(self, setup: str, prefix: str, source_port: int, bootstrap: str
                  ) -> dict[str, str]:
        server_id = 5400 + list(SETUPS).index(setup)
        return {
            "name": f"mariadb-{setup}",
            "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
            "tasks.max": "1", "database.hostname": "127.0.0.1",
            "database.port": str(source_port), "database.user": USER,
            "database.password": PASSWORD, "database.server.id": str(server_id),
            "database.ssl.mode": "disable",
            "topic.prefix": prefix, "database.include.list": DATABASE,
            "snapshot.mode": "initial", "include.schema.changes": "false",
            "schema.history.internal.kafka.bootstrap.servers": bootstrap,
            "schema.history.internal.kafka.topic": f"{prefix}-history",
            # The default ("long") wraps bigint unsigned above 2^63-1 to negative numbers: a
            # user who wants exact values sets precise (a Decimal with scale 0).
            "bigint.unsigned.handling.mode": "precise",
            # Debezium drops TRUNCATE events by default ("t"): the suite wants them.
            "skipped.operations": "none", "tombstones.on.delete": "true",
            "topic.creation.default.replication.factor": "1",
            "topic.creation.default.partitions": "1",
            "key.converter": rig.JSON, "value.converter": rig.JSON,
            **SETUPS[setup],
        }


async def drain(bootstrap: str, prefixes: list[str], insert_marker: Callable[[], Any],
                marker_table: str, within: float = 120) -> None:
    """Insert the marker; wait until every prefix has it and the end offsets stand still."""
    await asyncio.to_thread(insert_marker)
    deadline = time.monotonic() + within
    last: dict[tuple[str, int], int] | None = None
    while True:
        ends = await rig.end_offsets(bootstrap, prefixes)
        markers = [ends.get((f"{p}.{DATABASE}.{marker_table}", 0), 0) for p in prefixes]
        if all(n >= 2 for n in markers) and ends == last:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not drained after {within} s: marker messages {markers}")
        last = ends if all(n >= 2 for n in markers) else None
        await asyncio.sleep(1.0)
