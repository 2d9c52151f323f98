"""Faults the chaos campaign found, each made deterministic with Toxiproxy: a PostgreSQL
connection lost while the sink loads its stored offsets on assignment, or while it migrates
its metadata schema at start-up."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import pytest

from sink.errors import TransientError
from sink.postgres import PostgreSQLDestinationConnector
from sink.tools.events import MongoEvents
from tests.chaos.campaign import Env, chaos_config
from tests.support import (
    assert_fold,
    produce,
    start_sink,
    stored_offsets,
    table_rows,
    unique,
    workload,
)

pytestmark = pytest.mark.integration


def _text(log: Path) -> str:
    return log.read_text(errors="replace") if log.is_file() else ""


async def _log_has(log: Path, text: str, within: float) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if text in _text(log):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_connection_lost_while_loading_offsets_on_assignment_is_retried(
        chaos: Env, topic_factory, tmp_path: Path) -> None:
    """Chaos seed 104 (pg_blackhole lifted while the group re-joined): the stored-offset
    lookup in the assignment listener met ``ConnectionDoesNotExistError``, which the
    retry policy did not know; aiokafka logged the listener's failure and carried on, and
    the sink stayed up, assigned, reading nothing, for good."""
    topic = await topic_factory(partitions=3)
    db, group = unique("assign"), unique("assigng")
    w = workload(MongoEvents(db, "users"), 300, 60, seed=3)
    await produce(chaos.bootstrap, topic, w.events)
    log = tmp_path / "sink.log"
    cfg = chaos_config(tmp_path / "c.yaml", chaos, topic=topic, group=group, max_records=50)
    chaos.kafka.disable()  # the sink connects to PostgreSQL, then waits for the broker
    proc = await start_sink(cfg, log=log)
    try:
        assert await _log_has(log, '"operation": "kafka connect"', 60), _text(log)
        # The pool's open connections now die on their next answer (new ones are reset).
        chaos.pg.reset_peer(0, stream="downstream", name="cut")
        chaos.kafka.enable()
        assert await _log_has(log, '"operation": "load offsets"', 60), _text(log)
        chaos.pg.remove_toxic("cut")
        deadline = asyncio.get_running_loop().time() + 60
        while sum((await stored_offsets(chaos.dsn, group)).values()) < len(w.events):
            assert proc.returncode is None, _text(log)[-3000:]
            assert asyncio.get_running_loop().time() < deadline, "stalled after assignment"
            await asyncio.sleep(0.1)
        assert_fold(await table_rows(chaos.dsn, db, "users"), w.fold)
        assert "failed on partition assignment" not in _text(log)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 40) == 0


async def test_connection_lost_while_migrating_metadata_is_transient_and_resumed(
        chaos: Env) -> None:
    """Chaos seed 106 (a SIGKILLed sink restarted under pg_cut_commit): the pool opened,
    then the metadata migration lost its connection; the raw asyncpg error ended start-up
    with exit 1 ("internal error"). It is a TransientError for the retry policy now, and
    the next ``connect()`` runs the migration it missed."""
    schema = unique("meta")

    class CutAfterPool(PostgreSQLDestinationConnector):
        async def _create_pool(self) -> asyncpg.Pool:
            pool = await super()._create_pool()
            chaos.pg.reset_peer(0, stream="downstream", name="cut")
            return pool

    conn = CutAfterPool(chaos.proxied_dsn, metadata_schema=schema, max_retries=0)
    try:
        with pytest.raises(TransientError):
            await conn.connect()
        chaos.pg.remove_toxic("cut")
        await conn.connect()
    finally:
        await conn.disconnect()
    check = await asyncpg.connect(chaos.dsn)
    try:
        tables = await check.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = "
            "'kafka_offsets'", schema)
        await check.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await check.close()
    assert tables == 1, "the second connect() did not migrate"


async def test_partitions_resume_after_an_offset_conflict_met_while_retrying(
        chaos: Env, topic_factory, tmp_path: Path) -> None:
    """Chaos seed 204 (pg_cut_commit): a flush failed, its partitions were paused for the
    retries, and the retry met an OffsetConflict: the COMMIT of an earlier attempt had gone
    through with its answer lost, so the stored offset was no longer the one expected. The
    conflict was handled (re-read from the stored offsets), but the partitions stayed paused:
    no error, no log line, nothing read again, for good.

    Here the stored offset moves from another connection while the flush is retried under a
    black hole, as ``offsets reset --force`` on a running group or an unacknowledged COMMIT
    would move it."""
    topic = await topic_factory(partitions=1)
    db, group = unique("pause"), unique("pauseg")
    w = workload(MongoEvents(db, "users"), 200, 40, seed=11)
    log = tmp_path / "sink.log"
    cfg = chaos_config(tmp_path / "c.yaml", chaos, topic=topic, group=group, max_records=50)
    await produce(chaos.bootstrap, topic, w.events[:100])
    proc = await start_sink(cfg, log=log)
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while sum((await stored_offsets(chaos.dsn, group)).values()) < 100:
            assert asyncio.get_running_loop().time() < deadline, _text(log)[-3000:]
            await asyncio.sleep(0.1)
        chaos.pg.timeout(0, stream="upstream", name="hole")
        await produce(chaos.bootstrap, topic, w.events[100:])
        assert await _log_has(log, '"operation": "apply"', 30), _text(log)[-3000:]
        check = await asyncpg.connect(chaos.dsn)
        try:
            await check.execute(
                "UPDATE cartridge_warp_metadata.kafka_offsets SET next_offset = 90 "
                "WHERE group_id = $1", group)
        finally:
            await check.close()
        chaos.pg.remove_toxic("hole")
        assert await _log_has(log, "stored offset moved under us", 30), _text(log)[-3000:]
        deadline = asyncio.get_running_loop().time() + 30
        while sum((await stored_offsets(chaos.dsn, group)).values()) < len(w.events):
            assert proc.returncode is None, _text(log)[-3000:]
            assert asyncio.get_running_loop().time() < deadline, "never read again"
            await asyncio.sleep(0.1)
        assert_fold(await table_rows(chaos.dsn, db, "users"), w.fold)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 40) == 0
