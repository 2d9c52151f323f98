"""``warp-sink dlq inspect|replay`` against real Kafka and PostgreSQL, on dead letters
written by the sink's own DLQ producer (``sink.service.dead_letters``)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sink.errors import RecordError
from sink.service.dead_letters import DeadLetter, DeadLetterQueue
from sink.stack.local import create_topic
from sink.tools.dlq import cli as dlq_cli
from tests.support import partitions, run_on_pty, warp

pytestmark = pytest.mark.integration


# --- fixtures --------------------------------------------------------------------------------


@dataclass
class Source:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    code: str
    message: str


@dataclass
class Env:
    config: Path
    dlq: str
    a: str  # a source topic, 2 partitions
    b: str  # another, 1 partition
    letters: list[Source]
    bootstrap: str
    schema: str
    pg: asyncpg.Connection

    def find(self, topic: str, code: str | None = None) -> list[Source]:
        return [s for s in self.letters if s.topic == topic and code in (None, s.code)]


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` (outside any group), in (partition, offset) order."""
    tps = [TopicPartition(topic, p) for p in await partitions(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        deadline = time.monotonic() + 20
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(recs)
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


@pytest.fixture
async def env(stack: Any, tmp_path: Path) -> AsyncIterator[Env]:
    tag = uuid.uuid4().hex[:10]
    dlq, a, b = f"dlq-{tag}", f"src-a-{tag}", f"src-b-{tag}"
    await create_topic(stack.bootstrap_servers, dlq, 2)
    await create_topic(stack.bootstrap_servers, a, 2)
    await create_topic(stack.bootstrap_servers, b, 1)
    letters = [
        Source(a, 0, 3, b'{"id":1}', b'{"bad json', "bad_json", "unexpected end of input"),
        Source(a, 1, 7, b'{"id":2}', b"\xff\xfe\x00binary", "not_null_violation",
               'null value in column "name"\nviolates not-null constraint'),
        Source(b, 0, 1, None, b'{"op":"c"}', "bad_json", "expected value at line 1"),
        Source(a, 0, 9, b'{"id":3}', None, "bad_json", "tombstone for an unknown key"),
        Source(b, 0, 4, b"k5", b"v5", "not_null_violation", "x" * 500),
    ]
    producer = lambda: AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers,  # noqa: E731
                                        acks="all")
    queue = DeadLetterQueue(producer, dlq)
    try:
        await queue.send([
            DeadLetter(topic=s.topic, partition=s.partition, offset=s.offset, key=s.key,
                       value=s.value, headers=[("trace-id", f"t{i}".encode())],
                       error=RecordError(s.message, code=s.code), stage="TASK_PUT",
                       schema="shop", table="users")
            for i, s in enumerate(letters)
        ])
    finally:
        await queue.stop()
    schema = f"m_{tag}"
    config = tmp_path / "c.yaml"
    config.write_text(f"""
source:
  bootstrap_servers: "{stack.bootstrap_servers}"
  topics: ["{a}", "{b}"]
  group_id: "g_{tag}"
destination:
  connection_string: "{stack.pg_dsn}"
  metadata_schema: "{schema}"
errors:
  dlq_topic: "{dlq}"
observability:
  metrics_port: 0
""", encoding="utf-8")
    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        yield Env(config, dlq, a, b, letters, stack.bootstrap_servers, schema, conn)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def entries(out: str, dlq: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"{dlq}[")]


# --- dlq inspect ------------------------------------------------------------------------------


async def test_inspect_lists_every_dead_letter(env: Env, capsys: Any) -> None:
    assert await warp("dlq", "inspect", "--config", str(env.config)) == 0
    out = capsys.readouterr().out
    lines = entries(out, env.dlq)
    assert len(lines) == len(env.letters)
    for s in env.letters:
        hits = [ln for ln in lines if f"source={s.topic}[{s.partition}]@{s.offset} " in ln]
        assert len(hits) == 1, (s, lines)
        line = hits[0]
        assert f"code={s.code}" in line and "stage=TASK_PUT" in line
        assert "table=shop.users" in line
        assert "\n" not in line and len(line) < 400  # one line, message truncated
    assert any('null value in column "name" violates not-null constraint' in ln
               for ln in lines)


async def test_inspect_filters_and_limit(env: Env, capsys: Any) -> None:
    cfg = ["--config", str(env.config)]
    cases = [
        (["--topic", env.a], len(env.find(env.a))),
        (["--error-code", "bad_json"], 3),
        (["--topic", env.a, "--error-code", "bad_json"], len(env.find(env.a, "bad_json"))),
        (["--limit", "2"], 2),
        (["--topic", "no-such-topic"], 0),
    ]
    for extra, want in cases:
        assert await warp("dlq", "inspect", *cfg, *extra) == 0, extra
        lines = entries(capsys.readouterr().out, env.dlq)
        assert len(lines) == want, (extra, lines)
        if "--topic" in extra and want:
            assert all(f"source={env.a}[" in ln for ln in lines)
        if "--error-code" in extra:
            assert all("code=bad_json" in ln for ln in lines)


async def test_inspect_json(env: Env, capsys: Any) -> None:
    # --dlq-topic names the topic when the configuration does not (the default would be
    # "<group>.dlq", which does not exist: that is "no dead letters yet").
    env.config.write_text(env.config.read_text().replace(f'dlq_topic: "{env.dlq}"',
                                                         'dlq_topic: "nope-never-made"'))
    assert await warp("dlq", "inspect", "--config", str(env.config), "--json") == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "does not exist" in captured.err

    assert await warp("dlq", "inspect", "--config", str(env.config), "--json",
                      "--dlq-topic", env.dlq) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(docs) == len(env.letters)
    by_source = {(d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]): d
                 for d in docs}
    for s in env.letters:
        d = by_source[(s.topic, s.partition, s.offset)]
        assert d["dlq"]["topic"] == env.dlq
        assert d["error_code"] == s.code and d["stage"] == "TASK_PUT"
        assert d["error_class"] == "RecordError" and d["message"] == s.message
        assert (d["schema"], d["table"]) == ("shop", "users")
        assert d["headers"]["trace-id"].startswith("t")
        assert d["headers"]["__connect.errors.topic"] == s.topic
        assert d["headers"]["warp.error.code"] == s.code
        for name, raw in (("key", s.key), ("value", s.value)):
            if raw is None:
                assert d[f"{name}_b64"] is None and d[f"{name}_preview"] is None
            else:
                assert base64.b64decode(d[f"{name}_b64"]) == raw
                assert d[f"{name}_preview"] == raw.decode("utf-8", errors="replace")


async def test_inspect_bad_usage(env: Env, capsys: Any) -> None:
    assert await warp("dlq", "inspect", "--config", str(env.config), "--limit", "x") == 2
    assert await warp("dlq", "inspect", "--config", str(env.config), "--limit", "-1") == 2
    assert await warp("dlq", "inspect") == 2  # --config is required
    capsys.readouterr()


# --- dlq replay -------------------------------------------------------------------------------


def replayed_from(rec: Any) -> str | None:
    return next((bytes(v).decode() for k, v in rec.headers if k == "warp.replayed.from"), None)


async def test_replay_dry_run_produces_nothing(env: Env, capsys: Any) -> None:
    assert await warp("dlq", "replay", "--config", str(env.config), "--dry-run") == 0
    out = capsys.readouterr().out
    assert sum(line.startswith("would replay ") for line in out.splitlines()) == len(env.letters)
    assert f"would replay {len(env.letters)}" in out
    assert await read_all(env.bootstrap, env.a) == []
    assert await read_all(env.bootstrap, env.b) == []
    # A dry run leaves no trace in PostgreSQL either.
    assert await env.pg.fetchval("SELECT to_regclass($1)", f"{env.schema}.dlq_replays") is None


async def test_replay_redrives_original_bytes_once(env: Env, capsys: Any) -> None:
    assert await warp("dlq", "replay", "--config", str(env.config)) == 0
    out = capsys.readouterr().out
    assert f"replayed {len(env.letters)}, already replayed 0" in out

    dlq_records = await read_all(env.bootstrap, env.dlq)
    dlq_ref = {(r.key, r.value): f"{env.dlq}:{r.partition}:{r.offset}" for r in dlq_records}
    for topic in (env.a, env.b):
        got = await read_all(env.bootstrap, topic)
        want = env.find(topic)
        assert len(got) == len(want)
        for s in want:
            rec = next(r for r in got if (r.key, r.value) == (s.key, s.value))
            assert rec.partition == s.partition  # back to the partition it came from
            names = [k for k, _ in rec.headers]
            assert not any(n.startswith("__connect.errors.") for n in names), names
            assert [k for k in names if k.startswith("warp.")] == ["warp.replayed.from"]
            assert dict(rec.headers)["trace-id"].startswith(b"t")
            assert replayed_from(rec) == dlq_ref[(s.key, s.value)]

    # Again: nothing new.
    assert await warp("dlq", "replay", "--config", str(env.config)) == 0
    out = capsys.readouterr().out
    assert f"replayed 0, already replayed {len(env.letters)}" in out
    assert len(await read_all(env.bootstrap, env.a)) == len(env.find(env.a))
    assert len(await read_all(env.bootstrap, env.b)) == len(env.find(env.b))
    rows = await env.pg.fetch(
        f'SELECT state, target_topic, target_offset FROM "{env.schema}".dlq_replays')
    assert len(rows) == len(env.letters)
    assert all(r["state"] == "done" and r["target_offset"] is not None for r in rows)


async def test_replay_filters_limit_and_to_topic(env: Env, stack: Any, capsys: Any) -> None:
    scratch = f"scratch-{uuid.uuid4().hex[:10]}"
    await create_topic(stack.bootstrap_servers, scratch, 1)
    cfg = ["--config", str(env.config)]
    wanted = env.find(env.a, "bad_json")
    assert len(wanted) == 2
    for _ in range(3):  # one at a time; the third run finds nothing left
        assert await warp("dlq", "replay", *cfg, "--to-topic", scratch, "--topic", env.a,
                          "--error-code", "bad_json", "--limit", "1") == 0
    out = capsys.readouterr().out
    assert out.count(", replayed 1, already") == 2 and ", replayed 0, already replayed 2" in out
    got = await read_all(env.bootstrap, scratch)
    assert sorted((r.key, r.value) for r in got) == sorted((s.key, s.value) for s in wanted)
    assert await read_all(env.bootstrap, env.a) == []  # not sent to the original topic

    # Replayed to scratch does not count as re-driven to the letter's own topic.
    assert await warp("dlq", "replay", *cfg, "--topic", env.a) == 0
    assert f"replayed {len(env.find(env.a))}, already replayed 0" in capsys.readouterr().out
    assert await warp("dlq", "replay", *cfg, "--to-topic", "no-such-topic-x") == 2
    capsys.readouterr()


async def test_replay_settles_claims_of_an_interrupted_run(env: Env, capsys: Any) -> None:
    """A run that died after claiming: one claimed letter had reached its topic, one had
    not. The next run marks the first done and replays only the second."""
    dlq_records = await read_all(env.bootstrap, env.dlq)
    first, second = (r for r in dlq_records if dict(r.headers)["__connect.errors.topic"]
                     == env.b.encode())
    await dlq_cli.ensure_ledger(env.pg, env.schema)
    now_ms = int(time.time() * 1000)
    await env.pg.executemany(
        f'INSERT INTO "{env.schema}".dlq_replays (dlq_topic, dlq_partition, dlq_offset, '
        "target_topic, claimed_at_ms) VALUES ($1, $2, $3, $4, $5)",
        [(env.dlq, r.partition, r.offset, env.b, now_ms) for r in (first, second)])
    producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, acks="all")
    await producer.start()
    try:  # what the dead run got out before it died
        await producer.send_and_wait(
            env.b, key=first.key, value=first.value,
            headers=[("warp.replayed.from",
                      f"{env.dlq}:{first.partition}:{first.offset}".encode())])
    finally:
        await producer.stop()

    assert await warp("dlq", "replay", "--config", str(env.config), "--topic", env.b) == 0
    out = capsys.readouterr().out
    assert "2 claims left by an interrupted replay: 1 had reached" in out
    assert "replayed 1, already replayed 1" in out
    got = await read_all(env.bootstrap, env.b)
    assert sorted(replayed_from(r) or "" for r in got) == sorted(
        f"{env.dlq}:{r.partition}:{r.offset}" for r in (first, second))


async def test_replay_on_a_terminal_shows_a_live_line(env: Env) -> None:
    cmd = [sys.executable, "-m", "sink", "dlq", "replay", "--config", str(env.config)]
    out = await asyncio.to_thread(run_on_pty, cmd)
    drawings = [d for d in re.split(r"[\r\n]", out) if "letter" in d and "replayed" in d]
    assert drawings, out[-2000:]
    n = len(env.letters)
    assert f"{n}/{n}" in drawings[-1] and "replayed 5 · failed 0" in drawings[-1], drawings[-1]
    # the per-letter lines are still there, whole, around the live line
    assert len(re.findall(rf"replayed {env.dlq}:\d+:\d+ -> ", out)) == n


async def one_partition_dlq(env: Env, max_message_bytes: int = 1024 * 1024) -> str:
    dlq = f"dlq-n-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(dlq, 1, 1, topic_configs={
            "max.message.bytes": str(max_message_bytes)})])
    finally:
        await admin.close()
    return dlq


async def send_letters(env: Env, dlq: str, letters: list[DeadLetter]) -> None:
    queue = DeadLetterQueue(lambda: AIOKafkaProducer(
        bootstrap_servers=env.bootstrap, acks="all", enable_idempotence=True,
        max_request_size=8 * 1024 * 1024), dlq)
    try:
        await queue.send(letters)
    finally:
        await queue.stop()


async def test_null_header_values_stay_null(env: Env, capsys: Any) -> None:
    """A header whose value is null is shown as null and replayed as null (inspect and
    replay used to turn it into empty bytes)."""
    dlq = await one_partition_dlq(env)
    await send_letters(env, dlq, [DeadLetter(
        topic=env.a, partition=0, offset=11, key=b"k-null", value=b"v",
        headers=[("n", None), ("e", b""), ("trace-id", b"t9")],
        error=RecordError("refused", code="rejected"), stage="TASK_PUT")])
    assert await warp("dlq", "inspect", "--config", str(env.config), "--json",
                      "--dlq-topic", dlq) == 0
    [doc] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (doc["headers"]["n"], doc["headers"]["e"]) == (None, "")

    assert await warp("dlq", "replay", "--config", str(env.config), "--dlq-topic", dlq) == 0
    assert "replayed 1," in capsys.readouterr().out
    [rec] = await read_all(env.bootstrap, env.a)
    assert (rec.key, rec.value) == (b"k-null", b"v")
    h = dict(rec.headers)
    assert h["n"] is None and h["e"] == b"" and h["trace-id"] == b"t9"


async def test_truncated_dead_letters_are_shown_as_such_and_not_replayed(
    env: Env, capsys: Any
) -> None:
    """A dead letter whose value the sink cut to fit the DLQ topic is not replayed (a
    prefix is not the record): the output names the original's coordinates."""
    dlq = await one_partition_dlq(env)
    big = b"z" * (2 * 1024 * 1024)
    await send_letters(env, dlq, [DeadLetter(
        topic=env.b, partition=0, offset=12, key=b"k-big", value=big, headers=[],
        error=RecordError("refused", code="rejected"), stage="TASK_PUT")])
    assert await warp("dlq", "inspect", "--config", str(env.config), "--json",
                      "--dlq-topic", dlq) == 0
    [cut] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert cut["value_truncated"] is True
    assert cut["headers"]["warp.value.original.bytes"] == str(len(big))
    assert big.startswith(base64.b64decode(cut["value_b64"]))
    assert await warp("dlq", "inspect", "--config", str(env.config), "--dlq-topic", dlq) == 0
    assert "(value truncated)" in capsys.readouterr().out

    assert await warp("dlq", "replay", "--config", str(env.config), "--dlq-topic", dlq) == 0
    captured = capsys.readouterr()
    assert "replayed 0," in captured.out and "truncated 1," in captured.out
    assert f"the original is {env.b}[0]@12" in captured.err
    assert await read_all(env.bootstrap, env.b) == []
