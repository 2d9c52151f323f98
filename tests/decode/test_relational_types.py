"""Relational logical types through Connect JSON schemas and Avro schemas: exact values,
TOAST placeholders, errors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sink.decode.envelope import decode_envelope
from sink.records import Kind, Patch, Record
from tests.decode.support import (
    LOGICAL_FIELDS,
    TOPIC,
    dumps,
    envelope_schema,
    error,
    ms,
    pg_payload,
    record,
)

# ------------------------------------------------------------------ relational logical types


def test_relational_logical_types_with_connect_json_schema() -> None:
    schema = envelope_schema([(name, spec) for name, spec, _, _ in LOGICAL_FIELDS])
    payload = pg_payload({name: raw for name, _, raw, _ in LOGICAL_FIELDS})
    rec = record(dumps({"schema": schema, "payload": payload}), dumps({"id": 1}))
    assert rec.values is not None
    for name, _, _, expected in LOGICAL_FIELDS:
        assert rec.values[name] == expected, name
        assert type(rec.values[name]) is type(expected), name
    assert rec.values["ts"].tzinfo is None and rec.values["zts"].tzinfo is not None
    assert rec.position == (42,) and rec.source_ts == ms(1700000000000)


def _avro(spec: dict[str, Any]) -> Any:
    """The Avro schema a registry converter derives from a Connect field schema."""
    kinds = {
        "int32": "int",
        "int64": "long",
        "float64": "double",
        "string": "string",
        "bytes": "bytes",
    }
    t = spec["type"]
    if t == "struct":
        return [
            "null",
            {
                "type": "record",
                "name": spec["name"].rsplit(".", 1)[-1],
                "namespace": spec["name"].rsplit(".", 1)[0],
                "fields": [{"name": f["field"], "type": _avro(f)} for f in spec["fields"]],
                "connect.name": spec["name"],
            },
        ]
    if t == "array":
        return ["null", {"type": "array", "items": _avro(spec["items"])}]
    node: dict[str, Any] = {"type": kinds[t]}
    if "name" in spec:
        node["connect.name"] = spec["name"]
    if "parameters" in spec:
        node["connect.parameters"] = spec["parameters"]
    return ["null", node]


def test_relational_logical_types_with_avro_schema_and_typed_values() -> None:
    """decode_envelope with an Avro schema (connect.name) and Avro-typed payload values."""
    value_record = {
        "type": "record",
        "name": "Value",
        "namespace": "srv.public.t",
        "connect.name": "srv.public.t.Value",
        "fields": [{"name": name, "type": _avro(spec)} for name, spec, _, _ in LOGICAL_FIELDS],
    }
    schema = {
        "type": "record",
        "name": "Envelope",
        "namespace": "srv.public.t",
        "connect.name": "srv.public.t.Envelope",
        "fields": [
            {"name": "before", "type": ["null", value_record]},
            {"name": "after", "type": ["null", "srv.public.t.Value"]},
            {"name": "op", "type": "string"},
        ],
    }
    after: dict[str, Any] = {}
    for name, spec, raw, _ in LOGICAL_FIELDS:  # an Avro reader gives bytes, not base64 text
        binary = spec["type"] == "bytes" and isinstance(raw, str)
        after[name] = base64.b64decode(raw) if binary else raw
    after["vsd"] = {"scale": 2, "value": base64.b64decode("AeJA")}
    after["geo"] = {"wkb": b"\x01", "srid": None}
    after["ts2"] = datetime(1970, 1, 1, tzinfo=UTC)  # already a datetime (Avro logical type)
    rec = decode_envelope({"id": 1}, pg_payload(after), schema, TOPIC, key_schema=None)
    assert isinstance(rec, Record) and rec.values is not None
    for name, _, _, expected in LOGICAL_FIELDS:
        assert rec.values[name] == expected, name


def test_numeric_decimal_beyond_double_precision_is_exact() -> None:
    schema = envelope_schema(
        [
            (
                "n",
                {
                    "type": "bytes",
                    "name": "org.apache.kafka.connect.data.Decimal",
                    "parameters": {"scale": "10"},
                },
            ),
            ("f", {"type": "float64"}),
            ("i", {"type": "int64"}),
        ]
    )
    text = dumps({"schema": schema, "payload": pg_payload({"n": 0, "f": 0.1, "i": 7})})
    text = text.replace(b'"n": 0', b'"n": 12345678901234567890.0123456789')
    rec = record(text, dumps({"id": 1}))
    assert rec.values == {"n": Decimal("12345678901234567890.0123456789"), "f": 0.1, "i": 7}
    assert type(rec.values["f"]) is float


def test_toast_placeholder_is_never_written() -> None:
    schema = envelope_schema(
        [
            ("id", {"type": "int32"}),
            ("body", {"type": "string"}),
            ("blob", {"type": "bytes"}),
            ("doc", {"type": "string", "name": "io.debezium.data.Json"}),
            ("tags", {"type": "array", "items": {"type": "string"}}),
        ]
    )
    placeholder = "__debezium_unavailable_value"
    after = {
        "id": 1,
        "body": placeholder,
        "blob": base64.b64encode(placeholder.encode()).decode(),
        "doc": placeholder,
        "tags": [placeholder],
    }
    rec = record(dumps({"schema": schema, "payload": pg_payload(after, op="u")}), dumps({"id": 1}))
    assert (rec.kind, rec.op, rec.values) == (Kind.PATCH, "u", None)
    assert rec.patch == Patch(set={("id",): 1})
    full = record(dumps(pg_payload({"id": 1, "body": "x"}, op="u")), dumps({"id": 1}))
    assert full.kind is Kind.UPSERT


def test_relational_errors() -> None:
    schema = envelope_schema([("d", {"type": "int32", "name": "io.debezium.time.Date"})])
    bad = [({"d": "x"}, "bad_value"), ({"d": 10**12}, "bad_value")]
    for after, code in bad:
        assert (
            error(dumps({"schema": schema, "payload": pg_payload(after)}), dumps({"id": 1})) == code
        )
    assert error(dumps(pg_payload({"id": 1})), None, keyless="dead_letter") == "missing_key"
    assert error(dumps(pg_payload(None)), dumps({"id": 1})) == "missing_after"  # type: ignore[arg-type]
    assert error(dumps(pg_payload({"id": 1})), dumps([1])) == "bad_key"
    assert error(dumps(pg_payload({"id": 1})), b"{nope") == "bad_key"
    deep = envelope_schema([("j", {"type": "string", "name": "io.debezium.data.Json"})])
    assert (
        error(
            dumps({"schema": deep, "payload": pg_payload({"j": "[" * 250 + "]" * 250})}),
            dumps({"id": 1}),
        )
        == "too_deep"
    )
    assert (
        error(dumps(pg_payload({"id": 123456789012345678901234567890})), dumps({"id": 1}))
        == "number_out_of_range"
    )


def test_a_refused_change_names_the_table_its_envelope_names() -> None:
    import pytest

    from sink.errors import DecodeError
    from tests.decode.support import decode

    schema = envelope_schema([("d", {"type": "int32", "name": "io.debezium.time.Date"})])
    with pytest.raises(DecodeError) as err:
        decode(dumps({"schema": schema, "payload": pg_payload({"d": "x"})}), dumps({"id": 1}))
    assert (err.value.code, err.value.schema, err.value.table) == ("bad_value", "public", "t")
    with pytest.raises(DecodeError) as err:  # no source block: nothing to name
        decode(dumps({"op": "c", "after": {"a": 1}, "source": None}), dumps({"id": 1}))
    assert (err.value.schema, err.value.table) == (None, None)
