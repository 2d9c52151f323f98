"""What the secured end-to-end tests share: a sink configuration for one security style,
a small workload on a topic the sink's principal may read, and the checks of the fold, the
dead letter and the Kafka commit."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sink.stack.secure import DLQ_PREFIX, GROUP_PREFIX, TOPIC_PREFIX, SecureStackInfo
from sink.tools.events import MongoEvents
from tests.support import (
    Workload,
    assert_fold,
    committed_offsets,
    end_offsets,
    produce,
    read_topic,
    stored_offsets,
    table_rows,
    workload,
)

MALFORMED = (b'{"id": "broken"}', b"{this is not json")


@dataclass
class Case:
    """One sink run's names: its topic, group, dead-letter topic, database and metadata
    schema, all unique to the test."""

    topic: str
    group: str
    dlq: str
    db: str
    meta: str

    @classmethod
    def new(cls) -> Case:
        tag = uuid.uuid4().hex[:10]
        return cls(f"{TOPIC_PREFIX}{tag}", f"{GROUP_PREFIX}-{tag}", f"{DLQ_PREFIX}{tag}",
                   f"shop_{tag}", f"meta_{tag}")


def config(path: Path, info: SecureStackInfo, case: Case, *, kafka: str = "scram-sha-512",
           pg: str = "password", source: dict[str, Any] | None = None,
           destination: dict[str, Any] | None = None) -> Path:
    """The sink's YAML for ``kafka``/``pg`` styles; ``source``/``destination`` override keys
    (a wrong password, another CA...; None drops the key)."""
    src = {**info.source(kafka), "topics": [case.topic], "group_id": case.group,
           "auto_offset_reset": "earliest", **(source or {})}
    dest = {"type": "postgresql", **info.destination(pg), "metadata_schema": case.meta,
            **(destination or {})}
    doc = {
        "source": {k: v for k, v in src.items() if v is not None},
        "destination": {k: v for k, v in dest.items() if v is not None},
        "errors": {"dlq_topic": case.dlq},
        "observability": {"metrics_port": 0, "log_format": "json"},
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


async def prepare(info: SecureStackInfo, case: Case, n_events: int = 40) -> Workload:
    """The topic and the dead-letter topic (made by the admin: the sink may create neither),
    a workload and one malformed record after it."""
    ev = MongoEvents(case.db, "users")
    w = workload(ev, n_events, 8, seed=len(case.topic))
    await asyncio.gather(info.create_topic(case.topic), info.create_topic(case.dlq))
    admin = info.admin()
    await produce(admin.pop("bootstrap_servers"), case.topic, [*w.events, MALFORMED], **admin)
    return w


async def assert_delivered(info: SecureStackInfo, case: Case, w: Workload,
                           pg: str = "password") -> None:
    """The exact fold in PostgreSQL, the malformed record on the dead-letter topic, and the
    group's committed offsets at the end of the topic (in Kafka and in PostgreSQL)."""
    # read as the role that wrote: the other one has no rights on its schemas
    dsn, ssl = info.pg_dsn("warp_cert" if pg == "cert" else "warp"), info.pg_ssl(pg)
    assert_fold(await table_rows(dsn, case.db, "users", ssl=ssl), w.fold)
    admin = info.admin()
    bootstrap = admin.pop("bootstrap_servers")
    letters = await read_topic(bootstrap, case.dlq, **admin)
    assert [(m.key, m.value) for m in letters] == [MALFORMED]
    headers = dict(letters[0].headers)
    assert headers["__connect.errors.offset"] == str(len(w.events)).encode()
    assert headers["warp.error.code"] == b"bad_json"
    for secret in (info.sink_password, info.pg_password, info.admin_password):
        assert all(secret.encode() not in v for v in headers.values())
    ends = await end_offsets(bootstrap, case.topic, **admin)
    assert ends == {0: len(w.events) + 1}
    assert await committed_offsets(bootstrap, case.group, case.topic, **admin) == ends
    stored = await stored_offsets(dsn, case.group, ssl=ssl, schema=case.meta)
    assert stored == {(case.topic, 0): len(w.events) + 1}
