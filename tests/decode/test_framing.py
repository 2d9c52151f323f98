"""MessageDecoder: the Confluent wire format, Avro through the registry, mixed key/value
formats, and the same Records as the JSON path for the same events."""

from __future__ import annotations

import base64
import io
import json
import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sink.decode.envelope import DecoderOptions, decode_json
from sink.decode.framing import MessageDecoder, schema_id
from sink.decode.registry import SchemaRegistry
from sink.decode.schema import schema_node
from sink.errors import ConfigError, DecodeError, TransientError
from sink.records import JsonText, Kind, Patch, Record, Skip
from sink.tools.events import MongoEvents, Oid
from tests import paths, schema_registry_server
from tests.schema_registry_server import RegistryServer

schema_registry = schema_registry_server.schema_registry  # the fixture, for this module

SCHEMAS = paths.SCHEMAS
OID = "507f1f77bcf86cd799439011"


def avsc(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return loaded


MONGO_KEY = avsc("debezium-mongodb/key.avsc")
MONGO_ENV = avsc("debezium-mongodb/envelope.avsc")
PG_KEY = avsc("debezium-postgresql/key.avsc")
PG_ENV = avsc("debezium-postgresql/envelope.avsc")
HEARTBEAT = {"type": "record", "name": "Heartbeat", "namespace": "io.debezium.connector.common",
             "fields": [{"name": "ts_ms", "type": "long"}],
             "connect.name": "io.debezium.connector.common.Heartbeat"}  # fmt: skip
_PARSED: dict[int, Any] = {}


def frame(sid: int, schema: Any, obj: Any) -> bytes:
    """Confluent wire format: magic 0, big-endian schema id, Avro binary."""
    key = id(schema)
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = _PARSED[key] = parse_schema(schema)
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, sid))
    schemaless_writer(out, parsed, obj)
    return out.getvalue()


class Ids:
    mongo_key: int
    mongo_env: int
    pg_key: int
    pg_env: int
    heartbeat: int


@pytest.fixture
def ids(schema_registry: RegistryServer) -> Ids:
    out = Ids()
    out.mongo_key = schema_registry.register("dbserver1.inventory.customers-key", MONGO_KEY)
    out.mongo_env = schema_registry.register("dbserver1.inventory.customers-value", MONGO_ENV)
    out.pg_key = schema_registry.register("dbserver1.inventory.orders-key", PG_KEY)
    out.pg_env = schema_registry.register("dbserver1.inventory.orders-value", PG_ENV)
    out.heartbeat = schema_registry.register("__debezium-heartbeat.dbserver1-value", HEARTBEAT)
    return out


@pytest.fixture
def registry(schema_registry: RegistryServer) -> SchemaRegistry:
    return SchemaRegistry(schema_registry.url, initial_backoff=0.01, max_backoff=0.02,
                          timeout=2.0, not_found_attempts=1)  # fmt: skip


@pytest.fixture
def avro(registry: SchemaRegistry) -> MessageDecoder:
    return MessageDecoder(DecoderOptions(), "avro", "avro", registry)


def same(a: Record | Skip, b: Record | Skip) -> None:
    """Equal records, ignoring the byte size (Avro and JSON differ in length)."""
    if isinstance(a, Record) and isinstance(b, Record):
        a.size = b.size = 0
    assert a == b


def to_avro(ids: Ids, key: bytes | None, value: bytes | None) -> tuple[bytes | None, bytes | None]:
    """A MongoDB JsonConverter message (schemas off) → the same message in Avro."""
    akey = frame(ids.mongo_key, MONGO_KEY, orjson.loads(key)) if key else None
    aval = frame(ids.mongo_env, MONGO_ENV, orjson.loads(value)) if value else None
    return akey, aval


def rich_doc(n: int = 1) -> dict[str, Any]:
    return {
        "_id": Oid(OID), "name": "John Doe", "age": 30, "big": 2**40, "salary": 75000.5,
        "price": Decimal("19.99"), "is_active": True,
        "created_at": datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
        "ref": uuid.UUID("12345678-1234-5678-1234-567812345678"), "blob": b"\x00\x01",
        "metadata": {"plan": "pro", "features": ["analytics", "api_access"], "n": n},
        "nothing": None,
    }  # fmt: skip


# --------------------------------------------------------------------------- schemas/


def test_every_avsc_parses_and_names_its_connect_types() -> None:
    files = sorted(SCHEMAS.rglob("*.avsc"))
    assert len(files) >= 4
    for f in files:
        raw = json.loads(f.read_text())
        parse_schema(raw)  # valid Avro, valid names
        node = schema_node(raw)
        assert node is not None and node.full_name == raw["connect.name"], f
    env = schema_node(MONGO_ENV)
    assert env is not None
    assert env.field("after").name == "io.debezium.data.Json"  # type: ignore[union-attr]
    src = env.field("source")
    assert src is not None and src.full_name == "io.debezium.connector.mongo.Source"
    assert src.field("snapshot").name == "io.debezium.data.Enum"  # type: ignore[union-attr]
    after = schema_node(PG_ENV).field("after")  # type: ignore[union-attr]
    assert after is not None and after.full_name == "dbserver1.inventory.orders.Value"
    amount = after.field("amount")
    assert amount is not None and amount.name == "org.apache.kafka.connect.data.Decimal"
    assert amount.scale == 2


# --------------------------------------------------------------------------- wire format


def test_schema_id_reads_the_header() -> None:
    assert schema_id(b"\x00\x00\x00\x01\x02rest") == 258
    assert schema_id(b"\x00\xff\xff\xff\xff") == -1  # a signed int32, as Java reads it
    with pytest.raises(DecodeError) as err:
        schema_id(b"\x01\x00\x00\x00\x01")
    assert err.value.code == "bad_magic_byte"
    with pytest.raises(DecodeError) as err:
        schema_id(b'{"op": "c"}')
    assert err.value.code == "bad_magic_byte" and "JSON" in str(err.value)
    for short in (b"\x00", b"\x00\x00\x00\x01"):
        with pytest.raises(DecodeError) as err:
            schema_id(short)
        assert err.value.code == "bad_avro"


async def test_bad_magic_byte(avro: MessageDecoder, ids: Ids) -> None:
    ev = MongoEvents("shop", "users")
    key, value = to_avro(ids, *ev.insert(rich_doc()))
    assert key is not None and value is not None
    for k, v, what in ((key, b"\x01" + value[1:], "value"), (b"\x07" + key[1:], value, "key")):
        with pytest.raises(DecodeError) as err:
            await avro.decode(k, v, ev.topic)
        assert err.value.code == "bad_magic_byte" and str(err.value).startswith(what)
    with pytest.raises(DecodeError) as err:  # JsonConverter bytes sent to an Avro decoder
        await avro.decode(key, ev.insert(rich_doc())[1], ev.topic)
    assert err.value.code == "bad_magic_byte"


async def test_truncated_and_oversized_avro(avro: MessageDecoder, ids: Ids) -> None:
    ev = MongoEvents("shop", "users")
    key, value = to_avro(ids, *ev.insert(rich_doc()))
    assert key is not None and value is not None
    for cut in (3, 5, 6, 20, len(value) // 2, len(value) - 1):
        with pytest.raises(DecodeError) as err:
            await avro.decode(key, value[:cut], ev.topic)
        assert err.value.code == "bad_avro", cut
    with pytest.raises(DecodeError) as err:
        await avro.decode(key, value + b"\x00\x00", ev.topic)
    assert err.value.code == "bad_avro" and "left after" in str(err.value)
    with pytest.raises(DecodeError) as err:  # the key's schema id on the value
        await avro.decode(key, value[:1] + key[1:5] + value[5:], ev.topic)
    assert err.value.code == "bad_avro"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300))
def test_fuzz_avro_body_only_decode_errors(body: bytes) -> None:
    reg = SchemaRegistry("http://127.0.0.1:9")
    reg.add(1, MONGO_KEY)
    reg.add(2, MONGO_ENV)
    dec = MessageDecoder(DecoderOptions(), "avro", "avro", reg)
    key = frame(1, MONGO_KEY, {"id": json.dumps({"$oid": OID})})
    try:
        out = dec.decode_cached(key, b"\x00\x00\x00\x00\x02" + body, "t")
    except DecodeError:
        return
    assert isinstance(out, Record | Skip)


# --------------------------------------------------------------------------- MongoDB shapes


def mongo_events() -> Iterator[tuple[str, tuple[bytes, bytes | None]]]:
    ev = MongoEvents("inventory", "customers", prefix="dbserver1")
    oid = Oid(OID)
    yield "c", ev.insert(rich_doc())
    yield "r", ev.insert(rich_doc(2), op="r")
    yield "u_replace", ev.replace(rich_doc(3))
    yield "u_full", ev.update(oid, {"age": 31}, ["nothing"], full=rich_doc(4))
    yield "u_patch", ev.update(oid, {"age": 32, "metadata.plan": "team",
                                     "seen": datetime(2024, 2, 1, tzinfo=UTC)}, ["salary"])
    yield "d", ev.delete(oid)
    yield "tombstone", ev.tombstone(oid)
    for _id in (1234, "1234", {"a": 1, "b": [1, 2]}, 2**40):
        yield f"id_{_id!r}", ev.insert({**rich_doc(), "_id": _id})


@pytest.mark.parametrize("name,event", list(mongo_events()), ids=lambda x: str(x)[:20])
async def test_mongodb_avro_equals_json(
    avro: MessageDecoder, ids: Ids, name: str, event: tuple[bytes, bytes | None]
) -> None:
    key, value = event
    want = decode_json(key, value, "dbserver1.inventory.customers")
    akey, aval = to_avro(ids, key, value)
    got = await avro.decode(akey, aval, "dbserver1.inventory.customers")
    assert isinstance(got, Record) and got.size == len(akey or b"") + len(aval or b"")
    same(got, want)
    if name == "tombstone":
        assert got.op == "tombstone" and got.kind is Kind.DELETE and got.table is None
    if name == "u_patch":
        assert got.kind is Kind.PATCH and got.patch is not None
        assert got.patch.set[("metadata", "plan")] == "team"
        assert got.patch.unset == [("salary",)]


def _envelope(ev: MongoEvents, **changes: Any) -> tuple[bytes, bytes]:
    key, value = ev.update(Oid(OID), {"tags.0": "x"}, ["gone"])
    payload = orjson.loads(value)
    for path, v in changes.items():
        node = payload
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        node[last] = v
    return key, orjson.dumps(payload)


async def test_mongodb_truncated_arrays_snapshot_and_transaction(
    avro: MessageDecoder, ids: Ids
) -> None:
    ev = MongoEvents("inventory", "customers")
    key, value = _envelope(
        ev,
        updateDescription__truncatedArrays=[{"field": "tags", "size": 1},
                                            {"field": "a.b", "size": 0}],
        source__snapshot="incremental", source__lsid='{"id": {"$binary": "AA==", "$type": "04"}}',
        source__txnNumber=7, source__ts_us=1, source__ts_ns=1000,
        transaction={"id": "tx1", "total_order": 9, "data_collection_order": 3},
    )  # fmt: skip
    want = decode_json(key, value, ev.topic)
    got = await avro.decode(*to_avro(ids, key, value), ev.topic)
    same(got, want)
    assert isinstance(got, Record)
    assert got.patch == Patch(set={("tags", "0"): "x"}, unset=[("gone",)],
                              truncate={("tags",): 1, ("a", "b"): 0})  # fmt: skip
    assert got.position[2] == 9  # the transaction's total order


async def test_mongodb_update_without_content_is_skipped(avro: MessageDecoder, ids: Ids) -> None:
    ev = MongoEvents("inventory", "customers")
    key, value = _envelope(ev, updateDescription=None)
    got = await avro.decode(*to_avro(ids, key, value), ev.topic)
    assert got == decode_json(key, value, ev.topic) == Skip("update_without_content")


async def test_heartbeat_is_skipped(avro: MessageDecoder, ids: Ids) -> None:
    key = frame(ids.mongo_key, MONGO_KEY, {"id": "1"})
    value = frame(ids.heartbeat, HEARTBEAT, {"ts_ms": 1_700_000_000_000})
    assert await avro.decode(key, value, "dbserver1.heartbeats") == Skip("heartbeat")


# --------------------------------------------------------------------------- relational


def _connect(field: str, type_: str, optional: bool = True, **kw: Any) -> dict[str, Any]:
    return {"field": field, "type": type_, "optional": optional, **kw}


_ROW_FIELDS = [
    _connect("id", "int32", False),
    _connect("order_ref", "string", False, name="io.debezium.data.Uuid", version=1),
    _connect("amount", "bytes", False, name="org.apache.kafka.connect.data.Decimal", version=1,
             parameters={"scale": "2", "connect.decimal.precision": "10"}),
    _connect("placed_at", "int64", name="io.debezium.time.MicroTimestamp", version=1),
    _connect("updated_at", "string", name="io.debezium.time.ZonedTimestamp", version=1),
    _connect("ship_date", "int32", name="io.debezium.time.Date", version=1),
    _connect("attributes", "string", name="io.debezium.data.Json", version=1),
    _connect("weight", "float64"),
    _connect("note", "string"),
]  # fmt: skip
_ROW = {"type": "struct", "name": "dbserver1.inventory.orders.Value", "fields": _ROW_FIELDS}
_SOURCE_FIELDS = [
    _connect("version", "string", False), _connect("connector", "string", False),
    _connect("name", "string", False), _connect("ts_ms", "int64", False),
    _connect("snapshot", "string", name="io.debezium.data.Enum", default="false"),
    _connect("db", "string", False), _connect("sequence", "string"),
    _connect("ts_us", "int64"), _connect("ts_ns", "int64"),
    _connect("schema", "string", False), _connect("table", "string", False),
    _connect("txId", "int64"), _connect("lsn", "int64"), _connect("xmin", "int64"),
]  # fmt: skip
PG_CONNECT_SCHEMA = {
    "type": "struct", "optional": False, "name": "dbserver1.inventory.orders.Envelope",
    "fields": [
        {**_ROW, "field": "before", "optional": True},
        {**_ROW, "field": "after", "optional": True},
        {"type": "struct", "field": "source", "optional": False, "fields": _SOURCE_FIELDS,
         "name": "io.debezium.connector.postgresql.Source"},
        _connect("op", "string", False), _connect("ts_ms", "int64"),
        _connect("ts_us", "int64"), _connect("ts_ns", "int64"),
    ],
}  # fmt: skip
PG_CONNECT_KEY = {"type": "struct", "name": "dbserver1.inventory.orders.Key", "optional": False,
                  "fields": [_connect("id", "int32", False)]}  # fmt: skip
ORDER_REF = "6f1c1a8e-3b7a-4d2e-9a53-0c8f2b1d9e77"


def pg_row(i: int, amount: Decimal) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same row as JsonConverter writes it and as the Avro writer takes it."""
    unscaled = int(amount.scaleb(2))
    raw = unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)
    common = {"id": i, "order_ref": ORDER_REF, "placed_at": 1529507596945104,
              "updated_at": "2011-01-11T16:40:30.123456789+02:00", "ship_date": 19737,
              "attributes": '{"gift": true, "tags": ["a"], "n": 12345678901234}',
              "weight": 1.5, "note": None}  # fmt: skip
    return ({**common, "amount": base64.b64encode(raw).decode()}, {**common, "amount": amount})


def pg_event(op: str, i: int, amount: Decimal, lsn: int) -> tuple[dict[str, Any], ...]:
    json_row, avro_row = pg_row(i, amount)
    source = {"version": "3.0.0.Final", "connector": "postgresql", "name": "dbserver1",
              "ts_ms": 1_700_000_000_123, "snapshot": "false", "db": "shop", "sequence": None,
              "ts_us": None, "ts_ns": None, "schema": "inventory", "table": "orders",
              "txId": 555, "lsn": lsn, "xmin": None}  # fmt: skip
    after = op != "d"
    base = {"source": source, "op": op, "ts_ms": 1_700_000_000_200, "ts_us": None, "ts_ns": None}
    json_env = {**base, "before": None if after else json_row, "after": json_row if after else None}
    avro_env = {**base, "before": None if after else avro_row, "after": avro_row if after else None,
                "transaction": None}  # fmt: skip
    return json_env, avro_env


@pytest.mark.parametrize("op", ["r", "c", "u", "d"])
async def test_relational_logical_types_equal_json(avro: MessageDecoder, ids: Ids, op: str) -> None:
    json_env, avro_env = pg_event(op, 1001, Decimal("-1234.56"), 24023128 + ord(op))
    key_json = orjson.dumps({"schema": PG_CONNECT_KEY, "payload": {"id": 1001}})
    value_json = orjson.dumps({"schema": PG_CONNECT_SCHEMA, "payload": json_env})
    want = decode_json(key_json, value_json, "dbserver1.inventory.orders")
    got = await avro.decode(frame(ids.pg_key, PG_KEY, {"id": 1001}),
                            frame(ids.pg_env, PG_ENV, avro_env), "dbserver1.inventory.orders")
    same(got, want)
    assert isinstance(got, Record)
    assert (got.schema, got.table, got.key, got.position) == (
        "inventory", "orders", {"id": 1001}, (24023128 + ord(op),))
    if op == "d":
        assert got.kind is Kind.DELETE
        return
    assert got.kind is Kind.UPSERT and got.values == {
        "id": 1001,
        "order_ref": uuid.UUID(ORDER_REF),
        "amount": Decimal("-1234.56"),
        "placed_at": datetime(2018, 6, 20, 15, 13, 16, 945104),
        "updated_at": datetime(2011, 1, 11, 16, 40, 30, 123456,
                               tzinfo=timezone(timedelta(hours=2))),
        "ship_date": date(2024, 1, 15),
        "attributes": JsonText('{"gift": true, "tags": ["a"], "n": 12345678901234}'),
        "weight": 1.5,
        "note": None,
    }  # fmt: skip


async def test_relational_tombstone_with_avro_key(avro: MessageDecoder, ids: Ids) -> None:
    got = await avro.decode(frame(ids.pg_key, PG_KEY, {"id": 7}), None, "t")
    assert got == Record(None, None, {"id": 7}, Kind.DELETE, "tombstone", size=got.size)  # type: ignore[union-attr]
    assert await avro.decode(frame(ids.pg_key, PG_KEY, {"id": 7}), b"", "t") == got


# --------------------------------------------------------------------------- mixed formats


async def test_avro_value_with_json_key(registry: SchemaRegistry, ids: Ids) -> None:
    dec = MessageDecoder(DecoderOptions(), "json", "avro", registry)
    ev = MongoEvents("inventory", "customers")
    key, value = ev.insert(rich_doc())
    _, aval = to_avro(ids, key, value)
    same(await dec.decode(key, aval, ev.topic), decode_json(key, value, ev.topic))
    with_schema = MongoEvents("inventory", "customers", schemas=True).key(Oid(OID))
    same(await dec.decode(with_schema, aval, ev.topic), decode_json(key, value, ev.topic))
    with pytest.raises(DecodeError) as err:
        await dec.decode(b"{not json", aval, ev.topic)
    assert err.value.code == "bad_key"


async def test_json_value_with_avro_key(registry: SchemaRegistry, ids: Ids) -> None:
    dec = MessageDecoder(DecoderOptions(), "avro", "json", registry)
    ev = MongoEvents("inventory", "customers", schemas=True)
    key, value = ev.update(Oid(OID), {"a.b": 1})
    akey, _ = to_avro(ids, orjson.dumps(orjson.loads(key)["payload"]), None)
    same(await dec.decode(akey, value, ev.topic), decode_json(key, value, ev.topic))
    with pytest.raises(DecodeError) as err:
        await dec.decode(akey, b"\x00\x00\x00\x00\x01", ev.topic)
    assert err.value.code == "bad_json"


async def test_json_value_with_a_huge_integer_and_avro_key(
    registry: SchemaRegistry, ids: Ids
) -> None:
    dec = MessageDecoder(DecoderOptions(), "avro", "json", registry)
    json_env, _ = pg_event("c", 1, Decimal("1.00"), 1)
    json_env["after"]["weight"] = 10**30  # beyond 64 bits: the exact re-parse path
    value = json.dumps({"schema": PG_CONNECT_SCHEMA, "payload": json_env}).encode()
    got = await dec.decode(frame(ids.pg_key, PG_KEY, {"id": 1}), value, "t")
    assert isinstance(got, Record) and got.values is not None and got.values["weight"] == 1e30


@pytest.mark.parametrize("text,canonical", [
    (f'Struct{{id={{"$oid": "{OID}"}}}}', OID),
    (f'{{"$oid": "{OID}"}}', OID),
    ("Struct{id=1234}", '{"$numberLong":"1234"}'),
    ('"1234"', "1234"),
])  # fmt: skip
async def test_string_keys(registry: SchemaRegistry, ids: Ids, text: str, canonical: str) -> None:
    dec = MessageDecoder(DecoderOptions(), "string", "avro", registry)
    ev = MongoEvents("inventory", "customers")
    _, aval = to_avro(ids, *ev.insert({"_id": Oid(OID), "x": 1}))
    got = await dec.decode(text.encode(), aval, ev.topic)
    assert isinstance(got, Record) and got.key == {"_id": canonical}
    tomb = await dec.decode(text.encode(), None, ev.topic)
    assert isinstance(tomb, Record) and tomb.key == {"_id": canonical}
    with pytest.raises(DecodeError) as err:
        await dec.decode(b"\xff\xfe", aval, ev.topic)
    assert err.value.code == "bad_key"


def test_json_only_decoder_needs_no_registry() -> None:
    dec = MessageDecoder(DecoderOptions(), "json", "json", None)
    key, value = MongoEvents("a", "b").insert({"_id": 1, "x": 2})
    assert dec.decode_cached(key, value, "t") == decode_json(key, value, "t")


def test_config_errors() -> None:
    with pytest.raises(ConfigError):
        MessageDecoder(DecoderOptions(), "json", "avro", None)
    with pytest.raises(ConfigError):
        MessageDecoder(DecoderOptions(), "protobuf", "json", None)
    with pytest.raises(ConfigError):
        MessageDecoder(DecoderOptions(), "json", "string", None)


# --------------------------------------------------------------------------- registry use


async def test_cached_fast_path(
    avro: MessageDecoder, ids: Ids, schema_registry: RegistryServer
) -> None:
    ev = MongoEvents("inventory", "customers")
    key, value = to_avro(ids, *ev.insert(rich_doc()))
    assert avro.decode_cached(key, value, ev.topic) is None  # nothing cached: no I/O either
    assert schema_registry.requests == []
    assert avro.schema_ids(key, value) == [ids.mongo_key, ids.mongo_env]
    first = await avro.decode(key, value, ev.topic)
    assert schema_registry.count("/schemas/ids/") == 2
    for _ in range(50):
        got = avro.decode_cached(key, value, ev.topic)
        assert got == first
        assert await avro.decode(key, value, ev.topic) == first
    assert schema_registry.count("/schemas/ids/") == 2  # each schema fetched once
    tomb = avro.decode_cached(key, None, ev.topic)  # a tombstone needs only the key's schema
    assert isinstance(tomb, Record) and tomb.op == "tombstone"


async def test_unknown_schema_id(avro: MessageDecoder, ids: Ids) -> None:
    ev = MongoEvents("inventory", "customers")
    key, value = to_avro(ids, *ev.insert(rich_doc()))
    assert value is not None
    with pytest.raises(DecodeError) as err:
        await avro.decode(key, value[:1] + struct.pack(">I", 999) + value[5:], ev.topic)
    assert err.value.code == "unknown_schema_id"


async def test_registry_down_is_transient(ids: Ids) -> None:
    dead = SchemaRegistry("http://127.0.0.1:9", attempts=2, initial_backoff=0.01)
    dec = MessageDecoder(DecoderOptions(), "avro", "avro", dead)
    ev = MongoEvents("inventory", "customers")
    key, value = to_avro(ids, *ev.insert(rich_doc()))
    with pytest.raises(TransientError):
        await dec.decode(key, value, ev.topic)


async def test_registry_failure_then_recovery(
    avro: MessageDecoder, ids: Ids, schema_registry: RegistryServer
) -> None:
    assert avro.registry is not None
    avro.registry.attempts = 2
    ev = MongoEvents("inventory", "customers")
    key, value = to_avro(ids, *ev.insert(rich_doc()))
    schema_registry.fail_next(5, 503)
    with pytest.raises(TransientError):
        await avro.decode(key, value, ev.topic)
    schema_registry.fail_next(0)
    assert isinstance(await avro.decode(key, value, ev.topic), Record)


async def test_json_column_with_a_float_beyond_64_bits(avro: MessageDecoder, ids: Ids) -> None:
    _, avro_env = pg_event("c", 5, Decimal("1.00"), 7)
    big = '{"big": 1e300, "small": -2.5e-300, "n": 18446744073709551615}'
    avro_env["after"]["attributes"] = big
    got = await avro.decode(frame(ids.pg_key, PG_KEY, {"id": 5}),
                            frame(ids.pg_env, PG_ENV, avro_env), "t")
    assert isinstance(got, Record) and got.values is not None
    assert got.values["attributes"] == JsonText(big)  # kept exactly, for jsonb
