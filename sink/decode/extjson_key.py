"""The marker types the Extended-JSON reader produces, and the canonical text of a key.

:class:`ObjectId` (a ``str`` of 24 lowercase hex digits) and :class:`Binary` (``bytes``
that remember a BSON subtype) keep what plain Python types would lose;
:func:`canonical_key_text` turns a decoded ``_id`` into the primary-key text: ObjectId →
its hex, str → itself, anything else → compact canonical Extended JSON v2 in which every
number MongoDB considers equal (int32, int64, integral double) has one text.

Distinct ``_id`` values must give distinct texts, and the three kinds of text above can meet: a
string of 24 lowercase hex digits reads like an ObjectId, and a string such as
``{"$numberLong":"1005"}``, ``null`` or ``true`` reads like another type's text. Such a
string (24 lowercase hex digits, a first character ``{``, ``[`` or ``"``, or exactly
``null``/``true``/``false``) is written as its JSON string literal instead, in double
quotes, a form no other branch produces. So is a string with a NUL character, which
PostgreSQL's text cannot hold (its literal has ``\u0000``). ObjectIds and every other
string keep the text they always had, so existing tables keep their keys.
All three are re-exported by :mod:`sink.decode.extjson`.
"""

from __future__ import annotations

import base64
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from sink.errors import DecodeError
from sink.records import Binary, IdText, ObjectId

__all__ = ["Binary", "ObjectId", "canonical_key_text"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OID_LIKE = re.compile(r"[0-9a-f]{24}")
_JSON_LIKE = frozenset({"null", "true", "false"})


def canonical_key_text(value: Any, *, plain: bool = False) -> IdText:
    """The primary-key text of a decoded MongoDB ``_id`` (see the module docstring).

    ``plain``: the id comes from an SMT-flattened record, where an ObjectId arrives as its
    hex string and cannot be told from a string: 24 lowercase hex digits then stay bare,
    as an ObjectId's key text (the only reading that keeps ObjectId keys stable)."""
    if isinstance(value, ObjectId):
        return IdText(value)
    if isinstance(value, str):
        text = str(value)
        # A NUL cannot be stored in PostgreSQL's text: its JSON literal (\u0000) can.
        if ("\x00" in text or _looks_typed(text)) and not (plain and _OID_LIKE.fullmatch(text)):
            return IdText(orjson.dumps(text).decode())
        return IdText(text)
    out: list[str] = []
    _canon(value, out, 0)
    return IdText("".join(out))


def _looks_typed(text: str) -> bool:
    """True for a string whose bare text another ``_id`` type could also produce."""
    return (
        text[:1] in ("{", "[", '"')
        or text in _JSON_LIKE
        or (len(text) == 24 and _OID_LIKE.fullmatch(text) is not None)
    )


def _canon(v: Any, out: list[str], depth: int) -> None:
    if depth > 256:
        raise DecodeError("key nested too deeply", code="too_deep")
    if isinstance(v, ObjectId):
        out.append('{"$oid":"' + str(v) + '"}')
    elif isinstance(v, str):
        out.append(orjson.dumps(v).decode())
    elif v is None or isinstance(v, bool):
        out.append("null" if v is None else ("true" if v else "false"))
    elif isinstance(v, int):  # as an object: str() of an unboxed int past 2**62 leaks it
        out.append('{"$numberLong":"' + _text(v) + '"}')
    elif isinstance(v, float):
        if v.is_integer() and _INT64_MIN <= v <= _INT64_MAX:
            out.append('{"$numberLong":"' + _text(int(v)) + '"}')
        elif math.isnan(v) or math.isinf(v):
            text = "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
            out.append('{"$numberDouble":"' + text + '"}')
        else:
            out.append('{"$numberDouble":"' + repr(v) + '"}')
    elif isinstance(v, Decimal):
        out.append('{"$numberDecimal":"' + str(v) + '"}')
    elif isinstance(v, datetime):
        aware = v if v.tzinfo is not None else v.replace(tzinfo=UTC)
        ms: object = (aware - _EPOCH) // timedelta(milliseconds=1)
        out.append('{"$date":{"$numberLong":"' + str(ms) + '"}}')
    elif isinstance(v, uuid.UUID):
        _canon_binary(v.bytes, 4, out)
    elif isinstance(v, Binary):
        _canon_binary(bytes(v), v.subtype, out)
    elif isinstance(v, bytes | bytearray | memoryview):
        _canon_binary(bytes(v), 0, out)
    elif isinstance(v, dict):
        first = next(iter(v), None)
        if first in ("$timestamp", "$minKey", "$maxKey") and len(v) == 1:
            out.append(orjson.dumps(v).decode())
            return
        out.append("{")
        for i, (k, item) in enumerate(v.items()):
            if i:
                out.append(",")
            out.append(orjson.dumps(str(k)).decode())
            out.append(":")
            _canon(item, out, depth + 1)
        out.append("}")
    elif isinstance(v, list | tuple):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _canon(item, out, depth + 1)
        out.append("]")
    else:
        raise DecodeError(f"cannot use a {type(v).__name__} as a document key", code="bad_key")


def _text(v: object) -> str:
    # Compiled, str() of an int held unboxed keeps a reference to an int past 2**62 for
    # ever (mypyc 2.4.1's CPyTagged_Str): an object's str() does not.
    return str(v)


def _canon_binary(data: bytes, subtype: int, out: list[str]) -> None:
    b64 = base64.b64encode(data).decode()
    out.append('{"$binary":{"base64":"' + b64 + '","subType":"' + format(subtype, "02x") + '"}}')
