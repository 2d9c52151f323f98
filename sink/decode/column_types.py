"""The PostgreSQL type a Connect (or Avro) field schema says, as the Debezium JDBC sink
takes it: the writer creates a new column with it instead of guessing from the first value
(``Record.column_types``). Types are spelled as PostgreSQL's ``format_type`` prints them, so
they compare with the catalog's.

Arrays of primitives become native arrays (``integer[]``, ``text[]``); ``Bits`` a ``bit
varying(n)``, ``geometry.Point`` a ``point``, ``Enum`` ``text``. Not mapped (the value
decides, as without a schema): arrays of logical types, other structs, Xml/plain strings
(``text`` either way).

Debezium's ``column.propagate.source.type`` (or ``datatype.propagate.source.type``) adds
the source column's type name, length and scale to each field's schema parameters
(``__debezium.source.column.*``). When the name is a PostgreSQL built-in the sink writes
exactly and the field's schema fits it, that type wins (`source_type`). The name comes from
the event: it is only ever looked up in the tables below, never put into DDL itself.
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
    "io.debezium.data.Enum": "text",  # the target has no such enum type: its labels
    "io.debezium.data.geometry.Point": "point",
}
SOURCE_TYPE = "__debezium.source.column.type"
_SOURCE_LENGTH = "__debezium.source.column.length"
_SOURCE_SCALE = "__debezium.source.column.scale"
BITS = "io.debezium.data.Bits"
_DECIMALS = ("org.apache.kafka.connect.data.Decimal", "io.debezium.data.VariableScaleDecimal")
_MAX_CHARS = 10_485_760  # PostgreSQL's limit on varchar(n)/char(n)
_MAX_BITS = 83_886_080  # and on bit(n)
# Source types whose values come as strings PostgreSQL reads back exactly (cast from text).
_FROM_TEXT = {
    "INET": "inet", "CIDR": "cidr", "MACADDR": "macaddr", "MACADDR8": "macaddr8",
    "XML": "xml", "INT4RANGE": "int4range", "INT8RANGE": "int8range",
    "NUMRANGE": "numrange", "TSRANGE": "tsrange", "TSTZRANGE": "tstzrange",
    "DATERANGE": "daterange", "CITEXT": "citext", "TEXT": "text",
}  # fmt: skip
# Source time types: (the logical names that carry them, the PostgreSQL spelling).
_TIMES = {
    "TIME": (("io.debezium.time.MicroTime", "io.debezium.time.Time",
              "io.debezium.time.NanoTime", "org.apache.kafka.connect.data.Time"),
             "time({}) without time zone"),
    "TIMETZ": (("io.debezium.time.ZonedTime",), "time({}) with time zone"),
    "TIMESTAMP": (("io.debezium.time.MicroTimestamp", "io.debezium.time.Timestamp",
                   "io.debezium.time.NanoTimestamp", "org.apache.kafka.connect.data.Timestamp"),
                  "timestamp({}) without time zone"),
    "TIMESTAMPTZ": (("io.debezium.time.ZonedTimestamp",), "timestamp({}) with time zone"),
}
_BY_TYPE = {
    "int8": "smallint", "int16": "smallint", "int32": "integer", "int64": "bigint",
    "int": "integer", "long": "bigint", "float32": "real", "float": "real",
    "float64": "double precision", "double": "double precision", "boolean": "boolean",
    "bytes": "bytea",
}  # fmt: skip


def pg_type(node: SchemaNode) -> str | None:
    """The column type ``node`` says, or None when the value should decide."""
    if SOURCE_TYPE in node.params and (src := source_type(node)) is not None:
        return src
    name = node.name
    if name == BITS:
        n = _int(node.params.get("length"))
        return f"bit varying({n})" if 0 < n <= _MAX_BITS else None
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


def _int(raw: object) -> int:
    try:
        return int(str(raw))
    except ValueError:
        return -1


def source_type(node: SchemaNode) -> str | None:
    """The source column's type from the propagated parameters, when it is one PostgreSQL
    has built in, the sink writes exactly, and the field's schema can carry (else None:
    the schema's own mapping applies). An enum type or an extension type the target may
    lack maps to the closest type that keeps the values (enum: ``text``; ``citext`` and
    ``hstore`` are checked against the target when the column is created)."""
    src = str(node.params.get(SOURCE_TYPE)).upper()
    n, s = _int(node.params.get(_SOURCE_LENGTH)), _int(node.params.get(_SOURCE_SCALE))
    kind, name = node.kind, node.name
    if name == "io.debezium.data.Enum":
        return "text"
    if kind == "string" and name in (None, "io.debezium.data.Xml") and src in _FROM_TEXT:
        return _FROM_TEXT[src]
    if src == "VARCHAR" and kind == "string" and name is None:
        return f"character varying({n})" if 0 < n <= _MAX_CHARS else "character varying"
    if src == "BPCHAR" and kind == "string" and name is None and 0 < n <= _MAX_CHARS:
        return f"character({n})"
    if src == "JSON" and name == "io.debezium.data.Json":
        return "json"  # kept as the source's text, byte for byte
    if src == "HSTORE" and (name == "io.debezium.data.Json" or kind == "map"):
        return "hstore"
    if src in ("NUMERIC", "DECIMAL") and (name in _DECIMALS or kind in ("string", "float")):
        return f"numeric({n},{s})" if 0 < n <= 1000 and 0 <= s <= n else "numeric"
    if src == "MONEY" and (name in _DECIMALS or kind in ("string", "float")):
        return "money"
    if src == "BIT" and kind == "bool" and n == 1:
        return "bit(1)"
    if src in ("BIT", "VARBIT") and name == BITS and 0 < n <= _MAX_BITS:
        return f"bit({n})" if src == "BIT" else f"bit varying({n})"
    if src == "POINT" and name == "io.debezium.data.geometry.Point":
        return "point"
    if src in _TIMES and name in _TIMES[src][0] and 0 <= s < 6:
        # 6 is the default: PostgreSQL spells time(6) and time alike, and they behave alike
        return _TIMES[src][1].format(s)
    return None


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
