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
    ({"type": "string", "name": "io.debezium.data.Enum"}, "text"),
    ({"type": "bytes", "name": "io.debezium.data.Bits", "parameters": {"length": "12"}},
     "bit varying(12)"),
    ({"type": "bytes", "name": "io.debezium.data.Bits", "parameters": {"length": "0"}}, None),
    ({"type": "struct", "name": "io.debezium.data.geometry.Point"}, "point"),
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


def _src(spec: dict[str, Any], src: str, length: int = 2147483647, scale: int = 0
         ) -> dict[str, Any]:
    """``spec`` with the parameters Debezium's column.propagate.source.type adds."""
    params = {**spec.get("parameters", {}), "__debezium.source.column.type": src,
              "__debezium.source.column.length": str(length),
              "__debezium.source.column.scale": str(scale),
              "__debezium.source.column.name": "c"}
    return {**spec, "parameters": params}


STRING = {"type": "string"}
BITS = {"type": "bytes", "name": "io.debezium.data.Bits", "parameters": {"length": "12"}}


# As the real PostgreSQL connector 3.6.1 sends them (tests/e2e/debezium, set-up "propagate").
@pytest.mark.parametrize(("spec", "want"), [
    (_src(STRING, "VARCHAR", 20), "character varying(20)"),
    (_src(STRING, "VARCHAR"), "character varying"),  # varchar without a length
    (_src(STRING, "BPCHAR", 5), "character(5)"),
    (_src(STRING, "INET"), "inet"),
    (_src(STRING, "CIDR"), "cidr"),
    (_src(STRING, "MACADDR"), "macaddr"),
    (_src(STRING, "MACADDR8"), "macaddr8"),
    (_src(STRING, "INT4RANGE"), "int4range"),
    (_src(STRING, "TSTZRANGE"), "tstzrange"),
    (_src(STRING, "DATERANGE"), "daterange"),
    (_src(STRING, "CITEXT"), "citext"),
    (_src({"type": "string", "name": "io.debezium.data.Xml"}, "XML"), "xml"),
    ({"type": "string", "name": "io.debezium.data.Xml"}, None),  # text: as the value says
    (_src({"type": "string", "name": "io.debezium.data.Json"}, "JSON"), "json"),
    (_src({"type": "string", "name": "io.debezium.data.Json"}, "JSONB"), "jsonb"),
    (_src({"type": "string", "name": "io.debezium.data.Json"}, "HSTORE"), "hstore"),
    (_src({"type": "map", "keys": STRING, "values": STRING}, "HSTORE"), "hstore"),
    (_src({"type": "string", "name": "io.debezium.data.Enum",
           "parameters": {"allowed": "sad,ok"}}, '"APP"."MOOD"'), "text"),
    (_src({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
           "parameters": {"scale": "2"}}, "MONEY"), "money"),
    (_src(STRING, "MONEY"), "money"),  # decimal.handling.mode=string
    (_src(STRING, "NUMERIC", 10, 2), "numeric(10,2)"),  # decimal.handling.mode=string
    (_src(STRING, "NUMERIC", 0), "numeric"),
    (_src({"type": "double"}, "NUMERIC", 12, 3), "numeric(12,3)"),  # handling mode double
    (_src({"type": "struct", "name": "io.debezium.data.VariableScaleDecimal"}, "NUMERIC", 0),
     "numeric"),
    (_src({"type": "boolean"}, "BIT", 1), "bit(1)"),
    (_src(BITS, "BIT", 12), "bit(12)"),
    (_src({**BITS, "parameters": {"length": "64"}}, "VARBIT", 64), "bit varying(64)"),
    (_src({"type": "struct", "name": "io.debezium.data.geometry.Point"}, "POINT"), "point"),
    (_src({"type": "int32", "name": "io.debezium.time.Time"}, "TIME", 12, 3),
     "time(3) without time zone"),
    (_src({"type": "int64", "name": "io.debezium.time.MicroTime"}, "TIME", 15, 6),
     "time without time zone"),  # 6 is time's default precision: the same type
    (_src({"type": "int64", "name": "io.debezium.time.MicroTimestamp"}, "TIMESTAMP", 22, 0),
     "timestamp(0) without time zone"),
    (_src({"type": "string", "name": "io.debezium.time.ZonedTimestamp"}, "TIMESTAMPTZ", 30, 2),
     "timestamp(2) with time zone"),
    (_src({"type": "string", "name": "io.debezium.time.ZonedTime"}, "TIMETZ", 18, 1),
     "time(1) with time zone"),
    # the schema's own mapping where the source type adds nothing or does not fit it
    (_src({"type": "int16"}, "INT2", 5), "smallint"),
    (_src({"type": "int32"}, "SERIAL", 10), "integer"),
    (_src({"type": "array", "items": {"type": "int32"}}, "_INT4", 10), "integer[]"),
    (_src({"type": "int32"}, "INET"), "integer"),
    (_src(STRING, "POINT"), None),
    (_src(STRING, "BIT", 1), None),
    (_src(STRING, "BPCHAR", 0), None),
    (_src(STRING, "NUMERIC", 5, 9), "numeric"),  # scale above precision: not a numeric(p,s)
])  # fmt: skip
def test_propagated_source_types(spec: dict[str, Any], want: str | None) -> None:
    assert _type(spec) == want


@pytest.mark.parametrize("src", [
    "TEXT); DROP TABLE x; --", "inet; select 1", "VARCHAR(20)", "\"APP\".\"MOOD\"", "BOX",
    "GEOMETRY", "app.mood", "", "Ω",
])  # fmt: skip
def test_an_unknown_source_type_never_reaches_ddl(src: str) -> None:
    """The name comes from the event: only names in the sink's own tables map to a type, so
    anything else falls back to the schema's mapping (a plain string: the value decides)."""
    assert _type(_src(STRING, src, 20)) is None
    assert _type(_src({"type": "int64"}, src, 20)) == "bigint"
