"""Shared test helpers: a Debezium MongoDB workload with its expected fold, a sink
process runner, the ``warp-sink`` command line in-process, and readers of what landed in
PostgreSQL and Kafka.

The fold here is written independently of the sink's code: it is the oracle.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import random
import struct
import subprocess
import sys
import termios
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from sink import cli
from sink.tools.events import MongoEvents, Oid

FIELDS = ("name", "age", "score", "tags", "profile")


@dataclass
class Expected:
    values: dict[str, Any]
    deleted: bool = False
    version: int = 0


@dataclass
class Workload:
    events: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    fold: dict[str, Expected] = field(default_factory=dict)


def workload(ev: MongoEvents, n_events: int, n_keys: int, seed: int = 1) -> Workload:
    """Inserts, full-document updates, partial updates, deletes and tombstones (always
    right after their delete, as Debezium writes them), re-inserts after deletes."""
    rng = random.Random(seed)
    keys = [Oid(f"{rng.getrandbits(96):024x}") for _ in range(n_keys)]
    w = Workload()
    while len(w.events) < n_events:
        k = rng.choice(keys)
        cur = w.fold.get(k)
        if cur is None or cur.deleted:
            doc = _doc(rng, k)
            w.events.append(ev.insert(doc))
            prev = cur.version if cur else 0
            w.fold[k] = Expected(_plain(doc), False, prev + 1)
            continue
        roll = rng.random()
        if roll < 0.45:
            doc = _doc(rng, k)
            w.events.append(ev.replace(doc))
            cur.values = _plain(doc)
        elif roll < 0.8:
            new_age = rng.randint(0, 100)
            plan = rng.choice(["free", "pro", "team"])
            w.events.append(ev.update(k, {"age": new_age, "profile.plan": plan}))
            cur.values["age"] = new_age
            cur.values.setdefault("profile", {})["plan"] = plan
        else:
            w.events.append(ev.delete(k))
            w.events.append(ev.tombstone(k))
            cur.deleted = True
        cur.version += 1
    return w


def _doc(rng: random.Random, k: str) -> dict[str, Any]:
    return {
        "_id": Oid(k), "name": f"n{rng.randint(0, 10**6)}", "age": rng.randint(0, 100),
        "score": rng.random() * 100, "tags": rng.sample(["a", "b", "c", "d"], 2),
        "profile": {"plan": "free", "nested": {"level": rng.randint(1, 3)}},
    }


def _plain(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}


async def produce(bootstrap: str, topic: str, events: list[tuple[bytes, bytes | None]],
                  **client: Any) -> None:
    """``client``: aiokafka security arguments (the secured stack's admin)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=256 * 1024, **client)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def write_config(path: Path, *, bootstrap: str, dsn: str, topic: str, group: str,
                 extra: str = "") -> Path:
    path.write_text(
        f"""
source:
  bootstrap_servers: "{bootstrap}"
  topics: ["{topic}"]
  group_id: "{group}"
  auto_offset_reset: "earliest"
destination:
  type: "postgresql"
  connection_string: "{dsn}"
  metadata_schema: "cartridge_warp_metadata"
  batch_size: 1000
observability:
  metrics_port: 0
  log_format: json
{extra}
""",
        encoding="utf-8",
    )
    return path


def sink_cmd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sink", "run", "--config", str(config), *args]


def run_sink(config: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sink_cmd(config, *args), capture_output=True, text=True,
                          timeout=timeout, env={**os.environ}, check=False)


async def table_rows(dsn: str, schema: str, table: str,
                     ssl: Any = None) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(dsn, ssl=ssl)
    try:
        rows = await conn.fetch(f'SELECT * FROM "{schema}"."{table}"')
    finally:
        await conn.close()
    out = {}
    for r in rows:
        d = dict(r)
        for k, v in d.items():
            if isinstance(v, str) and k in ("tags", "profile"):
                d[k] = orjson.loads(v)
        out[d["_id"]] = d
    return out


def fold_mismatches(rows: dict[str, dict[str, Any]], fold: dict[str, Expected]
                    ) -> list[tuple[str, str, Any]]:
    """Every way the tables differ from the fold, as (kind, key, detail): ``lost`` (a row
    missing, or an older ``_cartridge_version`` than the fold's: changes never applied),
    ``double`` (a newer version: a change applied twice), ``wrong`` (right version, other
    values; or a row the stream never wrote)."""
    out: list[tuple[str, str, Any]] = []
    for key in rows.keys() - fold.keys():
        out.append(("wrong", key, ("unexpected row", rows[key])))
    for key, exp in fold.items():
        row = rows.get(key)
        if row is None:
            out.append(("lost", key, ("missing row", exp)))
            continue
        version = row["_cartridge_version"]
        if version != exp.version:
            out.append(("lost" if version < exp.version else "double", key, (row, exp)))
            continue
        if row["is_deleted"] != exp.deleted:
            out.append(("wrong", key, (row, exp)))
            continue
        for f in FIELDS:
            want = exp.values.get(f)
            got = row.get(f)
            same = (got is not None and abs(got - want) < 1e-9 if isinstance(want, float)
                    else got == want)
            if not same:
                out.append(("wrong", key, (f, got, want)))
                break
    return out


def assert_fold(rows: dict[str, dict[str, Any]], fold: dict[str, Expected]) -> None:
    """The tables hold exactly the fold: every key, its values and its exact version."""
    bad = fold_mismatches(rows, fold)
    assert not bad, (f"{len(bad)} of {len(fold)} keys differ from the fold "
                     f"({len(rows)} rows); first: {bad[:3]}")


async def partitions(bootstrap: str, topic: str, **client: Any) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client)
    await admin.start()
    try:
        meta = (await admin.describe_topics([topic]))[0]
        return sorted(p["partition"] for p in meta["partitions"])
    finally:
        await admin.close()


async def committed_offsets(bootstrap: str, group: str, topic: str,
                            **client: Any) -> dict[int, int | None]:
    parts = await partitions(bootstrap, topic, **client)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, **client)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in parts}
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str, **client: Any) -> dict[int, int]:
    parts = await partitions(bootstrap, topic, **client)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **client)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def stored_offsets(dsn: str, group: str, *, ssl: Any = None,
                         schema: str = "cartridge_warp_metadata") -> dict[tuple[str, int], int]:
    conn = await asyncpg.connect(dsn, ssl=ssl)
    try:
        rows = await conn.fetch(
            f'SELECT topic, partition, next_offset FROM "{schema}".kafka_offsets '
            "WHERE group_id = $1", group)
    except asyncpg.UndefinedTableError:
        return {}
    finally:
        await conn.close()
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def wait_progress(dsn: str, group: str, at_least: int, within: float = 120,
                        proc: Any = None) -> int:
    """Wait until the group's stored offsets sum to ``at_least``; returns the sum seen."""
    deadline = asyncio.get_running_loop().time() + within
    seen = 0
    while asyncio.get_running_loop().time() < deadline:
        if proc is not None and proc.returncode is not None:
            return seen
        seen = sum((await stored_offsets(dsn, group)).values())
        if seen >= at_least:
            return seen
        await asyncio.sleep(0.05)
    return seen


async def read_topic(bootstrap: str, topic: str, within: float = 10,
                     **client: Any) -> list[Any]:
    """Every message of ``topic`` from the beginning to its end (no group)."""
    parts = await partitions(bootstrap, topic, **client)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", **client)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                out.extend(msgs)
        return out
    finally:
        await consumer.stop()


async def topic_exists(bootstrap: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return topic in await admin.list_topics()
    finally:
        await admin.close()


def _log_file(log: Path | None) -> Any:
    return open(log, "wb") if log is not None else subprocess.DEVNULL


async def start_sink(config: Path, *args: str, log: Path | None = None) -> Any:
    out = _log_file(log)
    return await asyncio.create_subprocess_exec(*sink_cmd(config, *args), stdout=out,
                                                stderr=out)


async def warp(*argv: str) -> int:
    """``warp-sink ARGV`` in this process, through ``sink.cli.main`` (its exit code); in a
    thread, because the handlers call asyncio.run and must stay off the test's loop."""
    return await asyncio.to_thread(cli.main, list(argv))


async def add_age_check(dsn: str, db: str) -> None:
    """The user adds ``CHECK (age < 1000)`` to ``db.users``: later updates violate it."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f'ALTER TABLE "{db}".users ADD CONSTRAINT age_sane CHECK (age IS NULL OR age < 1000)')
    finally:
        await conn.close()


def run_on_pty(cmd: list[str], timeout: float = 120) -> str:
    """Run ``cmd`` with its stdout and stderr on a pseudo-terminal 120 columns wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env={**os.environ}, close_fds=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=max(1.0, deadline - time.monotonic())) == 0, out[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return out.decode("utf-8", errors="replace")


async def http_get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """One plain HTTP request to the sink's endpoints: (status, body)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()
