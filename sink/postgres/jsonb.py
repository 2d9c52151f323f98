"""Values → JSON text for jsonb columns and the overflow: one rendering per type, the same
at every depth (a document's fields, array items, a whole value kept in overflow).

JSON's own types are written as they are, numbers exactly (int64, Decimal128 with its
scale). A MongoDB value JSON has no type for is written as its relaxed Extended JSON v2
wrapper, so jsonb keeps what the value was: ObjectId ``{"$oid": hex}``, date
``{"$date": "2024-01-15T10:30:00.123Z"}`` (years 1 to 9999; outside, the decoder's
``{"$date": {"$numberLong": ms}}``), binary of any subtype, UUIDs too,
``{"$binary": {"base64": .., "subType": "04"}}``, double NaN/±Infinity
``{"$numberDouble": "NaN"|"Infinity"|"-Infinity"}``, Decimal128's
``{"$numberDecimal": ..}``; the other BSON types (timestamp, regex, code, minKey...)
already arrive in their canonical wrapper. The BSON value types of :mod:`sink.records`
say which values are MongoDB's: relational values keep their plain renderings
(timestamps ISO-8601, bytes base64, UUIDs as strings, intervals in seconds), NaN and
the infinities of any source take the wrappers. The README's type table lists them.
"""

from __future__ import annotations

import base64
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

from sink.records import (
    BSON_UTC,
    Binary,
    BitString,
    BsonUuid,
    DocText,
    JsonText,
    ObjectId,
    Point,
    TemporalText,
    bson_date_json,
    is_bson_date,
)

__all__ = ["escaped", "has_nul", "overflow_text", "strip_nul", "to_json_text"]

_INT64_MIN = -(2**63)


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_nul(v) for v in value)
    return False


def strip_nul(value: Any) -> Any:
    """``value`` with every NUL character removed from its strings and keys."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value  # keeps an ObjectId
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strip_nul(v) for v in value]
    return value


def escaped(value: Any) -> dict[str, str]:
    """The overflow form of a value PostgreSQL cannot hold as it is (see the module doc)."""
    return {"$json": _dumps(value).decode("utf-8")}


def overflow_text(overflow: dict[str, Any]) -> str:
    """The ``_cartridge_overflow`` document as JSON text. A value with a NUL anywhere takes
    its `escaped` form whatever put it there (a narrowing, a row too wide): jsonb refuses
    ``\\u0000``, and refusing it would dead-letter the whole document."""
    if has_nul(overflow):
        overflow = {k: escaped(v) if has_nul(v) else v for k, v in overflow.items()}
    return to_json_text(overflow)


def _json_default(value: Any) -> Any:
    # The BSON value types (sink.records) reach here through the passthrough options or
    # because orjson has no encoder for a UUID subclass: see `to_json_text`. The commonest
    # (ObjectIds, dates) are written as ready JSON fragments: a dict costs twice as much.
    if type(value) is ObjectId:
        return orjson.Fragment(b'{"$oid":"' + value.encode() + b'"}')
    if type(value) is DocText:  # a sub-document the decoder rendered (see `to_json_text`)
        return orjson.Fragment(value.text.encode())
    if type(value) is JsonText:  # the source's exact JSON text (a validated JSON value)
        return orjson.Fragment(value.text.encode())
    if type(value) is BitString:
        return value.bits
    if type(value) is Point:
        return {"x": value.x, "y": value.y}
    if type(value) is TemporalText:  # PostgreSQL's text: '0044-03-15 BC', 'infinity'
        return value.text
    if type(value) is datetime:
        if value.tzinfo is BSON_UTC or is_bson_date(value):
            return orjson.Fragment(bson_date_json(value))
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()  # what orjson writes for them (time with a zone too)
    if isinstance(value, Binary):
        return _binary(value, value.subtype)
    if isinstance(value, BsonUuid):
        return _binary(value.bytes, 4)
    if isinstance(value, Decimal):
        if value.is_finite():
            return orjson.Fragment(str(value).encode())  # exact number, not a float
        return {"$numberDecimal": _special(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int):  # Int64 (a subclass), or beyond 64 bits
        return orjson.Fragment(int.__repr__(value).encode())
    if isinstance(value, str):  # any other subclass: passed through, written as it is
        return str(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _binary(data: bytes, subtype: int) -> dict[str, Any]:
    b64 = base64.b64encode(data).decode("ascii")
    return {"$binary": {"base64": b64, "subType": format(subtype, "02x")}}


def _special(value: float | Decimal) -> str:
    """Extended JSON's text for NaN and the infinities (of a double or a Decimal128)."""
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _json_clean(value: Any) -> Any:
    # orjson writes NaN/Infinity as null; JSON has no such numbers: extended JSON's wrapper.
    if isinstance(value, float) and not math.isfinite(value):
        return {"$numberDouble": _special(value)}
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64_MIN <= value < 2**64:
        return orjson.Fragment(_int_text(value))
    if isinstance(value, dict):
        return {str(k): _json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_clean(v) for v in value]
    return value


def _int_text(value: object) -> bytes:
    # Takes an object: compiled, str() of an int held unboxed (as `value` is, narrowed by
    # isinstance above) keeps a reference to an int past 2**62 for ever (mypyc 2.4.1).
    return str(value).encode()


# ObjectId (a str), Int64 (an int) and dates (a BSON date's zone) go through _json_default.
_SUBCLASSES = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _dumps(value: Any) -> bytes:
    try:
        raw = orjson.dumps(value, default=_json_default, option=_SUBCLASSES)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(_json_clean(value), default=_json_default, option=_SUBCLASSES)
    if b"null" in raw and _has_nonfinite(value):
        return orjson.dumps(_json_clean(value), default=_json_default, option=_SUBCLASSES)
    return raw


def to_json_text(value: Any) -> str:
    """Render a value as JSON text for a jsonb column or the overflow, the same at every
    depth. JSON's own types as they are (numbers exact: int64, Decimal128); for a MongoDB
    value JSON has no type for, its relaxed extended-JSON v2 wrapper: ObjectId
    ``{"$oid"}``, date ``{"$date": "<ISO-8601>Z"}``, binary (any subtype, UUIDs too)
    ``{"$binary": {"base64", "subType"}}``, NaN/±Infinity ``{"$numberDouble": "NaN"}`` /
    ``{"$numberDecimal": "Infinity"}`` (README, "How events map to tables"). Relational
    values keep their plain renderings (timestamps ISO-8601, bytes base64, UUIDs as
    strings), NaN/Infinity of any source take the wrappers."""
    if type(value) is DocText:  # a MongoDB sub-document the decoder already rendered so
        return value.text
    return _dumps(value).decode("utf-8")


def _has_nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_nonfinite(v) for v in value)
    return False
