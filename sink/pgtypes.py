"""Python values -> PostgreSQL column types, widening and narrowing rules.

The decoder produces plain Python values; each value has a *natural* type here.
A column starts as the natural type of the first non-null value seen; later values
either fit, widen the column (a safe, lossless ALTER), or are narrowing and go to
the overflow column.
"""

from __future__ import annotations

import base64
import math
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
VARCHAR_MAX = 255

INTEGER = "integer"
BIGINT = "bigint"
NUMERIC = "numeric"
REAL = "real"
DOUBLE = "double precision"
TEXT = "text"
JSONB = "jsonb"
BOOLEAN = "boolean"
TIMESTAMPTZ = "timestamp with time zone"
TIMESTAMP = "timestamp without time zone"
DATE = "date"
TIME = "time without time zone"
INTERVAL = "interval"
BYTEA = "bytea"
UUID = "uuid"

_NUMERIC_RANK = {INTEGER: 0, BIGINT: 1, NUMERIC: 3}
_FLOAT_RANK = {REAL: 0, DOUBLE: 1}


def natural_type(value: Any, *, varchar: bool = False) -> str | None:
    """The PostgreSQL type a value maps to; None for null (no column change)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        if INT32[0] <= value <= INT32[1]:
            return INTEGER
        if INT64[0] <= value <= INT64[1]:
            return BIGINT
        return NUMERIC
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, Decimal):
        return NUMERIC
    if isinstance(value, str):
        if varchar and len(value) <= VARCHAR_MAX:
            return f"character varying({VARCHAR_MAX})"
        return TEXT
    if isinstance(value, datetime):
        return TIMESTAMPTZ if value.tzinfo is not None else TIMESTAMP
    if isinstance(value, date):
        return DATE
    if isinstance(value, time):
        return TIME
    if isinstance(value, timedelta):
        return INTERVAL
    if isinstance(value, (bytes, bytearray, memoryview)):
        return BYTEA
    if isinstance(value, uuid.UUID):
        return UUID
    return JSONB  # dict, list, and the passthrough shapes (regex, timestamp, minKey...)


def varchar_len(pg_type: str) -> int | None:
    if pg_type.startswith("character varying(") and pg_type.endswith(")"):
        return int(pg_type[len("character varying(") : -1])
    return None


def is_textual(pg_type: str) -> bool:
    return pg_type == TEXT or varchar_len(pg_type) is not None


def widen(column: str, natural: str) -> str | None:
    """The type a column of type ``column`` widens to so it can hold ``natural``
    losslessly, or None when that would be a narrowing."""
    if column == natural:
        return None
    if column in _NUMERIC_RANK and natural in _NUMERIC_RANK:
        return natural if _NUMERIC_RANK[natural] > _NUMERIC_RANK[column] else None
    if column in (INTEGER, BIGINT) and natural in (DOUBLE, REAL):
        return NUMERIC  # both exact in numeric; double precision would round big ints
    if column in _FLOAT_RANK and natural in _FLOAT_RANK:
        return natural if _FLOAT_RANK[natural] > _FLOAT_RANK[column] else None
    if column in _FLOAT_RANK and natural == NUMERIC:
        return NUMERIC
    if is_textual(column) and natural == JSONB:
        return JSONB
    if varchar_len(column) is not None and is_textual(natural):
        return None  # decided by length in `widen_for_value`
    return None


def widen_for_value(column: str, value: Any, *, varchar: bool) -> str | None:
    """Like `widen`, but also widens varchar(n) when a longer string arrives."""
    n = varchar_len(column)
    if n is not None and isinstance(value, str) and len(value) > n:
        return TEXT
    natural = natural_type(value, varchar=varchar)
    if natural is None or natural == column:
        return None
    if n is not None and natural == TEXT:
        return None
    return widen(column, natural)


_NARROW = object()


def adapt(value: Any, column: str) -> Any:
    """Convert ``value`` for a column of type ``column``; `NARROW` if it cannot be held."""
    if value is None:
        return None
    if column == JSONB:
        return to_json_text(value)
    natural = natural_type(value)
    if natural == column or (is_textual(column) and natural == TEXT):
        n = varchar_len(column)
        if n is not None and isinstance(value, str) and len(value) > n:
            return _NARROW
        return value
    if column == BIGINT and natural == INTEGER:
        return value
    if column == NUMERIC and natural in (INTEGER, BIGINT, DOUBLE, REAL):
        return value if isinstance(value, int) else Decimal(repr(value))
    if column == DOUBLE and natural in (INTEGER, BIGINT) and abs(value) <= 2**53:
        return float(value)
    if column == REAL and isinstance(value, float) and _fits_real(value):
        return value
    if column == TIMESTAMPTZ and natural == TIMESTAMP:
        return _NARROW  # a naive timestamp has no instant; keep it, don't guess a zone
    return _NARROW


NARROW: Any = _NARROW


def _fits_real(value: float) -> bool:
    return math.isnan(value) or math.isinf(value) or abs(value) < 3.4e38


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if value.is_finite():
            return orjson.Fragment(str(value).encode())  # exact number, not a float
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int):  # beyond 64 bits
        return orjson.Fragment(str(value).encode())
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _json_clean(value: Any) -> Any:
    # orjson writes NaN/Infinity as null; JSON has no such numbers, so keep them as strings.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value < 2**64:
        return orjson.Fragment(str(value).encode())
    if isinstance(value, dict):
        return {str(k): _json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_clean(v) for v in value]
    return value


def to_json_text(value: Any) -> str:
    """Render a value as JSON text for a jsonb column: timestamps ISO-8601, decimals exact,
    bytes base64, UUIDs as strings, int64 exact."""
    try:
        raw = orjson.dumps(value, default=_json_default)
    except (TypeError, orjson.JSONEncodeError):
        raw = orjson.dumps(_json_clean(value), default=_json_default)
    else:
        if b"null" in raw and _has_nonfinite(value):
            raw = orjson.dumps(_json_clean(value), default=_json_default)
    return raw.decode("utf-8")


def _has_nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_nonfinite(v) for v in value)
    return False


def column_ddl_type(pg_type: str) -> str:
    """Spelling of a catalog type name usable in DDL and casts."""
    return pg_type


def array_cast(pg_type: str) -> str:
    """The array type used to pass a column's values with unnest()."""
    if pg_type == JSONB:
        return "text[]"  # passed as JSON text, cast per element
    return f"{pg_type}[]"
