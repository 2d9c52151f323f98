"""The PostgreSQL type a field's Connect or Avro schema says (sink.decode.column_types)."""

from __future__ import annotations

from typing import Any

import pytest

from sink.decode.column_types import pg_type
from sink.decode.schema import schema_node


def _type(spec: dict[str, Any]) -> str | None:
    node = schema_node(spec)
    assert node is not None
    return pg_type(node)


@pytest.mark.parametrize(("spec", "want"), [
    ({"type": "int8"}, "smallint"),
    ({"type": "int16"}, "smallint"),
    ({"type": "int32"}, "integer"),
    ({"type": "int64"}, "bigint"),
    ({"type": "float"}, "real"),
    ({"type": "float32"}, "real"),
    ({"type": "double"}, "double precision"),
    ({"type": "boolean"}, "boolean"),
    ({"type": "bytes"}, "bytea"),
    ({"type": "string"}, None),  # text either way: the value decides (varchar option)
    ({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
      "parameters": {"scale": "2", "connect.decimal.precision": "10"}}, "numeric(10,2)"),
    ({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
      "parameters": {"scale": "2"}}, "numeric"),  # money: no precision
    ({"type": "struct", "name": "io.debezium.data.VariableScaleDecimal"}, "numeric"),
    ({"type": "int32", "name": "io.debezium.time.Date"}, "date"),
    ({"type": "int32", "name": "io.debezium.time.Time"}, "time(3) without time zone"),
    ({"type": "int64", "name": "io.debezium.time.MicroTime"}, "time without time zone"),
    ({"type": "int64", "name": "io.debezium.time.Timestamp"}, "timestamp(3) without time zone"),
    ({"type": "int64", "name": "io.debezium.time.MicroTimestamp"},
     "timestamp without time zone"),
    ({"type": "string", "name": "io.debezium.time.ZonedTimestamp"}, "timestamp with time zone"),
    ({"type": "string", "name": "io.debezium.time.ZonedTime"}, "time with time zone"),
    ({"type": "int64", "name": "io.debezium.time.MicroDuration"}, "interval"),
    ({"type": "string", "name": "io.debezium.time.Interval"}, "interval"),
    ({"type": "string", "name": "io.debezium.data.Uuid"}, "uuid"),
    ({"type": "string", "name": "io.debezium.data.Json"}, "jsonb"),
    ({"type": "string", "name": "io.debezium.data.Enum"}, None),
    ({"type": "bytes", "name": "io.debezium.data.Bits", "parameters": {"length": "12"}}, None),
    ({"type": "array", "items": {"type": "int32"}}, "integer[]"),
    ({"type": "array", "items": {"type": "string"}}, "text[]"),
    ({"type": "array", "items": {"type": "int32", "name": "io.debezium.time.Date"}}, None),
    ({"type": "array", "items": {"type": "bytes"}}, None),
    # Avro, as a registry derived it from the Connect schema
    ({"type": "int", "connect.type": "int16"}, "smallint"),
    ({"type": "long"}, "bigint"),
    ({"type": "long", "logicalType": "timestamp-millis"}, "timestamp(3) without time zone"),
    ({"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2,
      "connect.parameters": {"scale": "2", "connect.decimal.precision": "10"}},
     "numeric(10,2)"),
])  # fmt: skip
def test_schema_types(spec: dict[str, Any], want: str | None) -> None:
    assert _type(spec) == want
