"""Dates, times and timestamps that asyncpg's binary codecs cannot carry exactly.

Three kinds, all written as text with a cast instead (`exact_texts`, then the writer's
fix-up statement `statements.exact_values`), in the COPY and the statement paths alike:

- Python's extremes: asyncpg encodes ``date(1, 1, 1)``/``date(9999, 12, 31)`` and the
  timestamps ``0001-01-01T00:00:00`` / ``9999-12-31T23:59:59.999999`` (naive, or aware
  with that UTC instant) as ``-infinity``/``infinity``. ``0001-01-01T00:00:00Z`` is Go's
  zero ``time.Time`` and .NET's ``DateTime.MinValue``: common in real data.
- MongoDB dates outside Python's years 1-9999: the decoder keeps them as
  ``{"$date": {"$numberLong": "<epoch ms>"}}`` (see `sink.decode.extjson`). PostgreSQL's
  ``timestamptz`` holds 4713 BC to 294276 AD, so those in that range are timestamps
  (their natural type is ``timestamptz``); beyond it they have no column type (they never
  decide one) and are kept in ``_cartridge_overflow``.
- Values Python's types cannot hold at all (`sink.records.TemporalText`, from the
  decoder): ``infinity``/``-infinity``, BC dates and timestamps, years past 9999 (up to
  PostgreSQL's 5874897 AD for a date, 294276 AD for a timestamp), ``24:00:00``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sink.postgres.schema_types import base_of
from sink.records import TemporalText, civil_from_days

DATE = "date"
TIMESTAMP = "timestamp without time zone"
TIMESTAMPTZ = "timestamp with time zone"
TIME = "time without time zone"
TIMETZ = "time with time zone"
DATETIME_TYPES = (DATE, TIMESTAMP, TIMESTAMPTZ, TIME, TIMETZ)

# PostgreSQL's timestamp range in Unix epoch milliseconds: [4714-11-24 BC, 294277-01-01).
PG_MS_MIN = -210_866_803_200_000
PG_MS_END = 9_224_318_016_000_000

_DATE_EDGES = (date.min, date.max)
_NAIVE_EDGES = (datetime.min, datetime.max)
_AWARE_EDGES = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


def far_date_ms(value: Any) -> int | None:
    """The epoch milliseconds of a decoded out-of-Python-range MongoDB date, else None."""
    if type(value) is dict and len(value) == 1:
        inner = value.get("$date")
        if type(inner) is dict and len(inner) == 1:
            ms = inner.get("$numberLong")
            if type(ms) is str:
                try:
                    return int(ms)
                except ValueError:
                    return None
    return None


def far_date_fits(value: Any) -> bool | None:
    """None: not a far date; else whether PostgreSQL's timestamptz can hold it."""
    ms = far_date_ms(value)
    if ms is None:
        return None
    return PG_MS_MIN <= ms < PG_MS_END


def far_date_text(ms: int) -> str:
    """PostgreSQL input text for an epoch-milliseconds instant in any year it holds."""
    days, rest = divmod(ms, 86_400_000)
    year, month, day = civil_from_days(days)
    secs, milli = divmod(rest, 1000)
    clock = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{milli:03d}+00"
    if year <= 0:  # astronomical year 0 is 1 BC
        return f"{1 - year:04d}-{month:02d}-{day:02d} {clock} BC"
    return f"{year:04d}-{month:02d}-{day:02d} {clock}"


def _edge(value: Any, column: str) -> bool:
    if column in (TIME, TIMETZ) or value.year not in (1, 9999):
        return False
    if column == DATE:
        return type(value) is date and value in _DATE_EDGES
    if not isinstance(value, datetime):
        return False
    if value.tzinfo is None:
        return value in _NAIVE_EDGES
    try:
        return value in _AWARE_EDGES
    except OverflowError:
        return False


def key_as_text(column: str) -> bool:
    """A key column of a date/time type: its key values travel as text, always (a key has
    no fix-up statement after the write, as a data column has: `exact_texts`)."""
    return base_of(column) in DATETIME_TYPES


def key_texts(values: list[Any]) -> list[str | None]:
    """Key values of a `key_as_text` column as PostgreSQL input text (ISO 8601 for Python's
    dates and times, which PostgreSQL reads exactly in every year)."""
    return [None if v is None else v.text if type(v) is TemporalText else v.isoformat()
            for v in values]


def exact_texts(values: list[Any], column: str) -> dict[int, str]:
    """``{row index: input text}`` of the values of a date/time column that must be written
    as text (see the module doc); empty for other columns."""
    column = base_of(column)  # timestamp(3), time(0)...: the same values
    if column not in DATETIME_TYPES:
        return {}
    if column in (TIME, TIMETZ) and TemporalText not in set(map(type, values)):
        return {}  # the common case: every time of day is a Python time
    out: dict[int, str] = {}
    for i, v in enumerate(values):
        if v is None:
            continue
        if type(v) is TemporalText:
            out[i] = v.text
        elif type(v) is dict:
            ms = far_date_ms(v)
            if ms is not None and column == TIMESTAMPTZ:
                out[i] = far_date_text(ms)
        elif _edge(v, column):
            out[i] = v.isoformat()
    return out
