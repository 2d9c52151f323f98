"""Python values -> PostgreSQL column types, widening and narrowing rules.

The decoder produces plain Python values; each value has a *natural* type here.
A column starts as the natural type of the first non-null value seen; later values
either fit, widen the column (a safe, lossless ALTER), or are narrowing and go to
the overflow column.

Work is done a column at a time (`target_type`, `adapt_column`): the common case, where
every value of a batch has a type the column takes as it is, costs a few C-level passes
over the column instead of a Python call per value.

How values are written as JSON (jsonb columns, the overflow) is `sink.postgres.jsonb`.

NUL characters: PostgreSQL's ``text`` and ``jsonb`` cannot hold U+0000. A string (or a
document containing one) with a NUL is stored in its column with the NULs removed, and its
exact original is kept in ``_cartridge_overflow`` under the column's name as
``{"$json": "<JSON text of the original value>"}`` (``json.loads`` of that text gives the
value back; the ``\\u0000`` escapes in it are plain characters to PostgreSQL). Inside
partial updates of nested paths (``a.b``) a NUL is removed and the removal is counted as an
overflow warning, without an exact copy.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sink.postgres.dates import far_date_fits

# Re-exported: the writer and the statements take the JSON rendering from here.
from sink.postgres.jsonb import escaped as escaped
from sink.postgres.jsonb import has_nul as has_nul
from sink.postgres.jsonb import overflow_text as overflow_text
from sink.postgres.jsonb import strip_nul as strip_nul
from sink.postgres.jsonb import to_json_text as to_json_text
from sink.postgres.schema_types import (
    adapt_array,
    adapt_interval,
    adapt_text,
    base_of,
    fits_real,
    from_text,
    outgrown,
    travels_as_text,
)
from sink.records import Binary, BitString, BsonUuid, Int64, ObjectId, Point, TemporalText

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
TIMETZ = "time with time zone"  # io.debezium.time.ZonedTime: a time with its offset
INTERVAL = "interval"
BYTEA = "bytea"
UUID = "uuid"
BIT_VARYING = "bit varying"  # Debezium Bits: the schema's hint gives its length
POINT = "point"

_NUMERIC_RANK = {INTEGER: 0, BIGINT: 1, NUMERIC: 3}
_FLOAT_RANK = {REAL: 0, DOUBLE: 1}
_NONE = type(None)


def natural_type(value: Any, *, varchar: bool = False) -> str | None:
    """The PostgreSQL type a value maps to; None for null (no column change)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if type(value) is Int64:
        # Before the isinstance(int) below: compiled (mypyc), a value narrowed to int is
        # unboxed, and its type is then int, never the subclass.
        return BIGINT  # the event says int64 ({"$numberLong"}), whatever the value
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
        return TIME if value.tzinfo is None else TIMETZ
    if isinstance(value, timedelta):
        return INTERVAL
    if isinstance(value, (bytes, bytearray, memoryview)):
        return BYTEA
    if isinstance(value, uuid.UUID):
        return UUID
    if type(value) is BitString:
        return BIT_VARYING
    if type(value) is Point:
        return POINT
    if type(value) is TemporalText:  # written as text with a cast (dates.exact_texts)
        return value.pg_type
    if type(value) is dict and (fits := far_date_fits(value)) is not None:
        return TIMESTAMPTZ if fits else None  # beyond PostgreSQL's range: decides nothing
    return JSONB  # dict, list, and the passthrough shapes (regex, timestamp, minKey...)


def varchar_len(pg_type: str) -> int | None:
    if pg_type.startswith("character varying(") and pg_type.endswith(")"):
        return int(pg_type[len("character varying(") : -1])
    return None


def is_textual(pg_type: str) -> bool:
    return pg_type == TEXT or varchar_len(pg_type) is not None


def widen(column: str, natural: str) -> str | None:
    """The type a column of type ``column`` widens to so it can hold ``natural``
    losslessly, or None when no change is needed or it would be a narrowing."""
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
    n, m = varchar_len(column), varchar_len(natural)
    if n is not None and natural == TEXT:
        return TEXT
    if n is not None and m is not None and m > n:
        return natural
    return None


def widen_for_value(column: str, value: Any, *, varchar: bool) -> str | None:
    """Like `widen`, for one value (a varchar(n) column widens to text for a longer string)."""
    return target_type(column, [value], varchar=varchar)


def _class_naturals(tp: type, values: list[Any], varchar: bool) -> list[str]:
    """The natural types of the values of Python type ``tp`` (ints by range, strings by length)."""
    if tp is Int64:  # bigint whatever the values (and compiled, `ints` below would hold
        return [BIGINT]  # them unboxed: their type int, not Int64)
    if issubclass(tp, int) and not issubclass(tp, bool):
        ints = [v for v in values if type(v) is tp]
        return [t for t in (natural_type(min(ints)), natural_type(max(ints))) if t]
    if issubclass(tp, str):
        longest = max(len(v) for v in values if type(v) is tp)
        short = varchar and longest <= VARCHAR_MAX
        return [f"character varying({VARCHAR_MAX})" if short else TEXT]
    if tp is dict:  # documents, and dates beyond Python's range (timestamptz): in order
        return [t for t in dict.fromkeys(natural_type(v) for v in values if type(v) is dict)
                if t]
    first = next(v for v in values if type(v) is tp)
    nat = natural_type(first, varchar=varchar)
    return [nat] if nat else []


def target_type(current: str | None, values: list[Any], *, varchar: bool) -> str | None:
    """The type a column must have to hold ``values``: a new column's type when ``current``
    is None, a widening of ``current``, or None when nothing changes. Distinct value types
    are taken in order of first appearance (a column that is an integer then a string stays
    an integer: the string is a narrowing and goes to overflow)."""
    types = set(map(type, values))
    types.discard(_NONE)
    if not types or current == JSONB:
        return None
    if current == REAL and fits_real(values):
        return None  # float32 values (a schema's float32): the real column holds them
    if current is not None:  # smallint, numeric(10,2)...: their base type's rules
        if (wider := outgrown(current, values)) is not None:
            return wider  # the source altered the column: never cut or round a value
        current = base_of(current)
    if current is not None and types <= _AS_IS.get(current, frozenset()):
        if current not in (INTEGER, BIGINT):
            return None  # already the column's type (a narrowing datetime goes to overflow)
        ints = [v for v in values if v is not None]
        lo, hi = INT32 if current == INTEGER else INT64
        if lo <= min(ints) and max(ints) <= hi:
            return None
    order: dict[type, None] = {}
    if len(types) == 1:
        order = dict.fromkeys(types)
    else:
        for v in values:
            if v is not None and type(v) not in order:
                order[type(v)] = None
                if len(order) == len(types):
                    break
    t = current
    for tp in order:
        if t in _FLOAT_RANK and issubclass(tp, int) and not issubclass(tp, bool):
            # A float column holds integers exactly up to its mantissa: beyond, numeric.
            big = max(abs(v) for v in values if type(v) is tp)
            if big > _EXACT_INT[DOUBLE]:
                t = NUMERIC
            elif big > _EXACT_INT[t]:
                t = DOUBLE
            continue
        n = varchar_len(t) if t is not None else None
        if n is not None and issubclass(tp, str):
            if max(len(v) for v in values if type(v) is tp) > n:
                t = TEXT  # a varchar(n) column takes longer strings as text
            continue
        for nat in _class_naturals(tp, values, varchar):
            if t is None:
                t = nat
            elif (w := widen(t, nat)) is not None:
                t = w
    return None if t == current else t


_FLOAT_WORDS = frozenset({"NaN", "Infinity", "-Infinity"})
_EXACT_INT = {REAL: 2**24, DOUBLE: 2**53}  # the largest integers a float type holds exactly
_NARROW = object()
NARROW: Any = _NARROW


def adapt(value: Any, column: str) -> Any:
    """Convert ``value`` for a column of type ``column``; `NARROW` if it cannot be held."""
    if value is None:
        return None
    if column == JSONB:
        return to_json_text(value)
    natural = natural_type(value)  # a far date in a timestamptz: as is (dates.exact_texts)
    if natural == column or (is_textual(column) and natural == TEXT):
        n = varchar_len(column)
        if n is not None and isinstance(value, str) and len(value) > n:
            return _NARROW
        return value
    if column == BIGINT and natural == INTEGER:
        return value
    if column == NUMERIC and natural in (INTEGER, BIGINT, DOUBLE, REAL):
        return value if isinstance(value, int) else _float_decimal(value)
    if column == DOUBLE and natural in (INTEGER, BIGINT) and abs(value) <= 2**53:
        return float(value)
    if column == REAL and isinstance(value, float) and _fits_real(value):
        return value
    if column in _FLOAT_RANK and type(value) is str and value in _FLOAT_WORDS:
        return float(value)  # JSON has no NaN/Infinity: Debezium sends them as these strings
    if column == REAL and natural in (INTEGER, BIGINT) and abs(value) <= _EXACT_INT[REAL]:
        return float(value)
    return _NARROW  # includes a naive timestamp for timestamptz: no instant, don't guess a zone


def _float_decimal(value: float) -> Decimal:
    # numeric holds NaN and, since PostgreSQL 14, ±Infinity: Decimal(inf) is Infinity.
    return Decimal(repr(value)) if math.isfinite(value) else Decimal(value)


def _fits_real(value: float) -> bool:
    # below the smallest double that rounds to float32 infinity (FLT_MAX prints 3.4028235e38)
    return math.isnan(value) or math.isinf(value) or abs(value) < 3.4028235677973366e38


# Python types a column takes as they are, once the column-wide checks below pass.
_AS_IS: dict[str, frozenset[type]] = {
    BOOLEAN: frozenset({bool}), INTEGER: frozenset({int}), BIGINT: frozenset({int, Int64}),
    NUMERIC: frozenset({int, Int64, Decimal}), DOUBLE: frozenset({float}),
    TEXT: frozenset({str, ObjectId}), TIMESTAMPTZ: frozenset({datetime}),
    TIMESTAMP: frozenset({datetime}), DATE: frozenset({date}), TIME: frozenset({time}),
    INTERVAL: frozenset({timedelta}), BYTEA: frozenset({bytes, Binary}),
    UUID: frozenset({uuid.UUID, BsonUuid}),
    TIMETZ: frozenset({time}),
}


def _fast(values: list[Any], column: str, types: set[type]) -> bool:
    """True when every value can be passed to a ``column`` column as it is."""
    allowed = _AS_IS.get(column)
    n = varchar_len(column)
    if allowed is None and n is not None:
        allowed = _AS_IS[TEXT]
    if allowed is None or not types <= allowed:
        return False
    if str in types:
        strs = [v for v in values if v is not None]
        if "\x00" in "".join(strs) or (n is not None and max(map(len, strs)) > n):
            return False
    elif int in types and column in (INTEGER, BIGINT):
        ints = [v for v in values if v is not None]
        lo, hi = INT32 if column == INTEGER else INT64
        return bool(lo <= min(ints) and max(ints) <= hi)
    elif datetime in types:
        aware = column == TIMESTAMPTZ
        return all((v.tzinfo is not None) is aware for v in values if v is not None)
    return True


def adapt_column(values: list[Any], column: str) -> tuple[list[Any], dict[int, Any]]:
    """Adapt one column's values for a ``column`` column. Returns the values to store and
    ``{row index: value kept in overflow}`` for the values the column cannot hold."""
    types = set(map(type, values))
    types.discard(_NONE)
    if not types:
        return values, {}
    if column.endswith("[]"):  # a native array (from the schema): as array literals
        return adapt_array(values)
    if column == INTERVAL:  # as text: exact microseconds, or the source's ISO 8601
        return adapt_interval(values)
    if from_text(column):  # inet, point, bit(n), money...: as text, cast in the statement
        return adapt_text(values, column)
    column = base_of(column)  # smallint, numeric(10,2)...: their base type's rules
    if column == JSONB:
        return _adapt_json(values)
    if _fast(values, column, types):
        return values, {}
    if column == DOUBLE and types == {int} and all(abs(v) <= 2**53 for v in values if v):
        return [None if v is None else float(v) for v in values], {}
    out: list[Any] = []
    overflow: dict[int, Any] = {}
    for i, v in enumerate(values):
        stored = adapt(v, column)
        if stored is _NARROW:
            overflow[i] = v
            stored = None
        elif isinstance(stored, str) and "\x00" in stored:
            overflow[i] = escaped(v)
            stored = stored.replace("\x00", "")
        out.append(stored)
    return out, overflow


def _adapt_json(values: list[Any]) -> tuple[list[Any], dict[int, Any]]:
    texts = [None if v is None else to_json_text(v) for v in values]
    if "\\u0000" not in "\n".join(t for t in texts if t is not None):
        return texts, {}
    overflow: dict[int, Any] = {}
    for i, v in enumerate(values):
        t = texts[i]
        if t is not None and "\\u0000" in t and has_nul(v):
            overflow[i] = escaped(v)
            texts[i] = to_json_text(strip_nul(v))
    return texts, overflow


def array_cast(pg_type: str) -> str:
    """The array type used to pass a column's values with unnest()."""
    return f"{element_type(pg_type)}[]"


def element_type(pg_type: str) -> str:
    """The type a column's values travel as (jsonb as JSON text, cast in the statement)."""
    return "text" if pg_type == JSONB or travels_as_text(pg_type) else pg_type


def distinct_types(values: Iterable[Any]) -> set[type]:
    return set(map(type, values)) - {_NONE}
