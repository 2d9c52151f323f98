"""Dates, times and timestamps by their Connect logical type (`sink.decode.connect`).

Values Python's ``date``/``time``/``datetime`` hold become those; the others PostgreSQL
holds become a `TemporalText` (its input text), so every value the source held lands
exactly: years before 1 and after 9999 (a date up to 5874897 AD, a timestamp up to 294276
AD), ``24:00:00``, and PostgreSQL's ``infinity``/``-infinity``.

How Debezium 3.6.1's PostgreSQL connector writes the infinities (observed with the real
connector, tests/e2e/debezium; they are its constants, not a calendar computation):

- ``date``: its ``±infinity`` LocalDates as day counts. Streaming: ``infinity`` is
  ``-5877611-06-21`` (a sign mistake Debezium later fixed to ``+5877611-06-21``) and
  ``-infinity`` ``-5877611-06-22``. The snapshot reads pgjdbc's sentinel instants through
  ``java.sql.Date``: ``-622191234`` and ``-625821272``. All are outside PostgreSQL's date
  range (4714-11-24 BC .. 5874897-12-31), so none can be a real date.
- timestamps: pgjdbc's sentinel milliseconds used as microseconds (``9223372036825200000``,
  ``-9223372036832400000``), divided by 1,000 for ``timestamp(0..3)``. The negative one is
  outside PostgreSQL's range; the positive one is the instant 294247-01-10 04:00:25.2 AD,
  read as ``infinity`` as Debezium means it.
- ``timestamptz``: the strings ``"infinity"`` and ``"-infinity"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from sink.decode.common import UTC, fail, show
from sink.decode.schema import SchemaNode
from sink.records import Micros, TemporalText

DATE = "date"
TIME = "time without time zone"
TIMETZ = "time with time zone"
TIMESTAMP = "timestamp without time zone"
TIMESTAMPTZ = "timestamp with time zone"

_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_DATE = date(1970, 1, 1)
_DAY_US = 86_400_000_000
# Python's date and datetime, and PostgreSQL's date and timestamp ranges, from 1970-01-01
_PY_DAYS = (-719_162, 2_932_896)
_PY_US = (-62_135_596_800_000_000, 253_402_300_799_999_999)
_PG_DAYS = (-2_440_588, 2_145_042_905)
_PG_US = (-210_866_803_200_000_000, 9_224_318_015_999_999_999)

_DATE_INFINITY = {
    -2_147_472_692: "infinity", 2_146_033_979: "infinity", -622_191_234: "infinity",
    -2_147_472_691: "-infinity", -625_821_272: "-infinity",
}
_TS_INFINITY = {9_223_372_036_825_200_000: "infinity", -9_223_372_036_832_400_000: "-infinity"}

# ISO-8601 as Java prints it past year 9999 (+294276-...), and for 1 BC and before
# (0000-..., -0044-...): Python's fromisoformat takes neither.
_ISO_FAR = re.compile(r"([+-]?\d{4,})-(\d\d)-(\d\d)T(\d\d:\d\d:\d\d(?:\.\d{1,9})?)"
                      r"(Z|[+-]\d\d:\d\d(?::\d\d)?)")
_MIDNIGHT_END = re.compile(r"24:00(?::00(?:\.0*)?)?(Z|[+-]\d\d(?::?\d\d)?)?")


def _bad(msg: str) -> Exception:
    return fail("bad_value", msg)


def to_date(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
    if type(v) is int:
        if _PY_DAYS[0] <= v <= _PY_DAYS[1]:
            return _EPOCH_DATE + timedelta(days=v)
        inf = _DATE_INFINITY.get(v)
        if inf is not None:
            return TemporalText(DATE, inf)
        if _PG_DAYS[0] <= v <= _PG_DAYS[1]:
            return TemporalText.of_days(v)
        raise _bad(f"date {v} days is out of PostgreSQL's range")
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    raise _bad(f"expected days since epoch, got {show(v)}")


def time_in(mul: int, div: int) -> Callable[[Any, SchemaNode, int, bool], Any]:
    def conv(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
        if isinstance(v, time | timedelta):
            return v
        if type(v) is not int or abs(v) > 2**63:
            raise _bad(f"expected a time of day as an integer, got {show(v)}")
        us = v * mul // div
        if 0 <= us < _DAY_US:
            secs, micro = divmod(us, 1_000_000)
            return time(secs // 3600, secs // 60 % 60, secs % 60, micro)
        if us == _DAY_US:  # PostgreSQL's time holds 24:00:00; Python's time stops before
            return TemporalText(TIME, "24:00:00")
        return Micros(microseconds=us)  # MySQL TIME: negative or beyond 24 h

    return conv


def timestamp_in(mul: int, div: int) -> Callable[[Any, SchemaNode, int, bool], Any]:
    def conv(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
        if isinstance(v, datetime):
            if aware:
                return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
            return v if v.tzinfo is None else v.astimezone(UTC).replace(tzinfo=None)
        if type(v) is not int:
            raise _bad(f"expected an epoch timestamp integer, got {show(v)}")
        us = v * mul // div
        if _PY_US[0] <= us <= _PY_US[1]:
            dt = _EPOCH_NAIVE + timedelta(microseconds=us)
            return dt.replace(tzinfo=UTC) if aware else dt
        inf = _TS_INFINITY.get(us)
        if inf is not None:
            return TemporalText(TIMESTAMPTZ if aware else TIMESTAMP, inf)
        if _PG_US[0] <= us <= _PG_US[1]:
            return TemporalText.of_micros(us, aware)
        raise _bad(f"timestamp {v} is out of PostgreSQL's range")

    return conv


def zoned_timestamp(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
    if isinstance(v, datetime):
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)
    if type(v) is not str:
        raise _bad(f"expected an ISO-8601 timestamp string, got {show(v)}")
    if v in ("infinity", "-infinity"):
        return TemporalText(TIMESTAMPTZ, v)
    try:
        dt = datetime.fromisoformat(v)
        if dt.tzinfo is None:
            return dt.replace(tzinfo=UTC)
        dt.astimezone(UTC)  # asyncpg writes the UTC instant: Python must hold it too
        return dt
    except (ValueError, OverflowError):  # 0001-01-01T00:00:00+01:00 is in 1 BC in UTC
        far = _far_iso(v)
        if far is None:
            raise _bad(f"not an ISO-8601 timestamp PostgreSQL holds: {show(v)}") from None
        return far


def _far_iso(v: str) -> TemporalText | None:
    """A zoned ISO-8601 timestamp in a year Python's datetime has not, as PostgreSQL's text."""
    m = _ISO_FAR.fullmatch(v)
    if m is None:
        return None
    year, month, day, clock, zone = m.groups()
    y = int(year)
    if not (-4713, 11, 24) <= (y, int(month), int(day)) <= (294276, 12, 31):
        return None  # beyond PostgreSQL's timestamptz (4714-11-24 BC .. 294276-12-31)
    zone = "+00" if zone == "Z" else zone
    if y <= 0:  # astronomical year 0 is 1 BC; PostgreSQL reads the era last
        return TemporalText(TIMESTAMPTZ, f"{1 - y:04d}-{month}-{day} {clock}{zone} BC")
    return TemporalText(TIMESTAMPTZ, f"{y:04d}-{month}-{day} {clock}{zone}")


def zoned_time(v: Any, node: SchemaNode, limit: int, aware: bool) -> Any:
    if type(v) is not str:
        return v if isinstance(v, time) else _raise(f"expected time with offset, got {show(v)}")
    try:
        return time.fromisoformat(v)
    except ValueError:
        m = _MIDNIGHT_END.fullmatch(v)
        if m is None:
            raise _bad(f"not an ISO-8601 time with offset: {show(v)}") from None
        zone = m.group(1) or "Z"
        return TemporalText(TIMETZ, "24:00:00" + ("+00" if zone == "Z" else zone))


def _raise(msg: str) -> Any:
    raise _bad(msg)
