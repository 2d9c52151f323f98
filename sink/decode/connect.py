"""Typed conversion of row values by their Connect logical type (see :mod:`decode_schema`).

Values may be JSON-shaped (base64 strings, epoch integers) or already typed by an Avro
reader (``bytes``, ``Decimal``, ``datetime``); both convert to the same Python values:
zone-less timestamps → naive ``datetime`` (aware UTC when ``aware``), ZonedTimestamp →
aware ``datetime``, dates → ``date``, times → ``time`` (``timedelta`` outside 0-24 h, as
MySQL TIME allows), and the dates and times Python cannot hold (BC, past 9999, ±infinity,
24:00:00) → ``TemporalText`` (`sink.decode.temporal`), Decimal/VariableScaleDecimal →
``Decimal``, Uuid → ``UUID``, Json → parsed JSON, bytes → ``bytes``, MicroDuration →
``timedelta``, Bits → ``BitString``, geometry.Point → ``Point``; Enum/EnumSet/Xml/Interval
stay strings. A string whose propagated source type (``column.propagate.source.type``) is
``NUMERIC``/``MONEY`` (``decimal.handling.mode=string``) → ``Decimal``.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sink.decode.common import fail, show
from sink.decode.jsontext import ExactFloat, InexactNumber, parse_exact, parse_json
from sink.decode.schema import SchemaNode
from sink.decode.temporal import time_in, timestamp_in, to_date, zoned_time, zoned_timestamp
from sink.errors import DecodeError
from sink.records import BitString, JsonText, Micros, Point

UNAVAILABLE = "__debezium_unavailable_value"
_UNAVAILABLE_B64 = base64.b64encode(UNAVAILABLE.encode()).decode()
_UNAVAILABLE_BYTES = UNAVAILABLE.encode()
_U64_LIMIT = 2**64
_I64_MIN = -(2**63)


def _bad(msg: str) -> Exception:
    return fail("bad_value", msg)


def is_unavailable(raw: Any) -> bool:
    """Debezium's placeholder for an unchanged TOASTed column (string, bytes or array)."""
    if type(raw) is str:
        return raw in (UNAVAILABLE, _UNAVAILABLE_B64)
    if type(raw) is bytes:
        return raw == _UNAVAILABLE_BYTES
    return type(raw) is list and len(raw) == 1 and raw[0] == UNAVAILABLE


def convert_row(
    row: Mapping[str, Any], node: SchemaNode | None, limit: int, aware: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Convert a struct of column values; also returns the columns Debezium left unavailable."""
    values: dict[str, Any] = {}
    unavailable: list[str] = []
    for col, raw in row.items():
        if raw is not None and is_unavailable(raw):
            unavailable.append(col)
            continue
        sub = node.field(col) if node is not None else None
        try:
            values[col] = convert_value(raw, sub, limit - 1, aware)
        except DecodeError as exc:
            raise fail(exc.code, f"column {col!r}: {exc}") from None
    return values, unavailable


def convert_value(v: Any, node: SchemaNode | None, limit: int, aware: bool = False) -> Any:
    """Convert one value by its schema node (None: schemaless, checked but kept as is)."""
    if v is None:
        return None
    if limit <= 0:
        raise fail("too_deep", "value nested too deeply")
    if node is None:
        return plain(v, limit)
    name = node.name
    if name is not None:
        conv = _LOGICAL.get(name)
        if conv is not None:
            return conv(v, node, limit, aware)
    kind = node.kind
    t = type(v)
    if kind == "int":
        if t is int and _I64_MIN <= v < _U64_LIMIT:
            return v
        if t is float and abs(v) >= _U64_LIMIT:
            raise InexactNumber
        raise _bad(f"expected an integer, got {show(v)}")
    if kind == "float":
        numeric = t is float or t is int or t is ExactFloat or t is Decimal
        if not (numeric or (t is str and v in _FLOAT_WORDS)):
            raise _bad(f"expected a number, got {show(v)}")
        f = float(v)
        # float32: the value the source held (JSON prints its shortest form, 0.1), so a
        # real column takes it exactly
        return _f32(f) if node.type_name in ("float32", "float") else f
    if kind == "string":
        if t is str:
            if node.params.get(_SOURCE_TYPE) in _DECIMAL_SOURCES:
                return _decimal_text(v)
            return v
        raise _bad(f"expected a string, got {show(v)}")
    if kind == "bool":
        if t is bool:
            return v
        raise _bad(f"expected a boolean, got {show(v)}")
    if kind == "bytes":
        return _bytes(v)
    if kind == "struct":
        if t is not dict:
            raise _bad(f"expected a struct, got {show(v)}")
        return convert_row(v, node, limit, aware)[0]
    if kind == "array":
        if t is not list:
            raise _bad(f"expected an array, got {show(v)}")
        items = node.child("items")
        return [convert_value(x, items, limit - 1, aware) for x in v]
    if kind == "map" and t is dict:
        values = node.child("values")
        return {k: convert_value(x, values, limit - 1, aware) for k, x in v.items()}
    return plain(v, limit)


def _f32(v: float) -> float:
    try:
        return float(struct.unpack("f", struct.pack("f", v))[0])
    except OverflowError:  # beyond float32: keep the double (the column widens)
        return v


def plain(v: Any, limit: int) -> Any:
    """A schemaless JSON value: depth and number range checked, exact floats unwrapped."""
    t = type(v)
    if t is dict or t is list:
        if limit <= 0:
            raise fail("too_deep", "value nested too deeply")
        keys = v.keys() if t is dict else range(len(v))
        for k in keys:
            x = v[k]
            tx = type(x)
            if tx is dict or tx is list or tx is int or tx is float or tx is ExactFloat:
                v[k] = plain(x, limit - 1)
        return v
    if t is int:
        if not _I64_MIN <= v < _U64_LIMIT:
            raise fail("number_out_of_range", f"integer {v} is outside 64 bits")
    elif t is float:
        if abs(v) >= _U64_LIMIT:
            raise InexactNumber
    elif t is ExactFloat:
        return float(v)
    return v


def _bytes(v: Any) -> bytes:
    if type(v) is str:
        try:
            return base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise _bad(f"not valid base64: {show(v)}") from None
    if isinstance(v, bytes | bytearray):
        return bytes(v)
    raise _bad(f"expected bytes, got {show(v)}")


def _iso(parse: Callable[[str], Any], what: str) -> Callable[[Any, SchemaNode, int, bool], Any]:
    def conv(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
        if type(v) is not str:
            return v if isinstance(v, date | time) else _raise(f"expected {what}, got {show(v)}")
        try:
            return parse(v)
        except ValueError:
            raise _bad(f"not an ISO-8601 {what}: {show(v)}") from None

    return conv


def _raise(msg: str) -> Any:
    raise _bad(msg)


def _duration(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
    if isinstance(v, timedelta):
        return v
    if type(v) in (int, float, ExactFloat):
        try:
            return Micros(microseconds=v)
        except OverflowError:
            raise _bad(f"duration {v} µs is out of range") from None
    raise _bad(f"expected a duration in microseconds, got {show(v)}")


def _unscaled(raw: Any, scale: int) -> Decimal:
    if type(raw) is str and len(raw) > 4096:
        raise _bad("Decimal value is too long")
    data = _bytes(raw)
    # An object, not an int: compiled, str() of an unboxed int past 2**62 keeps a reference
    # to it for ever (mypyc 2.4.1's CPyTagged_Str), and unscaled values that big are common
    # (numeric(38,18) from 4.7 up).
    unscaled: object = int.from_bytes(data, "big", signed=True)
    return Decimal(f"{unscaled}E{-scale}")


def _decimal(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
    t = type(v)
    if t is Decimal:
        return v
    if t is int:
        return Decimal(v)
    if t is ExactFloat:
        return Decimal(v.text)
    if t is float:
        text = repr(v)
        digits = text.split("e")[0].replace("-", "").replace(".", "").strip("0")
        if len(digits) > 15 or abs(v) >= 2**53:
            raise InexactNumber  # decimal.format=NUMERIC beyond double precision
        return Decimal(text)
    return _unscaled(v, node.scale)


def _variable_decimal(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
    if type(v) is Decimal:
        return v
    if type(v) is not dict or type(v.get("scale")) is not int:
        raise _bad(f"expected a VariableScaleDecimal {{scale, value}}, got {show(v)}")
    if not -10000 <= v["scale"] <= 10000:
        raise _bad(f"VariableScaleDecimal scale {v['scale']} out of range")
    return _unscaled(v.get("value"), v["scale"])


def _uuid(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
    if isinstance(v, uuid.UUID):
        return v
    if type(v) is str and len(v) <= 64:
        try:
            return uuid.UUID(v)
        except ValueError:
            pass
    raise _bad(f"not a UUID: {show(v)}")


def _json(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
    if type(v) is not str:
        return plain(v, limit)
    try:
        parsed = parse_json(v)
    except DecodeError as exc:
        try:  # numbers beyond a double (-1e400) are valid JSON, and jsonb takes them
            parsed = parse_exact(v, keep_float_text=True)
        except (DecodeError, ValueError, RecursionError):
            raise _bad(f"io.debezium.data.Json value: {exc}") from None
    try:
        plain(parsed, limit)  # the depth limit
    except (InexactNumber, DecodeError) as exc:
        if isinstance(exc, DecodeError) and exc.code == "too_deep":
            raise
    return JsonText(v)  # the source's text: numbers exact, JSON null not SQL NULL


_SOURCE_TYPE = "__debezium.source.column.type"
_DECIMAL_SOURCES = ("NUMERIC", "DECIMAL", "MONEY")
_MAX_BITS = 83_886_080
_DECIMAL_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|NaN|[-+]?Infinity")


def _decimal_text(v: str) -> Decimal:
    """A decimal as ``decimal.handling.mode=string`` writes it (``"12.50"``, ``"NaN"``)."""
    if len(v) <= 4096 and _DECIMAL_TEXT.fullmatch(v):
        return Decimal(v)
    raise _bad(f"not a decimal number: {show(v)}")


def _bits(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
    """Debezium's Bits: the bit string read as a binary number (first bit most significant),
    its bytes little-endian, leading zero bytes dropped. A ``bit(n)`` value (and any Bits
    without a propagated ``VARBIT`` source type) has exactly ``length`` bits, so it is
    padded back to them; a ``bit varying`` value's leading zeros are not in the event."""
    if type(v) is str and len(v) > _MAX_BITS // 6 + 4:
        raise _bad("Bits value is too long")
    data = _bytes(v)
    bits = format(int.from_bytes(data, "little"), "b") if any(data) else ""
    try:
        n = int(str(node.params.get("length")))
    except ValueError:
        n = -1
    if node.params.get(_SOURCE_TYPE) == "VARBIT" or not 0 < n <= _MAX_BITS:
        return BitString(bits)
    if len(bits) > n:
        raise _bad(f"Bits value has {len(bits)} bits, more than its length {n}")
    return BitString(bits.zfill(n))


_FLOAT_WORDS = ("NaN", "Infinity", "-Infinity")


def _point(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
    """Debezium's Point ``{x, y, wkb, srid}``; one without coordinates (a hand-made
    struct) stays the struct it is."""
    if type(v) is not dict:
        raise _bad(f"expected a Point struct, got {show(v)}")
    x, y = v.get("x"), v.get("y")
    if x is None and y is None:
        return convert_row(v, node, limit, aware)[0]
    # JsonConverter writes a NaN or infinite double as a string, as for a plain double
    if not all(type(c) in (float, int, ExactFloat) or c in _FLOAT_WORDS for c in (x, y)):
        raise _bad(f"expected a Point {{x, y}}, got {show(v)}")
    return Point(float(x), float(y))  # type: ignore[arg-type]


_LOGICAL: dict[str, Callable[[Any, SchemaNode, int, bool], Any]] = {
    "io.debezium.time.Date": to_date,
    "org.apache.kafka.connect.data.Date": to_date,
    "io.debezium.time.Time": time_in(1000, 1),
    "org.apache.kafka.connect.data.Time": time_in(1000, 1),
    "io.debezium.time.MicroTime": time_in(1, 1),
    "io.debezium.time.NanoTime": time_in(1, 1000),
    "io.debezium.time.Timestamp": timestamp_in(1000, 1),
    "org.apache.kafka.connect.data.Timestamp": timestamp_in(1000, 1),
    "io.debezium.time.MicroTimestamp": timestamp_in(1, 1),
    "io.debezium.time.NanoTimestamp": timestamp_in(1, 1000),
    "io.debezium.time.ZonedTimestamp": zoned_timestamp,
    "io.debezium.time.ZonedTime": zoned_time,
    "io.debezium.time.IsoDate": _iso(date.fromisoformat, "date"),
    "io.debezium.time.IsoTime": _iso(time.fromisoformat, "time"),
    "io.debezium.time.IsoTimestamp": _iso(datetime.fromisoformat, "timestamp"),
    "io.debezium.time.MicroDuration": _duration,
    "org.apache.kafka.connect.data.Decimal": _decimal,
    "io.debezium.data.VariableScaleDecimal": _variable_decimal,
    "io.debezium.data.Uuid": _uuid,
    "io.debezium.data.Json": _json,
    "io.debezium.data.Bits": _bits,
    "io.debezium.data.geometry.Point": _point,
}
