"""The MongoDB property test's expectations about column types: the type the README gives
each BSON value, its documented widenings, and each field's column type from the events
in partition order (`expected_types`)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Binary, Code, Decimal128, Int64, json_util
from bson import ObjectId as BsonObjectId
from bson.datetime_ms import DatetimeMS
from bson.json_util import JSONOptions

from sink.postgres.dates import PG_MS_END, PG_MS_MIN
from sink.postgres.names import column_name

_INTS = {"integer": 0, "bigint": 1, "numeric": 2}


def natural(v: Any) -> str | None:
    """The column type the README gives a BSON value (None: it decides no type)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, Int64):
        return "bigint"  # the event states int64 (canonical); relaxed reads as a plain int
    if isinstance(v, int):
        return "integer" if -(2**31) <= v < 2**31 else "bigint"
    if isinstance(v, float):
        return "double precision"
    if isinstance(v, Decimal128):
        return "numeric"
    if (isinstance(v, str) and not isinstance(v, Code)) or isinstance(v, BsonObjectId):
        return "text"
    if isinstance(v, datetime):
        return "timestamp with time zone"
    if isinstance(v, DatetimeMS):  # beyond PostgreSQL's range: no type, kept in overflow
        return "timestamp with time zone" if PG_MS_MIN <= int(v) < PG_MS_END else None
    if as_uuid(v) is not None:
        return "uuid"
    if isinstance(v, bytes):
        return "bytea"
    return "jsonb"


def widened(column: str | None, v: Any) -> str | None:
    """The README's widenings (integer → bigint → numeric, integers and doubles → numeric
    where one cannot hold the other, text → jsonb); any other change is a narrowing."""
    new = natural(v)
    if column is None or new is None or new == column:
        return column or new
    if column in _INTS and new in _INTS:
        return max(column, new, key=_INTS.__getitem__)
    if column in ("integer", "bigint") and new == "double precision":
        return "numeric"
    if column == "double precision" and new == "numeric":
        return "numeric"
    if column == "double precision" and new in _INTS:
        return "numeric" if abs(v) > 2**53 else column
    if column == "text" and new == "jsonb":
        return "jsonb"
    return column


def expected_types(messages: list[tuple[bytes, bytes | None]],
                   mode: JSONOptions) -> dict[str, str]:
    """Each field's column type from its values in partition order (the first decides,
    later ones widen), whatever the batching: top-level values of documents and partial
    updates; a dotted path (or a truncated array) counts as a document for its root."""
    types: dict[str, str | None] = {}
    for _, value in messages:
        if value is None:
            continue
        event = json.loads(value)
        if event.get("after") is not None:
            doc = json_util.loads(event["after"], json_options=mode)
            doc.pop("_id")
        elif event["op"] == "u":
            desc = event["updateDescription"]
            sets = json_util.loads(desc["updatedFields"] or "{}", json_options=mode)
            doc = {p: v for p, v in sets.items() if "." not in p}
            paths = [*sets, *(desc["removedFields"] or []),
                     *(t["field"] for t in desc["truncatedArrays"] or [])]
            for p in paths:
                if "." in p or p in doc or any(t["field"] == p for t in
                                                desc["truncatedArrays"] or []):
                    doc.setdefault(p.split(".")[0], {})
        else:
            continue
        for f, v in doc.items():
            col = column_name(f)
            types[col] = widened(types.get(col), v)
    return {c: t for c, t in types.items() if t is not None}


def as_uuid(v: Any) -> uuid.UUID | None:
    """The UUID a value is: a binary of subtype 4 holding 16 bytes (README: uuid)."""
    if isinstance(v, Binary) and v.subtype == 4 and len(v) == 16:
        return uuid.UUID(bytes=bytes(v))
    return None


def epoch_ms(v: datetime | DatetimeMS) -> int:
    if isinstance(v, DatetimeMS):
        return int(v)
    return (v - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
