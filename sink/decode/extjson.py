"""MongoDB Extended JSON → Python values.

Accepts every rendering Debezium (or any MongoDB driver) writes: v1 strict/legacy
(``{"$date": 1234}``, ``{"$binary": "..", "$type": "00"}``, bare ``NaN``), v2 relaxed
(``{"$date": "ISO"}``, plain int64) and v2 canonical (``{"$numberInt": "5"}``).

Fast path: ``orjson.loads`` and then one in-place walk over the result. Two rare slow
paths: bare ``NaN``/``Infinity`` tokens (rewritten to ``$numberDouble`` wrappers, then
orjson again) and integer literals beyond 64 bits (orjson turns them into floats; the
text is re-parsed with the exact standard-library parser and range-checked).

Type mapping (the marker types are :mod:`sink.records`'s BSON value types): ObjectId →
:class:`ObjectId` (a ``str`` of 24 lowercase hex digits); Int32 and an int64 without
its ``$numberLong`` wrapper (relaxed mode) → ``int``; ``$numberLong`` → :class:`Int64`
(an ``int``); Double → ``float``; Decimal128 → ``Decimal``; DateTime → an aware
``datetime`` in the ``BSON_UTC`` zone (``{"$date": {"$numberLong": ms}}`` outside
Python's range);
Binary subtype 4 (16 bytes) and ``$uuid`` → :class:`BsonUuid` (a ``UUID``), any other
subtype → :class:`Binary` (a ``bytes`` that remembers its subtype); Undefined → ``None``;
Timestamp, Regex, MinKey, MaxKey, Symbol, Code(+scope), DBPointer → a dict in canonical
extended-JSON form (stored as jsonb). A DBRef (``{"$ref", "$id", "$db"?, ...}``) is a
document by MongoDB's own definition and stays one, whatever its ``$id``: the pre-1.4
writer rendered the deprecated DBPointer in that same shape, and the common DBRef wins.

:class:`ObjectId`, :class:`Binary` and :func:`canonical_key_text` (the primary-key text of
an ``_id``) live in :mod:`sink.decode.extjson_key` and are re-exported here; the JSON-text layer
(:func:`parse_json`, :class:`InexactNumber`) is :mod:`sink.decode.jsontext`.

Length: the hot walk over a decoded document is written out inline (scalar checks
included) rather than split into helpers: each call per value costs measurable decode
throughput (bench/README.md, "decode"), so this module stays one piece.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sink.decode.extjson_key import Binary, ObjectId, canonical_key_text
from sink.decode.jsontext import InexactNumber, parse_exact, parse_json
from sink.errors import DecodeError
from sink.records import BSON_UTC, BsonUuid, Int64

__all__ = [
    "Binary",
    "InexactNumber",
    "ObjectId",
    "canonical_key_text",
    "date_from_ms",
    "loads",
    "parse_json",
    "walk",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_U64_LIMIT = float(2**64)  # orjson keeps integers exact in [-2**63, 2**64)
_I64_FLOOR = float(-(2**63))
_EPOCH = datetime(1970, 1, 1, tzinfo=BSON_UTC)  # + timedelta keeps the zone: a BSON date
_MS_MIN = -62135596800000  # 0001-01-01T00:00:00Z
_MS_MAX = 253402300799999  # 9999-12-31T23:59:59.999Z

_HEX24 = re.compile(r"[0-9a-fA-F]{24}")
_INT_TEXT = re.compile(r"-?[0-9]{1,20}")
_FLOAT_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DEC_TEXT = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|NaN|Inf|Infinity)"
)
_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}(-?)[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{12}"
)
_SUBTYPE_TEXT = re.compile(r"[0-9a-fA-F]{1,2}")
_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _bad(msg: str, code: str = "bad_extjson") -> DecodeError:
    return DecodeError(msg, code=code)


# --------------------------------------------------------------------------- walking


def loads(data: bytes | bytearray | memoryview | str, *, max_depth: int = 200) -> Any:
    """Parse extended-JSON text (any mode) into Python values (see the module docstring)."""
    obj = parse_json(data, allow_nan=True)
    try:
        return walk(obj, max_depth=max_depth)
    except InexactNumber:
        pass
    return walk(parse_exact(data), max_depth=max_depth, exact=True)


def walk(obj: Any, *, max_depth: int = 200, exact: bool = False) -> Any:
    """Convert extended-JSON wrappers inside already-parsed JSON (in place where possible)."""
    t = type(obj)
    if t is dict:
        return _walk_dict(obj, max_depth, exact)
    if t is list:
        return _walk_list(obj, max_depth, exact)
    return _scalar(obj, exact)


def _scalar(v: Any, exact: bool) -> Any:
    t = type(v)
    if t is int:
        if not INT64_MIN <= v <= INT64_MAX:
            raise _bad(f"integer {v} is outside the int64 range", "number_out_of_range")
    elif t is float and not exact and (v >= _U64_LIMIT or v < _I64_FLOOR):
        raise InexactNumber
    return v


def _walk_list(items: list[Any], limit: int, exact: bool) -> list[Any]:
    if limit <= 0:
        raise _bad("document nested too deeply", "too_deep")
    sub = limit - 1
    for i, v in enumerate(items):
        t = type(v)
        if t is str:
            continue
        if t is dict:
            items[i] = _walk_dict(v, sub, exact)
        elif t is list:
            _walk_list(v, sub, exact)
        elif t is int:
            if v > INT64_MAX or v < INT64_MIN:
                _scalar(v, exact)
        elif t is float and not exact and (v >= _U64_LIMIT or v < _I64_FLOOR):
            raise InexactNumber
    return items


def _walk_dict(d: dict[str, Any], limit: int, exact: bool, plain: bool = False) -> Any:
    if limit <= 0:
        raise _bad("document nested too deeply", "too_deep")
    n = len(d)
    if n and not plain:
        it = iter(d)
        k0 = next(it)
        if k0[:1] == "$":
            if n == 1:  # {"$oid": ..}, {"$date": ..}: what _wrapper would do, one call less
                simple = _SIMPLE.get(k0)
                if simple is not None:
                    try:
                        return simple(d[k0], exact)
                    except DecodeError as exc:
                        return _not_a_wrapper(d, limit, exact, exc)
            if n <= 2:
                return _wrapper(d, k0, next(it, None), limit, exact)
        elif n == 2:
            k1 = next(it)
            if k1[:1] == "$":
                return _wrapper(d, k0, k1, limit, exact)
    # The body of _ordinary, inlined: this loop runs for every sub-document. Scalar
    # checks are inlined too (strings, the commonest values, are skipped first).
    sub = limit - 1
    for k, v in d.items():
        t = type(v)
        if t is str:
            continue
        if t is dict:
            d[k] = _walk_dict(v, sub, exact)
        elif t is list:
            _walk_list(v, sub, exact)
        elif t is int:
            if v > INT64_MAX or v < INT64_MIN:
                _scalar(v, exact)
        elif t is float and not exact and (v >= _U64_LIMIT or v < _I64_FLOOR):
            raise InexactNumber
    return d


def _ordinary(d: dict[str, Any], limit: int, exact: bool) -> dict[str, Any]:
    """``d`` as an ordinary sub-document, even if a key starts with ``$``."""
    out: dict[str, Any] = _walk_dict(d, limit, exact, plain=True)
    return out


# --------------------------------------------------------------------------- wrappers


def _wrapper(d: dict[str, Any], k0: str, k1: str | None, limit: int, exact: bool) -> Any:
    """``d`` has one or two keys, a ``$`` key among them: convert it if it is a type wrapper."""
    if k0 in _KEYWORDS:
        kw, other = k0, k1
    elif k1 is not None and k1 in _KEYWORDS:
        kw, other = k1, k0
    else:
        return _ordinary(d, limit, exact)
    try:
        paired = _PAIRED.get(kw)
        if paired is not None:
            return paired(d, other, limit, exact)
        if other is None:
            return _SIMPLE[kw](d[kw], exact)
    except DecodeError as exc:
        return _not_a_wrapper(d, limit, exact, exc)
    return _ordinary(d, limit, exact)  # a one-key wrapper with a second key is no wrapper


def _not_a_wrapper(d: dict[str, Any], limit: int, exact: bool, exc: DecodeError) -> Any:
    """A ``$`` document that does not parse as the type its key names is user data (legal
    field names since MongoDB 5: ``{"$date": "x"}``, ``{"$oid": "zzz"}``): an ordinary
    sub-document. Debezium never writes a malformed wrapper for a real value; a fault in
    the values inside (a bare integer beyond int64) still fails in the ordinary walk."""
    if exc.code == "too_deep":
        raise exc
    return _ordinary(d, limit, exact)


def _oid(v: Any, exact: bool = False) -> ObjectId:
    if type(v) is not str or not _HEX24.fullmatch(v):
        raise _bad(f"$oid must be 24 hex digits, got {v!r:.60}")
    return ObjectId(v.lower())


def _int32(v: Any, exact: bool) -> int:
    if type(v) is str and _INT_TEXT.fullmatch(v) and -(2**31) <= int(v) < 2**31:
        return int(v)
    raise _bad(f"$numberInt must be an int32 string, got {v!r:.60}")


def _long(v: Any, exact: bool = False) -> Int64:
    if type(v) is str and _INT_TEXT.fullmatch(v):
        n = int(v)
    elif type(v) is int:
        n = v
    else:
        raise _bad(f"$numberLong must be an int64 string, got {v!r:.60}")
    if not INT64_MIN <= n <= INT64_MAX:
        raise _bad(f"$numberLong {v!r:.60} is outside the int64 range", "number_out_of_range")
    return Int64(n)


def _double(v: Any, exact: bool) -> float:
    if type(v) is str:
        special = _SPECIAL_DOUBLES.get(v)
        if special is not None:
            return special
        if _FLOAT_TEXT.fullmatch(v):
            f = float(v)
            if math.isinf(f):
                raise _bad(f"$numberDouble {v!r:.60} overflows a double", "number_out_of_range")
            return f
    raise _bad(f"$numberDouble must be a number string, got {v!r:.60}")


def _decimal(v: Any, exact: bool) -> Decimal:
    if type(v) is not str or len(v) > 64 or not _DEC_TEXT.fullmatch(v):
        raise _bad(f"$numberDecimal must be a decimal string, got {v!r:.60}")
    dec = Decimal(v)  # the pattern admits only valid decimal text
    if dec.is_finite():
        exp = dec.as_tuple().exponent
        if not isinstance(exp, int) or exp < -6176 or dec.adjusted() > 6144:
            raise _bad(f"$numberDecimal {v!r:.60} is outside Decimal128", "number_out_of_range")
    return dec


def _date(v: Any, exact: bool) -> Any:
    t = type(v)
    if t is int:
        return date_from_ms(v)
    if t is str:
        return _iso_date(v)
    if t is dict and len(v) == 1 and "$numberLong" in v:
        return date_from_ms(_long(v["$numberLong"]))
    if t is float:
        if not exact and (v >= _U64_LIMIT or v < _I64_FLOOR):
            raise InexactNumber
        if v.is_integer():
            return date_from_ms(int(v))
    raise _bad(f"$date must be millis, an ISO string or $numberLong, got {v!r:.60}")


def date_from_ms(ms: int) -> Any:
    """Epoch milliseconds → aware UTC datetime, or the ``$date`` dict outside Python's range."""
    if not INT64_MIN <= ms <= INT64_MAX:
        raise _bad(f"$date {ms} is outside the int64 range", "number_out_of_range")
    if _MS_MIN <= ms <= _MS_MAX:
        return _EPOCH + timedelta(0, 0, 0, ms)  # positional: a third faster than keywords
    text: object = ms  # str() of an unboxed int past 2**62 leaks it, compiled (connect.py)
    return {"$date": {"$numberLong": str(text)}}


def _iso_date(s: str) -> datetime:
    try:
        dt = datetime.fromisoformat(s)
        dt = dt.replace(tzinfo=BSON_UTC) if dt.tzinfo is None else dt.astimezone(BSON_UTC)
    except (ValueError, OverflowError):
        raise _bad(f"$date string is not ISO-8601 in range: {s!r:.60}") from None
    return dt.replace(microsecond=dt.microsecond - dt.microsecond % 1000)


def _subtype(v: Any) -> int:
    if type(v) is str and _SUBTYPE_TEXT.fullmatch(v):
        return int(v, 16)
    if type(v) is int and 0 <= v <= 255:
        return v
    raise _bad(f"binary subtype must be 1-2 hex digits, got {v!r:.60}")


def _binary_value(b64: Any, subtype: int) -> Any:
    if type(b64) is not str:
        raise _bad(f"$binary base64 must be a string, got {b64!r:.60}")
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"$binary is not valid base64: {b64!r:.60}") from None
    if subtype == 4 and len(data) == 16:
        return BsonUuid(bytes=data)
    return Binary(data, subtype)


def _binary(d: dict[str, Any], other: str | None, limit: int, exact: bool) -> Any:
    v = d["$binary"]
    if type(v) is dict and other is None:
        if len(v) != 2 or "base64" not in v or "subType" not in v:
            raise _bad(f"$binary document must be {{base64, subType}}, got keys {list(v)[:5]}")
        return _binary_value(v["base64"], _subtype(v["subType"]))
    if other != "$type" or type(v) is not str:
        raise _bad("$binary must be {base64, subType} or a base64 string with $type")
    return _binary_value(v, _subtype(d["$type"]))


def _uuid(v: Any, exact: bool) -> uuid.UUID:
    if type(v) is not str or not _UUID_TEXT.fullmatch(v):
        raise _bad(f"$uuid must be a UUID string, got {v!r:.60}")
    return BsonUuid(v)


def _timestamp(v: Any, exact: bool) -> dict[str, Any]:
    if type(v) is dict and len(v) == 2:
        t, i = v.get("t"), v.get("i")
        if type(t) is int and type(i) is int and 0 <= t < 2**32 and 0 <= i < 2**32:
            return {"$timestamp": {"t": t, "i": i}}
    raise _bad(f"$timestamp must be {{t, i}} uint32s, got {v!r:.60}")


def _regex(pattern: Any, options: Any) -> dict[str, Any]:
    if type(pattern) is not str or type(options) is not str:
        raise _bad("regular expression pattern and options must be strings")
    return {"$regularExpression": {"pattern": pattern, "options": "".join(sorted(options))}}


def _regex_v2(v: Any, exact: bool) -> dict[str, Any]:
    if type(v) is not dict or len(v) != 2 or "pattern" not in v or "options" not in v:
        raise _bad(f"$regularExpression must be {{pattern, options}}, got {v!r:.60}")
    return _regex(v["pattern"], v["options"])


def _regex_legacy(d: dict[str, Any], other: str | None, limit: int, exact: bool) -> Any:
    # {"$regex": str, "$options": str} is the legacy regex; anything else ("$regex" as a
    # query operator in an oplog filter, or with a nested document) is an ordinary dict.
    if other == "$options" and type(d["$regex"]) is str and type(d["$options"]) is str:
        return _regex(d["$regex"], d["$options"])
    return _ordinary(d, limit, exact)


def _min_key(v: Any, exact: bool) -> dict[str, int]:
    if v != 1 or type(v) is not int:
        raise _bad(f"$minKey must be 1, got {v!r:.60}")
    return {"$minKey": 1}


def _max_key(v: Any, exact: bool) -> dict[str, int]:
    if v != 1 or type(v) is not int:
        raise _bad(f"$maxKey must be 1, got {v!r:.60}")
    return {"$maxKey": 1}


def _symbol(v: Any, exact: bool) -> dict[str, str]:
    if type(v) is not str:
        raise _bad(f"$symbol must be a string, got {v!r:.60}")
    return {"$symbol": v}


def _code(d: dict[str, Any], other: str | None, limit: int, exact: bool) -> Any:
    code, scope = d["$code"], d.get("$scope")
    if type(code) is not str:
        raise _bad(f"$code must be a string, got {code!r:.60}")
    if other is None:
        return {"$code": code}
    if other != "$scope" or type(scope) is not dict:
        raise _bad("$code may only be combined with a $scope document")
    return {"$code": code, "$scope": _ordinary(scope, limit - 1, exact)}


def _pointer(ref: Any, oid: Any) -> dict[str, Any]:
    if type(ref) is not str or type(oid) is not dict or len(oid) != 1 or "$oid" not in oid:
        raise _bad("$dbPointer must be {$ref: string, $id: {$oid}}")
    return {"$dbPointer": {"$ref": ref, "$id": {"$oid": str(_oid(oid["$oid"]))}}}


def _db_pointer(v: Any, exact: bool) -> dict[str, Any]:
    if type(v) is not dict or len(v) != 2:
        raise _bad(f"$dbPointer must be {{$ref, $id}}, got {v!r:.60}")
    return _pointer(v.get("$ref"), v.get("$id"))


def _undefined(v: Any, exact: bool) -> None:
    if v is not True:
        raise _bad(f"$undefined must be true, got {v!r:.60}")
    return None


_SIMPLE: dict[str, Callable[[Any, bool], Any]] = {
    "$oid": _oid,
    "$numberInt": _int32,
    "$numberLong": _long,
    "$numberDouble": _double,
    "$numberDecimal": _decimal,
    "$date": _date,
    "$uuid": _uuid,
    "$timestamp": _timestamp,
    "$regularExpression": _regex_v2,
    "$minKey": _min_key,
    "$maxKey": _max_key,
    "$symbol": _symbol,
    "$dbPointer": _db_pointer,
    "$undefined": _undefined,
}
# Keywords that may (or must) come with a companion key.
_PAIRED: dict[str, Callable[[dict[str, Any], str | None, int, bool], Any]] = {
    "$binary": _binary,
    "$code": _code,
    "$regex": _regex_legacy,
}
_KEYWORDS = frozenset(_SIMPLE) | frozenset(_PAIRED)
