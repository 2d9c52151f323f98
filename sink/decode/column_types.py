"""The PostgreSQL type a Connect (or Avro) field schema says, as the Debezium JDBC sink
takes it: the writer creates a new column with it instead of guessing from the first value
(``Record.column_types``). Types are spelled as PostgreSQL's ``format_type`` prints them, so
they compare with the catalog's.

Arrays of primitives become native arrays (``integer[]``, ``text[]``). Not mapped (the
value decides, as without a schema): arrays of logical types, structs, ``Bits``, string
intervals, Xml/Enum/plain strings (``text`` either way).
"""

from __future__ import annotations

from sink.decode.schema import SchemaNode

_BY_NAME = {
    "io.debezium.time.Date": "date",
    "org.apache.kafka.connect.data.Date": "date",
    "io.debezium.time.Time": "time(3) without time zone",
    "org.apache.kafka.connect.data.Time": "time(3) without time zone",
    "io.debezium.time.MicroTime": "time without time zone",
    "io.debezium.time.NanoTime": "time without time zone",
    "io.debezium.time.Timestamp": "timestamp(3) without time zone",
    "org.apache.kafka.connect.data.Timestamp": "timestamp(3) without time zone",
    "io.debezium.time.MicroTimestamp": "timestamp without time zone",
    "io.debezium.time.NanoTimestamp": "timestamp without time zone",
    "io.debezium.time.ZonedTimestamp": "timestamp with time zone",
    "io.debezium.time.ZonedTime": "time with time zone",
    "io.debezium.time.MicroDuration": "interval",
    "io.debezium.time.Interval": "interval",  # ISO 8601 text: months and days kept
    "io.debezium.data.VariableScaleDecimal": "numeric",
    "io.debezium.data.Uuid": "uuid",
    "io.debezium.data.Json": "jsonb",
}
_BY_TYPE = {
    "int8": "smallint", "int16": "smallint", "int32": "integer", "int64": "bigint",
    "int": "integer", "long": "bigint", "float32": "real", "float": "real",
    "float64": "double precision", "double": "double precision", "boolean": "boolean",
    "bytes": "bytea",
}  # fmt: skip


def pg_type(node: SchemaNode) -> str | None:
    """The column type ``node`` says, or None when the value should decide."""
    name = node.name
    if name is not None:
        if name == "org.apache.kafka.connect.data.Decimal":
            return _decimal(node)
        if name in _BY_NAME:
            return _BY_NAME[name]
        if name.startswith("io.debezium."):
            return None  # Bits, Interval strings, geometry...: as the value says
    t = node.type_name
    if t == "array":
        return _array(node.child("items"))
    return _BY_TYPE.get(t) if t is not None else None


def _array(items: SchemaNode | None) -> str | None:
    """A one-dimensional array of primitives: the native array type (``integer[]``)."""
    if items is None or items.name is not None:
        return None  # arrays of logical types (dates, decimals...): as the values say
    t = items.type_name
    elem = "text" if t == "string" else _BY_TYPE.get(t) if t is not None else None
    return None if elem is None or elem == "bytea" else f"{elem}[]"


def _decimal(node: SchemaNode) -> str:
    precision = node.params.get("connect.decimal.precision")
    try:
        p, s = int(str(precision)), node.scale
    except ValueError:
        return "numeric"
    return f"numeric({p},{s})" if 0 < p <= 1000 and 0 <= s <= p else "numeric"


def column_types(node: SchemaNode | None, fields: list[str]) -> dict[str, str] | None:
    """Field -> PostgreSQL type for the ``fields`` of a row struct schema."""
    if node is None:
        return None
    out: dict[str, str] = {}
    for f in fields:
        sub = node.field(f)
        if sub is not None and (t := pg_type(sub)) is not None:
            out[f] = t
    return out or None
