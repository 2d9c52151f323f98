"""Issue 17 item 13 through the real ``warp-sink run`` process: the ``_id`` column's type
comes from the collection's first ``_id``, ids the column cannot hold reach the DLQ topic
with ``id_type_mismatch`` (and only they), ``mapping.id_type: text`` keeps text keys, and
the demo's ``orders`` (integer ids) gets a bigint key."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from sink.tools.demo import demo_events
from sink.tools.events import MongoEvents, Oid
from tests.support import (
    produce,
    read_topic,
    run_sink,
    stored_offsets,
    topic_exists,
    unique,
    write_config,
)

pytestmark = pytest.mark.integration

OID = "596e275826f08b2730779e1f"
U1 = uuid.UUID("8c1b6d0e-5f3a-4c3e-9d2a-1e0f7a6b5c4d")


async def fetch(dsn: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def id_type(dsn: str, schema: str, table: str) -> str:
    rows = await fetch(dsn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                       "attrelid = format('%I.%I', $1::text, $2::text)::regclass "
                       "AND attname = '_id'", schema, table)
    return str(rows[0][0])


async def test_id_types_and_mismatches_through_the_service(stack, topic_factory,
                                                           tmp_path: Path) -> None:
    topic = await topic_factory(partitions=1)
    db = unique("ids")
    orders, users, tokens = (MongoEvents(db, c) for c in ("orders", "users", "tokens"))
    events: list[tuple[bytes, bytes | None]] = [
        orders.insert({"_id": 10000, "status": "placed"}),           # 0
        users.insert({"_id": Oid(OID), "name": "a"}),                 # 1
        tokens.insert({"_id": U1, "n": 1}),                           # 2
        orders.insert({"_id": "10001", "status": "placed"}),         # 3: a string
        orders.insert({"_id": 10002, "status": "placed"}),           # 4
        orders.update(10000, {"status": "shipped"}),                 # 5
        orders.insert({"_id": Oid(OID), "status": "placed"}),        # 6: an ObjectId
        orders.delete(10002), orders.tombstone(10002),               # 7, 8
        tokens.insert({"_id": 7, "n": 2}),                            # 9: an integer
        orders.insert({"_id": 2**40, "status": "placed"}),           # 10
    ]
    await produce(stack.bootstrap_servers, topic, events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-3000:]

    dlq = await read_topic(stack.bootstrap_servers, f"{group}.dlq")
    letters = [(dict(m.headers)["warp.error.code"], int(dict(m.headers)[
        "__connect.errors.offset"]), m.value) for m in dlq]
    assert [(c, o) for c, o, _ in letters] == [
        (b"id_type_mismatch", 3), (b"id_type_mismatch", 6), (b"id_type_mismatch", 9)]
    assert [v for _, _, v in letters] == [events[3][1], events[6][1], events[9][1]]
    message = dict(dlq[0].headers)["__connect.errors.exception.message"]
    assert message is not None and b"string" in message and b"bigint" in message and \
        f"{db}.orders".encode() in message
    assert await stored_offsets(stack.pg_dsn, group) == {(topic, 0): len(events)}

    assert [await id_type(stack.pg_dsn, db, t) for t in ("orders", "users", "tokens")] == [
        "bigint", "text", "uuid"]
    got = await fetch(stack.pg_dsn, f'SELECT _id, status, is_deleted FROM "{db}".orders '
                      "ORDER BY _id")
    assert [tuple(r) for r in got] == [(10000, "shipped", False), (10002, "placed", True),
                                       (2**40, "placed", False)]
    found = await fetch(stack.pg_dsn, f'SELECT status FROM "{db}".orders WHERE _id = 10000')
    assert [r[0] for r in found] == ["shipped"]
    assert [tuple(r) for r in await fetch(stack.pg_dsn, f'SELECT _id, n FROM "{db}".tokens')] \
        == [(U1, 1)]


async def test_id_type_text_keeps_text_keys(stack, topic_factory, tmp_path: Path) -> None:
    topic = await topic_factory(partitions=1)
    db = unique("ids")
    ev = MongoEvents(db, "orders")
    events = [ev.insert({"_id": 5, "n": 1}), ev.insert({"_id": "x", "n": 2}),
              ev.update(5, {"n": 3})]
    await produce(stack.bootstrap_servers, topic, events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra="mapping:\n  id_type: text\n")
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not await topic_exists(stack.bootstrap_servers, f"{group}.dlq")
    assert await id_type(stack.pg_dsn, db, "orders") == "text"
    got = await fetch(stack.pg_dsn, f'SELECT _id, n FROM "{db}".orders ORDER BY n')
    assert [tuple(r) for r in got] == [("x", 2), ('{"$numberLong":"5"}', 3)]


async def test_a_bad_id_type_exits_2_naming_the_key(stack, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic="unused", group=unique("g"),
                       extra="mapping:\n  id_type: integer\n")
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "mapping.id_type: 'integer' is not an allowed value" in lines[0]


async def test_the_demo_orders_get_a_bigint_key(stack, topic_factory, tmp_path: Path) -> None:
    """`warp-sink demo`'s events (orders keyed by integers, users by ObjectIds), on a topic of
    their own and mapped to a schema of their own."""
    topic = await topic_factory(partitions=1)
    schema = unique("demo")
    batch = demo_events(80)
    await produce(stack.bootstrap_servers, topic, [(k, v) for _, k, v in batch])
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra=f'mapping:\n  overrides:\n    "shop.orders": "{schema}.orders"\n'
                             f'    "shop.users": "{schema}.users"\n')
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not await topic_exists(stack.bootstrap_servers, f"{group}.dlq")
    assert [await id_type(stack.pg_dsn, schema, t) for t in ("orders", "users")] == [
        "bigint", "text"]
    ids = [r[0] for r in await fetch(stack.pg_dsn, f'SELECT _id FROM "{schema}".orders '
                                     "ORDER BY _id")]
    assert ids == list(range(10_000, 10_000 + len(ids))) and len(ids) == 20
