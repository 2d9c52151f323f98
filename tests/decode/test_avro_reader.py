"""The Avro reader generated per writer schema reads exactly what fastavro reads.

Random schemas (records, nested records, arrays, maps, unions with null first, last and
several branches, enums, fixed, bytes, every logical type fastavro converts) with random
values, written by fastavro's ``schemaless_writer``: the generated reader's value and end
position must equal ``schemaless_reader``'s, and a Debezium event must decode to the same
``Record`` both ways. Truncated, corrupted and hostile bytes give ``bad_avro``, never
another exception, a hang or a different value."""

from __future__ import annotations

import io
import json
import math
import struct
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from sink.decode import avro_reader
from sink.decode.avro_reader import compile_reader
from sink.decode.envelope import DecoderOptions
from sink.decode.framing import MessageDecoder, _read_avro
from sink.decode.registry import SchemaRegistry, WriterSchema
from sink.errors import DecodeError
from sink.tools.events import MongoEvents, Oid
from tests import paths

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
NAME = st.text(st.sampled_from("abcxyz_'\"\\\n{}()#"), min_size=1, max_size=6)


class _Names:
    def __init__(self) -> None:
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"ns.T{self.n}"


def _logical(draw: st.DrawFn, names: _Names) -> dict[str, Any]:
    kind = draw(st.sampled_from(["decimal-bytes", "decimal-fixed", "date", "time-millis",
                                 "time-micros", "timestamp-millis", "timestamp-micros",
                                 "uuid"]))  # fmt: skip
    if kind.startswith("decimal"):
        precision = draw(st.integers(1, 20))
        scale = draw(st.integers(0, precision))
        if kind == "decimal-bytes":
            return {"type": "bytes", "logicalType": "decimal", "precision": precision,
                    "scale": scale}  # fmt: skip
        return {"type": "fixed", "name": names.next(), "size": 10, "logicalType": "decimal",
                "precision": precision, "scale": scale}  # fmt: skip
    base = {"date": "int", "time-millis": "int", "uuid": "string"}.get(kind, "long")
    return {"type": base, "logicalType": kind}


def _schema(draw: st.DrawFn, names: _Names, depth: int, in_union: bool = False) -> Any:
    choices = ["primitive", "logical", "enum", "fixed"]
    if depth > 0:
        choices += ["record", "array", "map"] + ([] if in_union else ["union"]) * 2
    kind = draw(st.sampled_from(choices))
    if kind == "primitive":
        return draw(st.sampled_from(PRIMITIVES))
    if kind == "logical":
        return _logical(draw, names)
    if kind == "enum":
        symbols = draw(st.lists(st.sampled_from("ABCDEFG"), min_size=1, max_size=5,
                                unique=True))  # fmt: skip
        return {"type": "enum", "name": names.next(), "symbols": symbols}
    if kind == "fixed":
        return {"type": "fixed", "name": names.next(), "size": draw(st.integers(0, 5))}
    if kind == "record":
        fields = draw(st.lists(NAME, max_size=5, unique=True))
        return {"type": "record", "name": names.next(),
                "fields": [{"name": f, "type": _schema(draw, names, depth - 1)}
                           for f in fields]}  # fmt: skip
    if kind == "array":
        return {"type": "array", "items": _schema(draw, names, depth - 1)}
    if kind == "map":
        return {"type": "map", "values": _schema(draw, names, depth - 1)}
    branches: list[Any] = []
    seen: set[str] = set()
    for _ in range(draw(st.integers(1, 4))):
        branch = _schema(draw, names, depth - 1, in_union=True)
        tag = branch if isinstance(branch, str) else branch["type"]
        tag = branch["name"] if tag in ("record", "enum", "fixed") else tag
        if isinstance(branch, dict) and "logicalType" in branch:
            tag = branch["logicalType"]  # the writer would try one's value in the other
        if tag not in seen:
            seen.add(tag)
            branches.append(branch)
    where = draw(st.sampled_from(["first", "last", "none"]))
    if "null" not in seen and where != "none":
        branches.insert(0 if where == "first" else len(branches), "null")
    return branches


def _value(draw: st.DrawFn, schema: Any) -> Any:
    if isinstance(schema, list):
        return _value(draw, draw(st.sampled_from(schema)))
    if isinstance(schema, str):
        return {
            "null": lambda: None,
            "boolean": lambda: draw(st.booleans()),
            "int": lambda: draw(st.integers(-(2**31), 2**31 - 1)),
            "long": lambda: draw(st.integers(-(2**63), 2**63 - 1)),
            "float": lambda: draw(st.floats(width=32, allow_nan=False)),
            "double": lambda: draw(st.floats(allow_nan=False)),
            "bytes": lambda: draw(st.binary(max_size=20)),
            "string": lambda: draw(st.text(max_size=20)),
        }[schema]()
    logical = schema.get("logicalType")
    if logical == "decimal":
        digits = draw(st.integers(0, 10 ** schema["precision"] - 1))
        return Decimal(draw(st.sampled_from([1, -1])) * digits).scaleb(-schema["scale"])
    if logical == "date":
        return date(2000, 1, 1) + timedelta(days=draw(st.integers(-500_000, 2_000_000)))
    if logical in ("time-millis", "time-micros"):
        us = draw(st.integers(0, 86_400 * 10**6 - 1))
        us -= us % 1000 if logical == "time-millis" else 0
        return (datetime(2000, 1, 1) + timedelta(microseconds=us)).time()
    if logical in ("timestamp-millis", "timestamp-micros"):
        us = draw(st.integers(-(10**15), 10**17))
        us -= us % 1000 if logical == "timestamp-millis" else 0
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    if logical == "uuid":
        return uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))
    kind = schema["type"]
    if kind == "enum":
        return draw(st.sampled_from(schema["symbols"]))
    if kind == "fixed":
        return draw(st.binary(min_size=schema["size"], max_size=schema["size"]))
    if kind == "record":
        return {f["name"]: _value(draw, f["type"]) for f in schema["fields"]}
    if kind == "array":
        return [_value(draw, schema["items"]) for _ in range(draw(st.integers(0, 3)))]
    return {draw(st.text(max_size=5)): _value(draw, schema["values"])
            for _ in range(draw(st.integers(0, 3)))}  # fmt: skip


@st.composite
def schema_and_value(draw: st.DrawFn) -> tuple[Any, Any]:
    schema = _schema(draw, _Names(), draw(st.integers(0, 4)))
    return schema, _value(draw, schema)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (True is not 1, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()
    return bool(a == b)


def fastavro_read(data: bytes, parsed: Any) -> tuple[Any, int]:
    fo = io.BytesIO(data)
    return schemaless_reader(fo, parsed, None), fo.tell()


def encode(parsed: Any, value: Any) -> bytes:
    out = io.BytesIO()
    try:
        schemaless_writer(out, parsed, value)
    except (ValueError, TypeError):  # fastavro tried the value in a union branch it misfits
        reject()
    return out.getvalue()


def writer_schema(schema: Any) -> WriterSchema:
    ws = SchemaRegistry("http://registry.invalid").add(1, json.dumps(schema))
    assert ws.reader is not None, "the generated reader handles this schema"
    return ws


def framed(data: bytes) -> bytes:
    return b"\x00\x00\x00\x00\x01" + data


# ------------------------------------------------------------------ same values as fastavro


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema_and_value())
def test_reads_what_fastavro_reads(case: tuple[Any, Any]) -> None:
    schema, value = case
    parsed = parse_schema(schema)
    reader = compile_reader(parsed)
    assert reader is not None
    data = encode(parsed, value)
    try:
        expected, end = fastavro_read(data, parsed)
    except ValueError:  # the writer took a string for a uuid branch: both must refuse it
        with pytest.raises(ValueError):
            reader(data, 0)
        return
    got, got_end = reader(data, 0)
    assert same(got, expected), (schema, got, expected)
    assert got_end == end == len(data)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema_and_value(), st.data())
def test_truncated_or_corrupted_bytes_are_bad_avro(case: tuple[Any, Any], data: Any) -> None:
    """Cut or damaged input: a ``bad_avro`` DecodeError, or exactly fastavro's value (a
    damaged byte can still spell a valid datum); never another exception."""
    schema, value = case
    ws = writer_schema(schema)
    raw = encode(ws.parsed, value)
    try:
        fastavro_read(raw, ws.parsed)
    except ValueError:
        return  # not a datum either reader accepts (see above)
    cut = data.draw(st.integers(0, max(0, len(raw) - 1)))
    damaged = bytearray(raw)
    if damaged:
        damaged[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    for bad in (raw[:cut], bytes(damaged)):
        if bad == raw:
            continue
        try:
            got = _read_avro(framed(bad), ws, "value")
        except DecodeError as exc:
            assert exc.code == "bad_avro", exc
            continue
        expected, end = fastavro_read(bad, ws.parsed)
        assert end == len(bad) and same(got, expected)


# ------------------------------------------------------------------ the same Records


def _mongo_messages(n: int) -> list[tuple[bytes, bytes]]:
    ev = MongoEvents("shop", "products", prefix="dbserver1")
    out = []
    for i in range(n):
        doc = {"_id": Oid(f"{i:024x}"), "n": i, "x": i / 3, "tags": ["a", str(i)],
               "at": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=i)}  # fmt: skip
        out.append(ev.insert(doc) if i % 3 == 0 else ev.update(doc["_id"], {"n": i})
                   if i % 3 == 1 else ev.delete(doc["_id"]))  # fmt: skip
    return out


def _decoders(monkeypatch: pytest.MonkeyPatch) -> tuple[MessageDecoder, MessageDecoder]:
    schemas = [json.loads((paths.SCHEMAS / name).read_text()) for name in (
        "debezium-mongodb/key.avsc", "debezium-mongodb/envelope.avsc",
        "debezium-postgresql/key.avsc", "debezium-postgresql/envelope.avsc")]  # fmt: skip
    made = []
    for switch in ("", "fastavro"):
        monkeypatch.setenv("WARP_AVRO_READER", switch)
        registry = SchemaRegistry("http://registry.invalid")
        for sid, schema in enumerate(schemas, start=1):
            ws = registry.add(sid, schema)
            assert (ws.reader is None) == (switch == "fastavro")
        made.append(MessageDecoder(DecoderOptions(), "avro", "avro", registry))
    return made[0], made[1]


def test_debezium_events_decode_to_the_same_records(monkeypatch: pytest.MonkeyPatch) -> None:
    generated, fastavro = _decoders(monkeypatch)
    key_schema = parse_schema(json.loads((paths.SCHEMAS / "debezium-mongodb/key.avsc")
                                         .read_text()))  # fmt: skip
    env_schema = parse_schema(json.loads((paths.SCHEMAS / "debezium-mongodb/envelope.avsc")
                                         .read_text()))  # fmt: skip
    pg_env = parse_schema(json.loads((paths.SCHEMAS / "debezium-postgresql/envelope.avsc")
                                     .read_text()))  # fmt: skip
    messages = [(b"\x00\x00\x00\x00\x01" + encode(key_schema, json.loads(k)),
                 b"\x00\x00\x00\x00\x02" + encode(env_schema, json.loads(v)))
                for k, v in _mongo_messages(30)]  # fmt: skip
    row = {"id": 7, "order_ref": str(uuid.UUID(int=7)), "amount": Decimal("12.34"),
           "placed_at": 1_700_000_000_000_000, "updated_at": "2024-03-01T12:00:00Z",
           "ship_date": 19_000, "attributes": '{"a": 1}', "weight": 0.5, "note": "n"}  # fmt: skip
    source = {"version": "3.0.0.Final", "connector": "postgresql", "name": "dbserver1",
              "ts_ms": 1_700_000_000_000, "db": "shop", "schema": "inventory",
              "table": "orders", "lsn": 10, "txId": 3}  # fmt: skip
    for op, before, after in (("c", None, row), ("u", row, row), ("d", row, None)):
        value = {"before": before, "after": after, "source": source, "op": op, "ts_ms": 1}
        messages.append((b"\x00\x00\x00\x00\x03" + encode(parse_schema(json.loads(
            (paths.SCHEMAS / "debezium-postgresql/key.avsc").read_text())), {"id": 7}),
            b"\x00\x00\x00\x00\x04" + encode(pg_env, value)))  # fmt: skip
    for key, value in messages:
        a = generated.decode_cached(key, value, "dbserver1.shop.products")
        b = fastavro.decode_cached(key, value, "dbserver1.shop.products")
        assert a is not None and a == b


# ------------------------------------------------------------------ hostile input


def _bad_avro(schema: Any, data: bytes) -> str:
    ws = writer_schema(schema)
    started = time.process_time()
    with pytest.raises(DecodeError) as info:
        _read_avro(framed(data), ws, "value")
    assert time.process_time() - started < 1.0, "hostile input must fail fast"
    assert info.value.code == "bad_avro"
    return str(info.value)


def test_hostile_varints_lengths_and_counts_are_bad_avro() -> None:
    _bad_avro("long", b"\xff" * 11 + b"\x01")  # longer than 10 bytes
    _bad_avro("long", b"\xff" * 9 + b"\x7f")  # past 64 bits
    _bad_avro("string", b"\x01abc")  # length -1
    _bad_avro("bytes", b"\x7eab")  # length 63, 2 bytes there
    _bad_avro({"type": "fixed", "name": "F", "size": 8}, b"abc")
    many = b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f"  # block of 2**62 - 1 items
    _bad_avro({"type": "array", "items": "long"}, many + b"\x02")
    _bad_avro({"type": "array", "items": "null"}, many)  # zero-width items: capped
    _bad_avro({"type": "map", "values": "null"}, many)
    _bad_avro({"type": "enum", "name": "E", "symbols": ["A"]}, b"\x02")  # index 1
    _bad_avro({"type": "enum", "name": "E", "symbols": ["A", "B"]}, b"\x01")  # index -1
    _bad_avro(["null", "long"], b"\x04\x02")  # branch 2 of 2
    _bad_avro({"type": "record", "name": "R", "fields": [{"name": "a", "type": "double"}]},
              b"\x00\x00\x00")  # fmt: skip
    _bad_avro("string", b"\x04\xff\xfe")  # not UTF-8
    assert "bytes left after the Avro datum" in _bad_avro("long", b"\x02\x02")


def test_non_canonical_bytes_read_as_fastavro_reads_them() -> None:
    """Bytes no Avro writer emits but fastavro accepts: the same value, not an error."""
    schema = {"type": "record", "name": "R", "fields": [
        {"name": "b", "type": "boolean"}, {"name": "n", "type": "long"},
        {"name": "a", "type": {"type": "array", "items": "int"}}]}  # fmt: skip
    ws = writer_schema(schema)
    # boolean 0x02; long 1 as a padded 3-byte varint; an array block with a byte size
    data = b"\x02" + b"\x82\x80\x00" + b"\x03\x04\x02\x04" + b"\x00"
    expected, end = fastavro_read(data, ws.parsed)
    assert end == len(data) and expected == {"b": True, "n": 1, "a": [1, 2]}
    got = _read_avro(framed(data), ws, "value")
    assert same(got, expected)


def test_names_from_the_registry_never_become_code() -> None:
    name = "x'}; import os; os._exit(3) #\"\\\n"
    schema = {
        "type": "record",
        "name": "R",
        "namespace": "a.b",
        "fields": [{"name": name, "type": "long"}, {"name": "ok", "type": "string"}],
    }
    ws = writer_schema(schema)
    data = encode(ws.parsed, {name: 5, "ok": "y"})
    assert _read_avro(framed(data), ws, "value") == {name: 5, "ok": "y"}


# ------------------------------------------------------------------ fastavro fallback


def test_recursive_schemas_fall_back_to_fastavro() -> None:
    schema = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "v", "type": "long"}, {"name": "next", "type": ["null", "Node"]}],
    }
    ws = SchemaRegistry("http://registry.invalid").add(1, schema)
    assert ws.reader is None
    value = {"v": 1, "next": {"v": 2, "next": None}}
    assert _read_avro(framed(encode(ws.parsed, value)), ws, "value") == value


def test_switch_turns_the_generated_reader_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARP_AVRO_READER", "fastavro")
    assert not avro_reader.enabled()
    assert SchemaRegistry("http://registry.invalid").add(1, '"long"').reader is None
    monkeypatch.delenv("WARP_AVRO_READER")
    assert SchemaRegistry("http://registry.invalid").add(1, '"long"').reader is not None


def test_deep_schemas_still_get_a_reader() -> None:
    """Nesting past what one Python function may hold moves into functions of its own."""
    schema: Any = "long"
    value: Any = 7
    for i in range(20):  # 60 schema levels: past one function, inside _MAX_DEPTH
        schema = {"type": "record", "name": f"R{i}", "fields": [
            {"name": "a", "type": ["null", {"type": "array", "items": schema}]}]}  # fmt: skip
        value = {"a": [value, value] if i % 5 == 0 else [value]}
    ws = writer_schema(schema)
    data = encode(ws.parsed, value)
    assert _read_avro(framed(data), ws, "value") == fastavro_read(data, ws.parsed)[0] == value


def test_schemas_too_deep_to_generate_fall_back_to_fastavro() -> None:
    schema: Any = "long"
    for i in range(150):
        schema = {"type": "record", "name": f"D{i}", "fields": [{"name": "a", "type": schema}]}
    ws = SchemaRegistry("http://registry.invalid").add(1, json.dumps(schema))
    assert ws.reader is None
    value: Any = 3
    for _ in range(150):
        value = {"a": value}
    assert _read_avro(framed(encode(ws.parsed, value)), ws, "value") == value


def test_named_types_used_again_by_name() -> None:
    money = {"type": "fixed", "name": "Money", "namespace": "m", "size": 6,
             "logicalType": "decimal", "precision": 12, "scale": 2}  # fmt: skip
    color = {"type": "enum", "name": "Color", "namespace": "m", "symbols": ["RED", "BLUE"]}
    point = {"type": "record", "name": "Point", "namespace": "m",
             "fields": [{"name": "x", "type": "double"}, {"name": "c", "type": color}]}  # fmt: skip
    schema = {"type": "record", "name": "Outer", "namespace": "m", "fields": [
        {"name": "price", "type": money}, {"name": "cost", "type": ["null", "m.Money"]},
        {"name": "a", "type": point}, {"name": "b", "type": ["null", "Point"]},
        {"name": "tint", "type": "Color"},
        {"name": "path", "type": {"type": "array", "items": "m.Point"}}]}  # fmt: skip
    ws = writer_schema(schema)
    value = {"price": Decimal("12.34"), "cost": Decimal("-0.05"),
             "a": {"x": 1.5, "c": "BLUE"}, "b": {"x": -2.0, "c": "RED"}, "tint": "RED",
             "path": [{"x": 0.0, "c": "RED"}, {"x": 3.25, "c": "BLUE"}]}  # fmt: skip
    data = encode(ws.parsed, value)
    expected, _ = fastavro_read(data, ws.parsed)
    got = _read_avro(framed(data), ws, "value")
    assert same(got, expected) and got == value
