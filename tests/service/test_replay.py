"""Replays: moving offsets back changes nothing (the ordering guard), --force-replay
re-applies on purpose, and dead letters re-driven after the cause is fixed land."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from sink.tools.events import MongoEvents
from tests.support import (
    add_age_check,
    assert_fold,
    produce,
    read_topic,
    run_sink,
    stored_offsets,
    table_rows,
    unique,
    warp,
    workload,
    write_config,
)

pytestmark = pytest.mark.integration


async def test_reset_to_earliest_is_a_no_op_and_force_replay_reapplies(
    stack, topic_factory, tmp_path: Path, capsys
) -> None:
    topic = await topic_factory(partitions=3)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    w = workload(ev, 4_000, 400, seed=41)
    await produce(stack.bootstrap_servers, topic, w.events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    assert (await asyncio.to_thread(run_sink, cfg, "--until-caught-up")).returncode == 0
    before = await table_rows(stack.pg_dsn, db, "users")
    assert_fold(before, w.fold)

    assert await warp("offsets", "reset", "--config", str(cfg), "--to", "earliest") == 0
    assert sum((await stored_offsets(stack.pg_dsn, group)).values()) == 0
    assert (await asyncio.to_thread(run_sink, cfg, "--until-caught-up")).returncode == 0
    after = await table_rows(stack.pg_dsn, db, "users")
    assert_fold(after, w.fold)  # versions unchanged: nothing applied twice
    assert {k: r["_cartridge_updated_at"] for k, r in after.items()} == {
        k: r["_cartridge_updated_at"] for k, r in before.items()}

    assert await warp("offsets", "reset", "--config", str(cfg), "--to", "earliest") == 0
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", "--force-replay")
    assert done.returncode == 0, done.stderr[-2000:]
    forced = await table_rows(stack.pg_dsn, db, "users")
    for key, exp in w.fold.items():
        assert forced[key]["_cartridge_version"] == 2 * exp.version  # re-applied on purpose
        assert forced[key]["is_deleted"] == exp.deleted
        assert forced[key]["age"] == exp.values.get("age")
    capsys.readouterr()


async def test_dead_letters_replayed_after_the_constraint_is_dropped(
    stack, topic_factory, tmp_path: Path, capsys
) -> None:
    topic = await topic_factory(partitions=3)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    w = workload(ev, 2_000, 300, seed=43)
    await produce(stack.bootstrap_servers, topic, w.events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    assert (await asyncio.to_thread(run_sink, cfg, "--until-caught-up")).returncode == 0
    await add_age_check(stack.pg_dsn, db)
    live = [k for k, e in w.fold.items() if not e.deleted][:3]
    await produce(stack.bootstrap_servers, topic,
                  [ev.update(k, {"age": 5000 + i}) for i, k in enumerate(live)])
    assert (await asyncio.to_thread(run_sink, cfg, "--until-caught-up")).returncode == 0
    assert_fold(await table_rows(stack.pg_dsn, db, "users"), w.fold)  # refused, not applied

    capsys.readouterr()
    assert await warp("dlq", "inspect", "--config", str(cfg), "--error-code",
                      "constraint_violation") == 0
    listed = capsys.readouterr().out
    assert listed.count("constraint_violation") == 3

    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        await conn.execute(f'ALTER TABLE "{db}".users DROP CONSTRAINT age_sane')
    finally:
        await conn.close()
    assert await warp("dlq", "replay", "--config", str(cfg)) == 0
    assert await warp("dlq", "replay", "--config", str(cfg)) == 0  # idempotent
    assert (await asyncio.to_thread(run_sink, cfg, "--until-caught-up")).returncode == 0
    for i, k in enumerate(live):
        w.fold[k].values["age"] = 5000 + i
        w.fold[k].version += 1
    assert_fold(await table_rows(stack.pg_dsn, db, "users"), w.fold)
    replayed = [m for m in await read_topic(stack.bootstrap_servers, topic)
                if any(h == "warp.replayed.from" for h, _ in m.headers)]
    assert len(replayed) == 3
