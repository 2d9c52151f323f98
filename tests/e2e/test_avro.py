"""Avro end to end: Debezium events in the Confluent wire format go through REAL Kafka, are
consumed with aiokafka, decoded by MessageDecoder against the in-process schema registry,
and written by PostgreSQLDestinationConnector into REAL PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastavro import parse_schema, schemaless_writer

from sink.decode.envelope import DecoderOptions
from sink.decode.framing import MessageDecoder
from sink.decode.registry import SchemaRegistry
from sink.postgres.connector import PostgreSQLDestinationConnector
from sink.records import Record, Skip
from sink.tools.events import MongoEvents, Oid
from tests import paths, schema_registry_server
from tests.harness import Stack
from tests.schema_registry_server import RegistryServer
from tests.support import run_sink, unique, write_config

pytestmark = pytest.mark.integration
schema_registry = schema_registry_server.schema_registry  # the fixture, for this module

SCHEMAS = paths.SCHEMAS
MONGO_KEY = json.loads((SCHEMAS / "debezium-mongodb/key.avsc").read_text())
MONGO_ENV = json.loads((SCHEMAS / "debezium-mongodb/envelope.avsc").read_text())
PG_KEY = json.loads((SCHEMAS / "debezium-postgresql/key.avsc").read_text())
PG_ENV = json.loads((SCHEMAS / "debezium-postgresql/envelope.avsc").read_text())
A, B, C = (Oid(f"{i:024x}") for i in (0xA1, 0xB2, 0xC3))
Message = tuple[bytes | None, bytes | None]


class Framer:
    """Registers a key and a value schema for a topic and frames datums with their ids."""

    def __init__(self, registry: RegistryServer, topic: str, key: Any, value: Any) -> None:
        self.key_id = registry.register(f"{topic}-key", key)
        self.value_id = registry.register(f"{topic}-value", value)
        self.key, self.value = parse_schema(key), parse_schema(value)

    @staticmethod
    def _frame(sid: int, schema: Any, obj: Any) -> bytes:
        out = io.BytesIO()
        out.write(struct.pack(">bI", 0, sid))
        schemaless_writer(out, schema, obj)
        return out.getvalue()

    def message(self, key: Any, value: Any) -> Message:
        return (self._frame(self.key_id, self.key, key),
                None if value is None else self._frame(self.value_id, self.value, value))


def mongo_messages(framer: Framer, ev: MongoEvents) -> list[Message]:
    """JsonConverter events from MongoEvents, re-encoded as Avro (same content)."""
    def doc(oid: Oid, n: int) -> dict[str, Any]:
        return {"_id": oid, "name": f"user {n}", "age": 20 + n, "salary": 1000.5 * n,
                "is_active": n % 2 == 0, "created_at": datetime(2024, 1, 15, 10, n, tzinfo=UTC),
                "price": Decimal(f"{n}.25"), "metadata": {"plan": "free", "features": ["a"]},
                "tags": ["x", "y"]}  # fmt: skip

    events = [
        ev.insert(doc(A, 1)),
        ev.insert(doc(B, 2), op="r"),
        ev.replace(doc(A, 3)),
        ev.update(B, {"age": 99, "metadata.plan": "pro"}, ["tags"]),
        ev.insert(doc(C, 4)),
        ev.update(C, {"age": 5}, full={**doc(C, 4), "age": 5}),
        ev.delete(C),
        ev.tombstone(C),
    ]
    return [framer.message(orjson.loads(k), None if v is None else orjson.loads(v))
            for k, v in events]


def pg_messages(framer: Framer, schema: str) -> list[Message]:
    def row(i: int, amount: str, note: str | None) -> dict[str, Any]:
        return {"id": i, "order_ref": str(uuid.UUID(int=i)), "amount": Decimal(amount),
                "placed_at": 1529507596945104 + i, "updated_at": "2024-03-01T12:00:00.5+01:00",
                "ship_date": 19737 + i, "attributes": json.dumps({"i": i, "tags": ["t"]}),
                "weight": 0.5 * i, "note": note}  # fmt: skip

    def env(op: str, lsn: int, before: Any, after: Any) -> dict[str, Any]:
        source = {"version": "3.0.0.Final", "connector": "postgresql", "name": "dbserver1",
                  "ts_ms": 1_700_000_000_000 + lsn, "db": "shop", "schema": schema,
                  "table": "orders", "lsn": lsn, "txId": 1}  # fmt: skip
        return {"before": before, "after": after, "source": source, "op": op, "ts_ms": 1}

    return [
        framer.message({"id": 1}, env("c", 100, None, row(1, "10.00", "first"))),
        framer.message({"id": 2}, env("c", 101, None, row(2, "-20.50", None))),
        framer.message({"id": 1}, env("u", 102, None, row(1, "11.99", "changed"))),
        framer.message({"id": 2}, env("d", 103, row(2, "-20.50", None), None)),
        framer.message({"id": 2}, None),
    ]


async def produce(bootstrap: str, topic: str, messages: list[Message]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got: list[Any] = []
        while len(got) < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
            for msgs in batch.values():
                got.extend(msgs)
        return got
    finally:
        await consumer.stop()


async def decode_all(decoder: MessageDecoder, msgs: list[Any]) -> list[Record]:
    """What the service does per message: decode, then resolve tombstones' tables."""
    tables: dict[str, tuple[str | None, str | None]] = {}
    out: list[Record] = []
    for m in msgs:
        rec = decoder.decode_cached(m.key, m.value, m.topic)
        if rec is None:
            rec = await decoder.decode(m.key, m.value, m.topic)
        assert not isinstance(rec, Skip), rec
        if rec.table is None:
            rec.schema, rec.table = tables[m.topic]
        else:
            tables[m.topic] = (rec.schema, rec.table)
        rec.topic, rec.partition, rec.offset = m.topic, m.partition, m.offset
        out.append(rec)
    return out


async def test_avro_through_kafka_into_postgres(
    stack: Stack, topic_factory: Any, pg: asyncpg.Connection[Any],
    schema_registry: RegistryServer,
) -> None:  # fmt: skip
    mongo_topic = await topic_factory(prefix="avro-mongo")
    pg_topic = await topic_factory(prefix="avro-pg")
    db, rel_schema = unique("avro"), unique("avro_rel")
    mongo = mongo_messages(Framer(schema_registry, mongo_topic, MONGO_KEY, MONGO_ENV),
                           MongoEvents(db, "users", prefix="dbserver1"))
    rel = pg_messages(Framer(schema_registry, pg_topic, PG_KEY, PG_ENV), rel_schema)
    await asyncio.gather(produce(stack.bootstrap_servers, mongo_topic, mongo),
                         produce(stack.bootstrap_servers, pg_topic, rel))

    registry = SchemaRegistry(schema_registry.url, initial_backoff=0.05)
    decoder = MessageDecoder(DecoderOptions(), "avro", "avro", registry)
    consumed = [*await consume(stack.bootstrap_servers, mongo_topic, len(mongo)),
                *await consume(stack.bootstrap_servers, pg_topic, len(rel))]
    records = await decode_all(decoder, consumed)
    assert [r.op for r in records] == ["c", "r", "u", "u", "c", "u", "d", "tombstone",
                                       "c", "c", "u", "d", "tombstone"]  # fmt: skip
    assert schema_registry.count("/schemas/ids/") == 4  # each schema fetched once

    conn = PostgreSQLDestinationConnector(stack.pg_dsn, max_connections=2, min_connections=1)
    await conn.connect()
    try:
        await conn.write_batch(db, records[:8])
        await conn.write_batch(rel_schema, records[8:])
        users = {r["_id"]: dict(r) for r in await pg.fetch(f'SELECT * FROM "{db}"."users"')}
        orders = {r["id"]: dict(r) for r in
                  await pg.fetch(f'SELECT * FROM "{rel_schema}"."orders"')}  # fmt: skip
        types = dict(await pg.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'orders'", rel_schema))
    finally:
        await conn.disconnect()
        for schema in (db, rel_schema):
            await pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    assert set(users) == {A, B, C}
    a, b, c = users[A], users[B], users[C]
    assert (a["name"], a["age"], a["_cartridge_version"]) == ("user 3", 23, 2)
    assert a["is_deleted"] is False
    assert a["created_at"] == datetime(2024, 1, 15, 10, 3, tzinfo=UTC)
    assert a["price"] == Decimal("3.25") and a["salary"] == 3001.5
    assert json.loads(a["metadata"]) == {"plan": "free", "features": ["a"]}
    assert (b["age"], b["tags"], b["_cartridge_version"]) == (99, None, 2)
    assert json.loads(b["metadata"])["plan"] == "pro"
    assert c["is_deleted"] is True and c["age"] == 5

    assert set(orders) == {1, 2}
    one, two = orders[1], orders[2]
    assert one == {**one, "order_ref": uuid.UUID(int=1), "amount": Decimal("11.99"),
                   "placed_at": datetime(2018, 6, 20, 15, 13, 16, 945105),
                   "updated_at": datetime(2024, 3, 1, 11, 0, 0, 500000, tzinfo=UTC),
                   "ship_date": date(2024, 1, 16), "weight": 0.5, "note": "changed",
                   "is_deleted": False, "_cartridge_version": 2}  # fmt: skip
    assert json.loads(one["attributes"]) == {"i": 1, "tags": ["t"]}
    assert two["is_deleted"] is True and two["amount"] == Decimal("-20.50")
    assert types["order_ref"] == "uuid" and types["amount"] == "numeric"
    assert types["placed_at"] == "timestamp without time zone"
    assert types["updated_at"] == "timestamp with time zone"
    assert types["ship_date"] == "date" and types["attributes"] == "jsonb"


async def test_service_avro(
    stack: Stack, topic_factory: Any, pg: asyncpg.Connection[Any],
    schema_registry: RegistryServer, tmp_path: Path,
) -> None:  # fmt: skip
    """``warp-sink run`` with ``value_format``/``key_format: avro`` against the registry;
    undecodable messages in the stream go to the dead-letter topic, the rest lands."""
    topic = await topic_factory(prefix="avro-svc")
    db = unique("avro_svc")
    messages = mongo_messages(Framer(schema_registry, topic, MONGO_KEY, MONGO_ENV),
                              MongoEvents(db, "users", prefix="dbserver1"))
    key, value = messages[0]
    assert value is not None
    undecodable: list[Message] = [
        (key, b"\x01" + value[1:]),  # bad magic byte
        (key, value[:1] + struct.pack(">I", 9999) + value[5:]),  # unknown schema id
        (key, value[:20]),  # truncated
    ]
    messages = messages[:2] + undecodable + messages[2:]
    await produce(stack.bootstrap_servers, topic, messages)
    extra = (f'  key_format: "avro"\n  value_format: "avro"\n'
             f'  schema_registry_url: "{schema_registry.url}"\n')  # fmt: skip
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers, dsn=stack.pg_dsn,
                       topic=topic, group=group)
    text = cfg.read_text().replace("  auto_offset_reset: \"earliest\"\n",
                                   "  auto_offset_reset: \"earliest\"\n" + extra)
    cfg.write_text(text)
    try:
        done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up", timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        rows = {r["_id"]: dict(r) for r in await pg.fetch(f'SELECT * FROM "{db}"."users"')}
    finally:
        await pg.execute(f'DROP SCHEMA IF EXISTS "{db}" CASCADE')
    assert set(rows) == {A, B, C}
    assert rows[A]["age"] == 23 and rows[B]["age"] == 99 and rows[C]["is_deleted"] is True
    letters = await consume(stack.bootstrap_servers, f"{group}.dlq", len(undecodable))
    codes = sorted(dict(m.headers)["warp.error.code"].decode() for m in letters)
    assert codes == ["bad_avro", "bad_magic_byte", "unknown_schema_id"]
    assert sorted(m.value for m in letters) == sorted(v or b"" for _, v in undecodable)
