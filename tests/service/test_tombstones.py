"""Tombstones on real Kafka and PostgreSQL: a tombstone deletes exactly the row its key
names, in the table that key's records went to — read in the same batch, applied before a
restart, on a topic that carries several collections, with SMT-rewritten keys — and waits
out PostgreSQL when it needs to ask it (issue 12, items 6 and 7)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from sink.tools.events import MongoEvents, Oid
from tests.support import (
    produce,
    run_sink,
    start_sink,
    stored_offsets,
    topic_exists,
    unique,
    wait_progress,
    write_config,
)

pytestmark = pytest.mark.integration


async def rows(dsn: str, schema: str, table: str) -> dict[str, bool]:
    """_id -> is_deleted."""
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetch(f'SELECT _id, is_deleted FROM "{schema}"."{table}"')
    finally:
        await conn.close()
    return {r["_id"]: r["is_deleted"] for r in found}


def caught_up(cfg: Path) -> None:
    done = run_sink(cfg, "--until-caught-up", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def flat(_id: str, **fields: Any) -> tuple[bytes, bytes]:
    """A MongoDB change as ExtractNewDocumentState writes it: the document, and the key
    rewritten to the plain id."""
    return json.dumps({"id": _id}).encode(), json.dumps({"_id": _id, **fields}).encode()


def flat_tombstone(_id: str) -> tuple[bytes, None]:
    return json.dumps({"id": _id}).encode(), None


def flat_config(stack: Any, tmp_path: Path, topic: str, group: str, db: str) -> Path:
    return write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                        dsn=stack.pg_dsn, topic=topic, group=group,
                        extra=f'mapping:\n  topic_tables:\n    "{topic}": "{db}.users"\n')


async def test_a_tombstone_in_the_first_batch_of_a_new_topic_deletes(
    stack, topic_factory, tmp_path
) -> None:
    """(a) the tombstone's table comes from the records read just before it, not committed
    yet, and mapping.topic_tables (flattened topics carry deletes only as tombstones): it
    used to be skipped as tombstone_unknown_table, the row live forever."""
    topic = await topic_factory(partitions=1)
    db, group = unique("shop"), unique("g")
    cfg = flat_config(stack, tmp_path, topic, group, db)
    await produce(stack.bootstrap_servers, topic, [
        flat("k1", name="a"), flat("k2", name="b"), flat("k3", name="c"),
        flat_tombstone("k1")])
    await asyncio.to_thread(caught_up, cfg)
    assert await rows(stack.pg_dsn, db, "users") == {"k1": True, "k2": False, "k3": False}
    assert await stored_offsets(stack.pg_dsn, group) == {(topic, 0): 4}
    assert not await topic_exists(stack.bootstrap_servers, f"{group}.dlq")


async def test_flattened_tombstones_delete_the_plain_key_after_a_restart(
    stack, topic_factory, tmp_path
) -> None:
    """(c) a new run knows none of the keys: PostgreSQL says where they went, and the plain
    key {"id": "k2"} deletes the row "_id" = "k2" (it used to be dead-lettered
    key_mismatch), also for an id whose text also reads as a number."""
    topic = await topic_factory(partitions=1)
    db, group = unique("shop"), unique("g")
    cfg = flat_config(stack, tmp_path, topic, group, db)
    await produce(stack.bootstrap_servers, topic, [
        flat("k1", name="a"), flat("k2", name="b"), flat("123", name="c")])
    await asyncio.to_thread(caught_up, cfg)
    await produce(stack.bootstrap_servers, topic, [flat_tombstone("k2"), flat_tombstone("123")])
    await asyncio.to_thread(caught_up, cfg)
    assert await rows(stack.pg_dsn, db, "users") == {"k1": False, "k2": True, "123": True}
    assert await stored_offsets(stack.pg_dsn, group) == {(topic, 0): 5}
    assert not await topic_exists(stack.bootstrap_servers, f"{group}.dlq")


async def test_a_tombstone_applies_to_the_table_its_key_went_to(
    stack, topic_factory, tmp_path
) -> None:
    """(b) one topic, two collections, the same ids in both: `d colA 1` + tombstone used to
    soft-delete colB's row 1 (the topic's last-remembered table)."""
    topic = await topic_factory(partitions=1)
    db = unique("shop")
    a, b = MongoEvents(db, "cola"), MongoEvents(db, "colb")
    one, two, five, six = (Oid(f"{i:024x}") for i in (1, 2, 5, 6))
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)

    async def run(*events: tuple[bytes, bytes | None]) -> None:
        await produce(stack.bootstrap_servers, topic, list(events))
        await asyncio.to_thread(caught_up, cfg)

    await run(a.insert({"_id": one, "n": 1}), b.insert({"_id": one, "n": 1}),
              a.insert({"_id": two, "n": 2}), b.insert({"_id": two, "n": 2}))
    # colB was the last table the topic fed; the delete and its tombstone, read together.
    await run(a.delete(one), a.tombstone(one))
    # The delete, then (a new process) its tombstone alone: PostgreSQL answers, with the
    # row the topic changed last (colA's, deleted: the tombstone changes nothing).
    await run(a.delete(two))
    await run(a.tombstone(two))
    # Only colB has key 5, though colA was fed last: the tombstone deletes colB's row.
    await run(b.insert({"_id": five, "n": 5}), a.insert({"_id": six, "n": 6}))
    await run(b.tombstone(five))

    assert await rows(stack.pg_dsn, db, "cola") == {str(one): True, str(two): True,
                                                   str(six): False}
    assert await rows(stack.pg_dsn, db, "colb") == {str(one): False, str(two): False,
                                                   str(five): True}
    conn = await asyncpg.connect(stack.pg_dsn)
    try:  # a tombstone after its delete changed nothing (versions count the changes)
        versions = {(t, r["_id"]): r["_cartridge_version"] for t in ("cola", "colb")
                    for r in await conn.fetch(
                        f'SELECT _id, _cartridge_version FROM "{db}"."{t}"')}
    finally:
        await conn.close()
    assert versions == {("cola", str(one)): 2, ("cola", str(two)): 2, ("cola", str(six)): 1,
                        ("colb", str(one)): 1, ("colb", str(two)): 1, ("colb", str(five)): 2}
    assert await stored_offsets(stack.pg_dsn, group) == {(topic, 0): 11}


async def test_a_tombstone_while_postgresql_is_down_waits_for_it(
    stack, local_stack, topic_factory, tmp_path
) -> None:
    """(7) the tombstone's table lookup used to run outside the retry policy: PostgreSQL
    down at that moment stopped the process (exit 1)."""
    topic = await topic_factory(partitions=1)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    ids = [Oid(f"{i:024x}") for i in range(1, 4)]
    await produce(stack.bootstrap_servers, topic, [ev.insert({"_id": i, "n": 1}) for i in ids])
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group,
                       extra="shutdown_timeout: 20\n")
    await asyncio.to_thread(caught_up, cfg)  # a new process then knows none of the keys
    proc = await start_sink(cfg, log=tmp_path / "sink.log")
    try:
        await asyncio.sleep(3)  # connected, assigned, idle at the end of the topic
        await asyncio.to_thread(local_stack.postgres.ctl, "stop", "-m", "immediate")
        try:
            await produce(stack.bootstrap_servers, topic, [ev.tombstone(ids[0])])
            await asyncio.sleep(6)
            assert proc.returncode is None, "the sink exited while PostgreSQL was down"
        finally:
            await asyncio.to_thread(local_stack.postgres.ctl, "start")
        assert await wait_progress(stack.pg_dsn, group, 4, within=60, proc=proc) == 4
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 40)
    finally:
        if proc.returncode is None:
            proc.kill()
    log = (tmp_path / "sink.log").read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert '"operation": "tombstone table lookup"' in log
    assert await rows(stack.pg_dsn, db, "users") == {str(ids[0]): True, str(ids[1]): False,
                                                    str(ids[2]): False}
