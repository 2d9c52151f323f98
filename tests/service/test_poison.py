"""Poison records on real Kafka and PostgreSQL: records Debezium writes in normal operation
or a hostile producer can write never stop the service, never loop it, and reach the DLQ
at most once (issue 12, items 2, 3 and 4)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sink.config import load_settings
from sink.errors import DecodeError
from sink.service import Sink
from sink.service.dead_letters import DeadLetter, DeadLetterQueue
from sink.service.kafka import producer as dlq_producer
from sink.tools.events import MongoEvents, Oid
from tests.support import (
    add_age_check,
    end_offsets,
    read_topic,
    run_sink,
    stored_offsets,
    table_rows,
    topic_exists,
    unique,
    write_config,
)

pytestmark = pytest.mark.integration

NULL = object()  # a record with neither key nor value: aiokafka's send() refuses to write one


async def produce_raw(bootstrap: str, topic: str, events: list[Any],
                      max_request_size: int = 1_048_576) -> None:
    """Produce to partition 0 in order; ``NULL`` writes a null-key, null-value record the way
    the Java producer (Debezium) does, through the accumulator aiokafka's send() guards."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                max_request_size=max_request_size)
    await producer.start()
    try:
        await producer.client._wait_on_metadata(topic)
        futures = []
        for ev in events:
            if ev is NULL:
                futures.append(await producer._message_accumulator.add_message(
                    TopicPartition(topic, 0), None, None, 30, timestamp_ms=None, headers=[]))
            else:
                futures.append(await producer.send(topic, key=ev[0], value=ev[1], partition=0))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def make_topic(bootstrap: str, name: str, max_message_bytes: int) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs={
            "max.message.bytes": str(max_message_bytes)})])
    finally:
        await admin.close()
    return name


def headers(msg: Any) -> dict[str, bytes | None]:
    return dict(msg.headers)


def doc(i: int, **extra: Any) -> dict[str, Any]:
    return {"_id": Oid(f"{i:024x}"), "name": f"n{i}", "age": 20 + i, **extra}


async def test_null_key_and_value_is_skipped_and_counted(stack, topic_factory, tmp_path) -> None:
    """Debezium's tombstone of a DELETE on a table without a primary key (null key, null
    value) used to decode as missing_key, whose dead letter aiokafka refused: exit 1 at the
    same offset on every restart."""
    topic = await topic_factory(partitions=1)
    db = unique("shop")
    ev = MongoEvents(db, "users")
    await produce_raw(stack.bootstrap_servers, topic,
                      [ev.insert(doc(1)), NULL, ev.insert(doc(2)), NULL])
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    sink = Sink(load_settings(cfg), until_caught_up=True)
    assert await asyncio.wait_for(sink.run(), 120) == 0
    assert sink.metrics.registry.get_sample_value(
        "cartridge_warp_skipped_records_total", {"reason": "tombstone_without_key"}) == 2
    rows = await table_rows(stack.pg_dsn, db, "users")
    assert set(rows) == {f"{1:024x}", f"{2:024x}"}
    assert await stored_offsets(stack.pg_dsn, group) == {(topic, 0): 4}
    assert not await topic_exists(stack.bootstrap_servers, f"{group}.dlq")


async def test_the_dlq_producer_sends_a_record_with_neither_key_nor_value(
    stack, tmp_path
) -> None:
    """Whatever the consumer could read, its dead letter can be written (aiokafka refuses a
    null key with a null value: the letter carries an empty value and says so)."""
    dlq = unique("dlq")
    settings = load_settings(write_config(
        tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers, dsn=stack.pg_dsn,
        topic="t", group=dlq))
    queue = DeadLetterQueue(lambda: dlq_producer(settings.source), dlq)
    letter = DeadLetter(topic="src", partition=3, offset=41, key=None, value=None,
                        headers=[("trace", None)], error=DecodeError("x", code="missing_key"),
                        stage="VALUE_CONVERTER")
    try:
        await queue.send([letter])
    finally:
        await queue.stop()
    [msg] = await read_topic(stack.bootstrap_servers, dlq)
    h = headers(msg)
    assert (msg.key, msg.value) == (None, b"")
    assert h["warp.value.null"] == b"true"
    assert h["trace"] is None  # a null header stays null
    assert (h["__connect.errors.topic"], h["__connect.errors.partition"],
            h["__connect.errors.offset"]) == (b"src", b"3", b"41")


async def test_nul_in_source_names_is_a_bad_identifier_dead_letter_once(
    stack, topic_factory, tmp_path
) -> None:
    """A NUL in source.db or source.collection used to reach the topic memory's INSERT
    outside the per-record isolation: exit 1, and every restart dead-lettered the
    decode-stage failures of the batch again."""
    topic = await topic_factory(partitions=1)
    db = unique("shop")
    good = MongoEvents(db, "users")
    bad_db = MongoEvents(db + "\x00x", "users")
    bad_coll = MongoEvents(db, "us\x00ers")
    events = [good.insert(doc(1)), bad_db.insert(doc(2)), bad_coll.insert(doc(3)),
              good.insert(doc(4))]
    assert b"\\u0000" in events[1][1]  # valid JSON: the NUL is an escape in the text
    await produce_raw(stack.bootstrap_servers, topic, events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    for _ in range(2):  # a second run finds nothing new and sends nothing again
        done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
    rows = await table_rows(stack.pg_dsn, db, "users")
    assert set(rows) == {f"{1:024x}", f"{4:024x}"}
    assert await stored_offsets(stack.pg_dsn, group) == {(topic, 0): 4}
    dlq = await read_topic(stack.bootstrap_servers, f"{group}.dlq")
    assert [(headers(m)["warp.error.code"], headers(m)["__connect.errors.offset"],
             headers(m)["__connect.errors.stage"]) for m in dlq] == [
        (b"bad_identifier", b"1", b"VALUE_CONVERTER"),
        (b"bad_identifier", b"2", b"VALUE_CONVERTER")]
    assert [m.value for m in dlq] == [events[1][1], events[2][1]]


BIG = 3 * 1024 * 1024


async def test_dead_letters_over_the_dlq_topic_limit_go_truncated(
    stack, topic_factory, tmp_path
) -> None:
    """A 3 MB malformed message (its dead letter over the producer's 1 MiB default, then
    retried forever as a KafkaError) and a 3 MB record PostgreSQL refuses (exit 1 on every
    restart), with a DLQ topic that takes at most 1 MB: both dead-lettered, truncated, with
    every header and their coordinates; the good records around them applied."""
    db = unique("shop")
    ev = MongoEvents(db, "users")
    topic = await make_topic(stack.bootstrap_servers, unique("big"), 8 * 1024 * 1024)
    group = unique("g")
    await make_topic(stack.bootstrap_servers, f"{group}.dlq", 1024 * 1024)
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    await produce_raw(stack.bootstrap_servers, topic, [ev.insert(doc(1))])
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    await add_age_check(stack.pg_dsn, db)  # age < 1000

    malformed = (ev.key(Oid(f"{9:024x}")), b'{"op": "c", "after": "' + b"x" * BIG)
    refused = ev.insert(doc(7, age=5000, blob="y" * BIG))
    assert len(malformed[1]) > BIG and len(refused[1]) > BIG
    await produce_raw(stack.bootstrap_servers, topic,
                      [malformed, ev.insert(doc(2)), refused, ev.insert(doc(3))],
                      max_request_size=8 * 1024 * 1024)
    for _ in range(2):  # and a restart finds nothing to redo
        done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]

    rows = await table_rows(stack.pg_dsn, db, "users")
    assert set(rows) == {f"{i:024x}" for i in (1, 2, 3)}
    assert await stored_offsets(stack.pg_dsn, group) == {(topic, 0): 5}
    dlq = await read_topic(stack.bootstrap_servers, f"{group}.dlq")
    assert len(dlq) == 2
    for msg, (offset, original, code) in zip(
            dlq, [(1, malformed, b"bad_json"), (3, refused, b"constraint_violation")],
            strict=True):
        h = headers(msg)
        assert h["warp.error.code"] == code
        assert h["warp.value.truncated"] == b"true"
        assert h["warp.value.original.bytes"] == str(len(original[1])).encode()
        assert (h["__connect.errors.topic"], h["__connect.errors.partition"],
                h["__connect.errors.offset"]) == (topic.encode(), b"0", str(offset).encode())
        assert h["__connect.errors.exception.stacktrace"]
        assert msg.key == original[0]
        assert 0 < len(msg.value) < 1024 * 1024 and original[1].startswith(msg.value)
    log = done.stderr + done.stdout
    assert "transient failure" not in log


async def test_a_large_dead_letter_goes_whole_when_the_dlq_topic_takes_it(
    stack, tmp_path
) -> None:
    """The DLQ producer sends what the consumer reads: a 3 MB malformed message reaches a
    DLQ topic that takes 8 MB whole (aiokafka's 1 MiB max_request_size refused it)."""
    ev = MongoEvents(unique("shop"), "users")
    topic = await make_topic(stack.bootstrap_servers, unique("big"), 8 * 1024 * 1024)
    group = unique("g")
    await make_topic(stack.bootstrap_servers, f"{group}.dlq", 8 * 1024 * 1024)
    malformed = (ev.key(Oid(f"{9:024x}")), b"[" * 10 + b"x" * BIG)
    await produce_raw(stack.bootstrap_servers, topic, [malformed, ev.insert(doc(1))],
                      max_request_size=8 * 1024 * 1024)
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    [msg] = await read_topic(stack.bootstrap_servers, f"{group}.dlq")
    assert msg.value == malformed[1]
    assert "warp.value.truncated" not in headers(msg)
    assert await end_offsets(stack.bootstrap_servers, topic) == {0: 2}
    assert await stored_offsets(stack.pg_dsn, group) == {(topic, 0): 2}
