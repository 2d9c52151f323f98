"""A MongoDB ``_id`` column's type, and ``_id`` key texts written into it.

A MongoDB key reaches the writer as its canonical text (an `IdText`: an ObjectId's 24 hex
digits, a string as itself or, when it could be read as another type, as its JSON literal,
anything else as canonical extended JSON). With ``mapping.id_type: auto`` a new table's
``_id`` column takes the natural type of its first ``_id`` in partition order:

* an integer → ``bigint``. int32, int64 and a double with an integral value in int64's range
  are one type here: MongoDB holds ``1``, ``NumberLong(1)`` and ``1.0`` to be the same
  ``_id``, and the canonical text already spells them alike (``{"$numberLong":"1"}``);
* a UUID (binary subtype 4, 16 bytes) → ``uuid``;
* anything else → ``text``, holding the canonical text as before.

``id_type: text`` keeps every new table's ``_id`` as text. A table that exists keeps its
column's type, whatever created it. A text column holds every id exactly; an integer or
uuid column refuses an id it cannot hold exactly (a string, an ObjectId, a fractional
double in a bigint column...): the writer dead-letters that record alone, with code
``id_type_mismatch`` (`mismatch`).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeGuard

from sink.errors import RecordError
from sink.postgres.types import BIGINT, TEXT, UUID
from sink.records import IdText

CODE = "id_type_mismatch"
_INT64 = (-(2**63), 2**63 - 1)
_LONG = re.compile(r'\{"\$numberLong":"(-?[0-9]{1,19})"\}')
_UUID = re.compile(r'\{"\$binary":\{"base64":"([A-Za-z0-9+/]{22}==)","subType":"04"\}\}')
_OID = re.compile(r"[0-9a-f]{24}")
_INTEGERS = frozenset({"bigint", "integer", "smallint"})
# The first key of a canonical extended-JSON wrapper -> the BSON type it spells.
_WRAPPERS = {"numberDouble": "double", "numberDecimal": "decimal", "date": "date",
             "binary": "binary", "timestamp": "timestamp", "minKey": "minKey",
             "maxKey": "maxKey", "numberLong": "integer"}


def _integer(text: str) -> int | None:
    m = _LONG.fullmatch(text)
    if m is None:
        return None
    n = int(m.group(1))
    return n if _INT64[0] <= n <= _INT64[1] else None


def _uuid(text: str) -> uuid.UUID | None:
    m = _UUID.fullmatch(text)
    if m is None:
        return None
    try:
        raw = base64.b64decode(m.group(1), validate=True)
    except binascii.Error:  # pragma: no cover - the pattern admits only valid base64
        return None
    return uuid.UUID(bytes=raw) if len(raw) == 16 else None


def column_type(text: str, id_type: str) -> str:
    """The type a new table's ``_id`` column gets from its first ``_id`` (``id_type``:
    ``auto`` or ``text``)."""
    if id_type == "text":
        return TEXT
    if _integer(text) is not None:
        return BIGINT
    if _uuid(text) is not None:
        return UUID
    return TEXT


def bson_type(text: str) -> str:
    """The BSON type a canonical key text spells, for messages: MongoDB's ``$type`` names,
    ``integer`` for int32, int64 and integral doubles alike (one text for the three)."""
    if _OID.fullmatch(text):
        return "objectId"
    if _uuid(text) is not None:
        return "uuid"
    if text.startswith('{"$'):
        name = text[3:text.find('"', 3)]
        return _WRAPPERS.get(name, "object")
    if text.startswith("{"):
        return "object"
    if text.startswith("["):
        return "array"
    if text == "null":
        return "null"
    if text in ("true", "false"):
        return "bool"
    return "string"


def converter(column: str) -> Callable[[str], Any] | None:
    """How a key text becomes a value of a ``column``-typed ``_id`` column (None from it:
    the column cannot hold that id); None when the column holds the text as it is (text,
    varchar, or a type this sink never creates)."""
    base = column.split("(", 1)[0].strip()
    if base in _INTEGERS or base == "numeric":
        return _integer
    if base == UUID:
        return _uuid
    return None


def mismatch(table: str, column: str, column_type: str, text: str) -> RecordError:
    """The dead letter's error: the table, the column's type and the id's BSON type (never
    the id itself: it is in the dead letter's key already)."""
    return RecordError(
        f"a MongoDB _id of BSON type {bson_type(text)} cannot be stored in {table}'s "
        f"{column_type} column {column} (mapping.id_type: text gives new tables a text _id, "
        "which holds every id)", code=CODE,
    )


def is_id(value: Any) -> TypeGuard[IdText]:
    return isinstance(value, IdText)


__all__ = ["CODE", "bson_type", "column_type", "converter", "is_id", "mismatch"]
