"""Helpers shared by the decoder tests: fixture paths, key builders, decode shortcuts."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from sink.decode.envelope import DecoderOptions, decode_json
from sink.errors import DecodeError
from sink.records import BitString, JsonText, Micros, Record, TemporalText
from tests import paths

FIXTURES = paths.FIXTURES
MONGO = FIXTURES / "debezium-mongodb"
REL = FIXTURES / "debezium-relational"
OID = "596e275826f08b2730779e1f"
LONG_1004 = '{"$numberLong":"1004"}'
TOPIC = "dbserver1.inventory.customers"


def fx(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def mkey(id_text: str) -> bytes:
    """A MongoDB Debezium key: {"id": "<extended JSON of _id>"}."""
    return dumps({"id": id_text})


def decode(value: bytes | None, key: bytes | None = None, topic: str = TOPIC, **opts: Any) -> Any:
    return decode_json(key, value, topic, DecoderOptions(**opts))


def record(value: bytes | None, key: bytes | None = None, **kw: Any) -> Record:
    rec = decode(value, key, **kw)
    assert isinstance(rec, Record), rec
    return rec


def error(value: bytes | None, key: bytes | None = None, **kw: Any) -> str:
    with pytest.raises(DecodeError) as err:
        decode(value, key, **kw)
    return err.value.code


def ms(n: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=n)


def mongo_event(op: str, **fields: Any) -> bytes:
    payload: dict[str, Any] = {
        "source": {
            "version": "2.7.0.Final",
            "connector": "mongodb",
            "name": "dbserver1",
            "ts_ms": 1700000000000,
            "snapshot": "false",
            "db": "shop",
            "collection": "users",
            "ord": 3,
            "lsid": None,
            "txnNumber": None,
            "wallTime": 1700000000123,
        },
        "op": op,
        "ts_ms": 1700000000456,
        "transaction": None,
    }
    payload.update(fields)
    return dumps(payload)


KEY = mkey(f'{{"$oid": "{OID}"}}')
LEGACY_KEY = mkey(f'{{ "$oid" : "{OID}"}}')


def envelope_schema(fields: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    row = {
        "type": "struct",
        "name": "srv.public.t.Value",
        "optional": True,
        "fields": [{"field": name, "optional": True, **spec} for name, spec in fields],
    }
    return {
        "type": "struct",
        "name": "srv.public.t.Envelope",
        "optional": False,
        "fields": [
            {**row, "field": "before"},
            {**row, "field": "after"},
            {
                "type": "struct",
                "field": "source",
                "name": "io.debezium.connector.postgresql.Source",
                "fields": [],
            },
            {"type": "string", "field": "op"},
        ],
    }


def pg_payload(after: dict[str, Any], op: str = "c") -> dict[str, Any]:
    return {
        "before": None,
        "after": after,
        "op": op,
        "ts_ms": 1700000000999,
        "source": {
            "connector": "postgresql",
            "db": "db",
            "schema": "public",
            "table": "t",
            "ts_ms": 1700000000000,
            "lsn": 42,
        },
    }


def b64_unscaled(n: int) -> str:
    return base64.b64encode(n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True)).decode()


LOGICAL_FIELDS: list[tuple[str, dict[str, Any], Any, Any]] = [
    ("d", {"type": "int32", "name": "io.debezium.time.Date"}, 19000, date(2022, 1, 8)),
    ("d2", {"type": "int32", "name": "org.apache.kafka.connect.data.Date"}, -1, date(1969, 12, 31)),
    ("t", {"type": "int32", "name": "io.debezium.time.Time"}, 3723004, time(1, 2, 3, 4000)),
    ("t2", {"type": "int32", "name": "org.apache.kafka.connect.data.Time"}, 1000, time(0, 0, 1)),
    ("mt", {"type": "int64", "name": "io.debezium.time.MicroTime"}, 3723000004, time(1, 2, 3, 4)),
    ("nt", {"type": "int64", "name": "io.debezium.time.NanoTime"}, 3723000004999, time(1, 2, 3, 4)),
    (
        "neg",
        {"type": "int64", "name": "io.debezium.time.MicroTime"},
        -3600000000,
        Micros(hours=-1),  # µs as the source counted them (interval -01:00:00)
    ),
    (
        "ts",
        {"type": "int64", "name": "io.debezium.time.Timestamp"},
        1529507596945,
        datetime(2018, 6, 20, 15, 13, 16, 945000),
    ),
    (
        "ts2",
        {"type": "int64", "name": "org.apache.kafka.connect.data.Timestamp"},
        0,
        datetime(1970, 1, 1),
    ),
    (
        "mts",
        {"type": "int64", "name": "io.debezium.time.MicroTimestamp"},
        1529507596945104,
        datetime(2018, 6, 20, 15, 13, 16, 945104),
    ),
    (
        "nts",
        {"type": "int64", "name": "io.debezium.time.NanoTimestamp"},
        1529507596945104999,
        datetime(2018, 6, 20, 15, 13, 16, 945104),
    ),
    (
        "inf",
        {"type": "int64", "name": "io.debezium.time.MicroTimestamp"},
        9223372036825200000,
        TemporalText("timestamp without time zone", "infinity"),
    ),
    (
        "ninf",
        {"type": "int64", "name": "io.debezium.time.MicroTimestamp"},
        -9223372036832400000,
        TemporalText("timestamp without time zone", "-infinity"),
    ),
    (
        "zts",
        {"type": "string", "name": "io.debezium.time.ZonedTimestamp"},
        "2011-01-11T16:40:30.123456789Z",
        datetime(2011, 1, 11, 16, 40, 30, 123456, tzinfo=UTC),
    ),
    (
        "zt",
        {"type": "string", "name": "io.debezium.time.ZonedTime"},
        "10:15:30+01:00",
        time(10, 15, 30, tzinfo=timezone(timedelta(hours=1))),
    ),
    (
        "dec",
        {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "2"},
        },
        "AeJA",
        Decimal("1234.56"),
    ),
    (
        "decneg",
        {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "3"},
        },
        b64_unscaled(-12345678901234567890123456789012345),
        Decimal("-12345678901234567890123456789012.345"),
    ),
    (
        "decnum",
        {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "2"},
        },
        1234.56,
        Decimal("1234.56"),
    ),
    (
        "vsd",
        {
            "type": "struct",
            "name": "io.debezium.data.VariableScaleDecimal",
            "fields": [{"field": "scale", "type": "int32"}, {"field": "value", "type": "bytes"}],
        },
        {"scale": 2, "value": "AeJA"},
        Decimal("1234.56"),
    ),
    (
        "uuid",
        {"type": "string", "name": "io.debezium.data.Uuid"},
        "140ed813-35e0-4174-97f4-ec66ce5947db",
        uuid.UUID("140ed813-35e0-4174-97f4-ec66ce5947db"),
    ),
    (
        "json",
        {"type": "string", "name": "io.debezium.data.Json"},
        '{"a": [1, 2.5, null]}',
        JsonText('{"a": [1, 2.5, null]}'),  # the exact text, for jsonb
    ),
    (
        "enum",
        {"type": "string", "name": "io.debezium.data.Enum", "parameters": {"allowed": "a,b"}},
        "b",
        "b",
    ),
    (
        "set",
        {"type": "string", "name": "io.debezium.data.EnumSet", "parameters": {"allowed": "a,b"}},
        "a,b",
        "a,b",
    ),
    (
        "bits",
        {"type": "bytes", "name": "io.debezium.data.Bits", "parameters": {"length": "8"}},
        "Dw==",
        BitString("00001111"),  # bit(8) B'00001111': 0x0f, little-endian, padded to 8
    ),
    ("xml", {"type": "string", "name": "io.debezium.data.Xml"}, "<a/>", "<a/>"),
    ("raw", {"type": "bytes"}, "a2Fma2E=", b"kafka"),
    (
        "dur",
        {"type": "int64", "name": "io.debezium.time.MicroDuration"},
        90000000,
        Micros(seconds=90),
    ),
    ("f", {"type": "float64"}, 1.5, 1.5),
    ("finf", {"type": "float64"}, "Infinity", float("inf")),
    ("big", {"type": "int64"}, 2**63 - 1, 2**63 - 1),
    (
        "arr",
        {"type": "array", "items": {"type": "int32", "name": "io.debezium.time.Date"}},
        [0, 1],
        [date(1970, 1, 1), date(1970, 1, 2)],
    ),
    (
        "geo",
        {
            "type": "struct",
            "name": "io.debezium.data.geometry.Point",
            "fields": [
                {"field": "wkb", "type": "bytes"},
                {"field": "srid", "type": "int32", "optional": True},
            ],
        },
        {"wkb": "AQ==", "srid": None},
        {"wkb": b"\x01", "srid": None},
    ),
    ("none", {"type": "string"}, None, None),
]
