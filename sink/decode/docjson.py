"""A MongoDB document (``after``) → a ``Record``'s values, sub-documents as jsonb text.

A top-level field that holds an ordinary sub-document or array becomes a jsonb column,
stored as :func:`sink.postgres.jsonb.to_json_text` renders the typed value (ObjectId
``{"$oid"}``, date ``{"$date": "<ISO>Z"}``, int64 and Decimal128 as plain numbers...).
Building those typed values and then rendering them again cost about as much as the rest
of the decode for large nested documents (bench/README.md, "Raw JSON passthrough"). Here
the walk turns each wrapper straight into its rendering (an ObjectId wrapper stays as it
is, a date becomes its ISO wrapper, ``$numberLong`` a plain int...) and orjson writes the
text once, in C: the value is a :class:`~sink.records.DocText`. Top-level values that are
not sub-documents (the columns of other types, ``_id``, and a top-level wrapper) are
walked by :mod:`sink.decode.extjson` as ever.

Only the forms Debezium writes are handled here; anything else (a binary, a date outside
years 1970-9999 or written as text, a ``$``-key that is not a wrapper, NaN as a
Decimal128, an integer beyond int64, a float beyond 64 bits, a NUL, a document nested
near ``max_depth``...) makes the whole document go through :func:`extjson.loads`, which
decides what it is, and raises what it raises, exactly as before.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

import orjson

from sink.decode import extjson
from sink.decode.jsontext import InexactNumber, parse_json
from sink.errors import DecodeError
from sink.records import DocText, bson_date_json, civil_from_days

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_U64_LIMIT = float(2**64)
_I64_FLOOR = float(-(2**63))
_OID = re.compile(r"[0-9a-f]{24}")
_LONG = re.compile(r"-?[0-9]{1,19}")
_KEYWORDS = frozenset({
    "$oid", "$numberInt", "$numberLong", "$numberDouble", "$numberDecimal", "$date", "$uuid",
    "$timestamp", "$regularExpression", "$minKey", "$maxKey", "$symbol", "$dbPointer",
    "$undefined", "$binary", "$code", "$regex",
})  # fmt: skip
_SPECIAL = frozenset({"NaN", "Infinity", "-Infinity"})
_MS_MAX = 253402300799999  # 9999-12-31T23:59:59.999Z
_D2: Final = tuple(f"{i:02d}" for i in range(60))
_D3: Final = tuple(f"{i:03d}" for i in range(1000))


class _Typed(Exception):
    """Something the fast walk does not render itself: walk the whole document typed."""


def loads_document(text: str, *, max_depth: int = 200) -> Any:
    """``extjson.loads(text)``, with every top-level ordinary sub-document or array as a
    :class:`DocText` holding its jsonb rendering (see the module docstring)."""
    # jsonb refuses NUL: the writer keeps the exact value aside. (A memchr for the
    # backslash first: most documents have none, and the search for "\u0000" costs 1 µs.)
    if "\\" in text and "\\u0000" in text:
        return extjson.loads(text, max_depth=max_depth)
    doc = parse_json(text, allow_nan=True)
    try:
        return _top(doc, max_depth)
    except (_Typed, DecodeError, InexactNumber, TypeError):  # TypeError: orjson's
        pass
    return extjson.loads(text, max_depth=max_depth)


def _top(doc: Any, limit: int) -> Any:
    if type(doc) is not dict or limit <= 1 or _wrapper_shape(doc):
        raise _Typed
    sub = limit - 1
    for k, v in doc.items():
        t = type(v)
        if t is str:
            continue
        if t is dict:
            if k == "_id" or _wrapper_shape(v):  # the key, a typed column value
                doc[k] = extjson.walk(v, max_depth=sub)
            else:
                doc[k] = DocText(orjson.dumps(_dict(v, sub)).decode())
        elif t is list:
            doc[k] = extjson.walk(v, max_depth=sub) if k == "_id" else DocText(
                orjson.dumps(_list(v, sub)).decode())
        elif t is int:
            if v > _INT64_MAX or v < _INT64_MIN:
                raise _Typed
        elif t is float and (v >= _U64_LIMIT or v < _I64_FLOOR):
            raise _Typed
    return doc


def _wrapper_shape(d: dict[str, Any]) -> bool:
    """True when the typed walk may read ``d`` as a wrapper (its first key, or the second
    of two, starts with ``$``): such a document is never ordinary here."""
    n = len(d)
    if n == 0 or n > 2:
        return n > 2 and next(iter(d))[:1] == "$"
    it = iter(d)
    return next(it)[:1] == "$" or (n == 2 and next(it)[:1] == "$")


def _list(items: list[Any], limit: int) -> list[Any]:
    if limit <= 1:
        raise _Typed
    sub = limit - 1
    for i, v in enumerate(items):
        t = type(v)
        if t is str:
            continue
        if t is dict:
            items[i] = _dict(v, sub)
        elif t is list:
            _list(v, sub)
        elif t is int:
            if v > _INT64_MAX or v < _INT64_MIN:
                raise _Typed
        elif t is float and (v >= _U64_LIMIT or v < _I64_FLOOR):
            raise _Typed
    return items


def _dict(d: dict[str, Any], limit: int) -> Any:
    if limit <= 1:
        raise _Typed
    n = len(d)
    if n:
        it = iter(d)
        k0 = next(it)
        if k0[:1] == "$":
            if n == 1:
                return _wrapper(k0, d[k0], d)
            raise _Typed  # two keys (a paired wrapper?) or more (an operator document)
        if n == 2 and next(it)[:1] == "$":
            raise _Typed
    sub = limit - 1
    for k, v in d.items():
        t = type(v)
        if t is str:
            continue
        if t is dict:
            d[k] = _dict(v, sub)
        elif t is list:
            _list(v, sub)
        elif t is int:
            if v > _INT64_MAX or v < _INT64_MIN:
                raise _Typed
        elif t is float and (v >= _U64_LIMIT or v < _I64_FLOOR):
            raise _Typed
    return d


def _wrapper(key: str, v: Any, d: dict[str, Any]) -> Any:
    """The jsonb rendering of the one-key wrapper ``d`` = ``{key: v}``, as the writer
    renders the value the typed walk makes of it."""
    t = type(v)
    if key == "$oid":
        if t is str and _OID.fullmatch(v):
            return d  # {"$oid": "<24 lowercase hex>"}: its own rendering
    elif key == "$date":
        if t is int:
            if 0 <= v <= _MS_MAX:
                return {"$date": _iso(v)}
            dt = extjson.date_from_ms(v)  # the typed walk's date (or its far-date wrapper)
            if type(dt) is datetime:
                return orjson.Fragment(bson_date_json(dt))
    elif key == "$numberLong" or key == "$numberInt":
        if t is str and _LONG.fullmatch(v):
            n = int(v)
            if (-(2**31) <= n < 2**31) if key == "$numberInt" else (
                    _INT64_MIN <= n <= _INT64_MAX):
                return n
    elif key == "$numberDecimal":
        if t is str:
            dec = extjson._decimal(v, False)  # the typed walk's own check
            if dec.is_finite():
                return orjson.Fragment(str(dec).encode())  # exact digits and scale
    elif key == "$numberDouble":
        if t is str:
            if v in _SPECIAL:
                return d  # NaN/±Infinity: the wrapper is their rendering
            return extjson._double(v, False)
    elif key not in _KEYWORDS:
        return _dict_plain(d)
    raise _Typed


def _iso(ms: int) -> str:
    """``bson_date_json``'s text of the date ``ms`` after the epoch (years 1970 to 9999),
    by arithmetic: a third of the cost of a datetime and its rendering."""
    days = ms // 86_400_000
    rest = ms - days * 86_400_000
    secs = rest // 1000
    milli = rest - secs * 1000
    year, month, day = civil_from_days(days)
    d2 = _D2
    text = f"{year}-{d2[month]}-{d2[day]}T{d2[secs // 3600]}:{d2[secs // 60 % 60]}:{d2[secs % 60]}"
    return f"{text}.{_D3[milli]}Z" if milli else f"{text}Z"


def _dict_plain(d: dict[str, Any]) -> dict[str, Any]:
    """A one-key document whose ``$`` key names no type: an ordinary document."""
    (v,) = d.values()
    t = type(v)
    if t is dict or t is list or (t is float and (v >= _U64_LIMIT or v < _I64_FLOOR)) or (
            t is int and not _INT64_MIN <= v <= _INT64_MAX):
        raise _Typed  # rare: let the typed walk do it with its depth accounting
    return d


__all__ = ["loads_document"]
