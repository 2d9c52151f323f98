"""The values that flow between the decoder, the batcher and the PostgreSQL writer.

A `Record` is one decoded change for one row. The decoder builds it from a Kafka
message (pure, no I/O); the consumer stamps the Kafka coordinates on it; the
batcher reduces records per key; the writer applies them.

The BSON value types (`ObjectId`, `Binary`, `Int64`, `BsonUuid`, and a date's
`BSON_UTC` zone) remember what a MongoDB value was where the plain type would forget:
they behave as ``str``, ``bytes``, ``int``, ``UUID`` and an aware UTC ``datetime``
everywhere, and tell the writer which column type (int64 → bigint) and which JSON
rendering (extended JSON inside jsonb) the value has. Relational values stay plain.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
from mypy_extensions import mypyc_attr


@mypyc_attr(native_class=False)
class ObjectId(str):
    """A BSON ObjectId: its 24 lowercase hex digits, marked as an ObjectId."""

    __slots__ = ()


@mypyc_attr(native_class=False)
class IdText(str):
    """The canonical text of a MongoDB ``_id`` (``decode.extjson_key``), as a key value.

    It equals and hashes as the plain text, so grouping by key is unchanged; the mark tells
    the writer the text is a MongoDB id whose BSON type the text spells (an ObjectId's hex,
    ``{"$numberLong":...}``...), so a new table's ``_id`` column can take that type."""

    __slots__ = ()


@mypyc_attr(native_class=False)
class Binary(bytes):
    """BSON binary data of any subtype but a 16-byte UUID (subtype 4), which is a `BsonUuid`."""

    subtype: int

    def __new__(cls, data: bytes, subtype: int) -> Binary:
        obj = bytes.__new__(cls, data)
        obj.subtype = subtype
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (Binary, (bytes(self), self.subtype))

    def __repr__(self) -> str:
        return f"Binary({bytes(self)!r}, {self.subtype})"


@mypyc_attr(native_class=False)
class Int64(int):
    """An integer the event states is a BSON int64 (``{"$numberLong": ...}``)."""

    __slots__ = ()


# A BSON date is a plain ``datetime`` in this zone: UTC under its own name. A datetime
# subclass would cost a Python-level constructor call per date on the decoder's hot path;
# the zone costs nothing (``epoch + timedelta`` keeps it) and survives pickling by name.
BSON_UTC_NAME = "UTC (BSON)"
BSON_UTC = timezone(timedelta(0), BSON_UTC_NAME)


def is_bson_date(value: datetime) -> bool:
    """True for a datetime the MongoDB decoder made from a BSON date."""
    return value.tzinfo is BSON_UTC or value.tzname() == BSON_UTC_NAME


def bson_date_json(value: datetime) -> bytes:
    """A BSON date's jsonb rendering, ``{"$date":"2024-01-15T10:30:00.123Z"}`` (``...:00Z``
    without milliseconds). Here so the writer and the decoder's `DocText` share one text."""
    # orjson's own text (C, several times faster than isoformat): "...:05Z" or
    # "...:05.123000Z"; a BSON date has whole milliseconds, so drop the last 3 digits.
    text = orjson.dumps(value, option=orjson.OPT_UTC_Z)
    if len(text) > 22:
        text = text[:-5] + b'Z"'
    return b'{"$date":' + text + b"}"


@mypyc_attr(native_class=False)
class BsonUuid(uuid.UUID):
    """A BSON binary of subtype 4 holding 16 bytes: a UUID."""

    __slots__ = ()


# A path into a document: ("address", "city") for MongoDB's "address.city".
# A one-element path names a top-level column.
Path = tuple[str, ...]


class Kind(enum.Enum):
    """What a record does to its row."""

    UPSERT = "upsert"  # a full document / row image: replaces the row
    PATCH = "patch"  # a partial update: set / unset / truncate paths
    DELETE = "delete"  # a delete (op=d) or a tombstone for the key
    TRUNCATE = "truncate"  # relational op=t: empties the table


@dataclass(slots=True)
class Patch:
    """A partial update, applied in MongoDB's order: truncate, then set, then unset."""

    set: dict[Path, Any] = field(default_factory=dict)
    unset: list[Path] = field(default_factory=list)
    truncate: dict[Path, int] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.set or self.unset or self.truncate)


@dataclass(slots=True)
class Record:
    """One change to one row.

    ``schema``/``table`` come from the event's ``source`` block (never from the
    topic name). They are ``None`` only for a tombstone, whose value is null: the
    pipeline resolves its table from earlier events of the same topic.

    ``key`` maps primary-key column names to canonical values (MongoDB: ``{"_id": str}``).

    ``position`` is the source position (MongoDB ``(ts_ms, ord, txn order)``,
    PostgreSQL ``(lsn,)``, MySQL ``(file, pos, row)``, else ``(ts_ms,)``). The
    Kafka offset is appended by the writer as a tie-breaker. ``()`` means unknown
    (tombstones), which never passes the ordering guard on its own.
    """

    schema: str | None
    table: str | None
    key: dict[str, Any]
    kind: Kind
    op: str  # what the source said: c r u d t, or "tombstone"
    values: dict[str, Any] | None = None
    patch: Patch | None = None
    position: tuple[int, ...] = ()
    source_ts: datetime | None = None
    # Kafka coordinates, stamped by the consumer; None when written through the library API.
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    size: int = 0  # bytes of the original message, for backpressure accounting
    # A tombstone's other readings of its key: {"id": "k2"} is a relational key, or a
    # MongoDB id that ExtractNewDocumentState rewrote to its plain value ({"_id": "k2"});
    # the table the key's records went to decides which one applies.
    alt_keys: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    # A table without a primary key (``key == {}``): how the writer applies the record
    # (``match_before``: updates and deletes find their row by ``before``; ``append``: every
    # event is a row of a change log), and the row image before the change.
    keyless: str | None = None
    before: dict[str, Any] | None = None
    # Field -> the PostgreSQL type its event schema says (Connect JSON or Avro), for the
    # writer to create the column with; None without a schema (types come from values).
    column_types: dict[str, str] | None = None


@mypyc_attr(native_class=False)
class JsonText:
    """A JSON value as the exact text the source sent (Debezium's ``io.debezium.data.Json``):
    written into jsonb as it is, so numbers never go through a float and JSON ``null`` stays
    distinct from SQL NULL. (Not a dataclass: orjson would serialise it as an object.)
    A Python class under mypyc too: the reducer deep-copies values, and copy rebuilds an
    instance with ``cls.__new__(cls)``, which runs a compiled class's ``__init__``."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return type(other) is JsonText and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"JsonText({self.text!r})"


@mypyc_attr(native_class=False)
class DocText:
    """A MongoDB sub-document or array (a top-level field's value) as its jsonb text, ready
    to store: the decoder renders it once, in C, instead of building BSON-typed values the
    writer would render again (bench/README.md, "Raw JSON passthrough"). The text is what
    `sink.postgres.jsonb.to_json_text` gives for the typed value, and holds no NUL.
    `value` is the document back as plain JSON values (BSON types as their wrappers,
    numbers so they render as they were: see `_json_number`), for code that edits it (a
    partial update folded into it) or stores its items (an array column)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def value(self) -> Any:
        return json.loads(self.text, parse_float=_json_number)

    def __eq__(self, other: object) -> bool:
        return type(other) is DocText and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"DocText({self.text!r})"


def _json_number(text: str) -> float | Decimal:
    """A `DocText` number with a fraction or an exponent as the typed walk had it: a double
    (orjson wrote its shortest text, which it writes again) is a float, as an array column
    takes it; any other text (a Decimal128's digits and scale) stays an exact Decimal."""
    f = float(text)
    return f if orjson.dumps(f) == text.encode() else Decimal(text)


@mypyc_attr(native_class=False)
class BitString:
    """A bit string (Debezium's ``io.debezium.data.Bits``) as its bits, first bit first:
    ``"101010101010"``. Written to a ``bit``/``bit varying`` column as that text."""

    __slots__ = ("bits",)

    def __init__(self, bits: str) -> None:
        self.bits = bits

    def __eq__(self, other: object) -> bool:
        return type(other) is BitString and other.bits == self.bits

    def __hash__(self) -> int:
        return hash(self.bits)

    def __repr__(self) -> str:
        return f"BitString({self.bits!r})"


@mypyc_attr(native_class=False)
class Point:
    """A PostgreSQL ``point`` (Debezium's ``io.debezium.data.geometry.Point``)."""

    __slots__ = ("x", "y")

    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return type(other) is Point and (other.x, other.y) == (self.x, self.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))

    def __repr__(self) -> str:
        return f"Point({self.x!r}, {self.y!r})"


@dataclass(slots=True, frozen=True)
class Skip:
    """A message that is understood but carries no row change (heartbeat, BEGIN/END, DDL...)."""

    reason: str


@dataclass(slots=True)
class ColumnSchema:
    name: str
    pg_type: str
    nullable: bool = True


@dataclass(slots=True)
class TableSchema:
    """The shape of a destination table as the sink knows it."""

    name: str
    columns: list[ColumnSchema]
    primary_key: list[str]


@dataclass(slots=True)
class SchemaChange:
    """An evolution step (the seed's type): ``add_column``, ``widen_column``."""

    schema_name: str
    table_name: str
    change_type: str
    details: dict[str, Any] = field(default_factory=dict)


@mypyc_attr(native_class=False)
class Micros(timedelta):
    """A duration the source counted in microseconds (Debezium ``MicroDuration``, a MySQL
    TIME past 24 hours). asyncpg encodes an interval from ``days``/``seconds``/
    ``microseconds``: here days are 0 and every microsecond is in the time part, so
    ``-02:00:00`` and ``36:00:00`` land as such, not as ``-1 days +22:00:00`` and
    ``1 day 12:00:00`` (equal for PostgreSQL's comparison, not in date arithmetic)."""

    __slots__ = ()

    @property
    def days(self) -> int:
        return 0

    @property
    def seconds(self) -> int:
        return (self // timedelta(microseconds=1) - self.microseconds) // 1_000_000


@mypyc_attr(native_class=False)
class TemporalText:
    """A date, time or timestamp PostgreSQL holds but Python's types cannot, as the input text
    PostgreSQL reads exactly: ``infinity``/``-infinity``, years before 1 (``0044-03-15 BC``)
    or after 9999, the time ``24:00:00``. ``pg_type`` is its column type (``date``, ``time
    without time zone``, ``timestamp with time zone``...). asyncpg has no exact encoding for
    these, so the writer sends the text with a cast (`sink.postgres.dates`)."""

    __slots__ = ("pg_type", "text")

    def __init__(self, pg_type: str, text: str) -> None:
        self.pg_type = pg_type
        self.text = text

    def __eq__(self, other: object) -> bool:
        return (type(other) is TemporalText and other.pg_type == self.pg_type
                and other.text == self.text)

    def __hash__(self) -> int:
        return hash((self.pg_type, self.text))

    def __repr__(self) -> str:
        return f"TemporalText({self.pg_type!r}, {self.text!r})"

    @staticmethod
    def of_days(days: int) -> TemporalText:
        """The date ``days`` after 1970-01-01 (proleptic Gregorian, any year)."""
        return TemporalText("date", _ymd(days))

    @staticmethod
    def of_micros(us: int, aware: bool) -> TemporalText:
        """The timestamp ``us`` microseconds after 1970-01-01 00:00 (UTC when ``aware``)."""
        days, rest = divmod(us, 86_400_000_000)
        secs, micro = divmod(rest, 1_000_000)
        clock = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{micro:06d}"
        date_part = _ymd(days)
        era = ""
        if date_part.endswith(" BC"):  # PostgreSQL reads the era after the time and zone
            date_part, era = date_part[:-3], " BC"
        kind = "timestamp with time zone" if aware else "timestamp without time zone"
        return TemporalText(kind, f"{date_part} {clock}{'+00' if aware else ''}{era}")


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(astronomical year, month, day) of a day count from 1970-01-01, proleptic Gregorian,
    for any year (H. Hinnant's ``civil_from_days``; year 0 is 1 BC)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _ymd(days: int) -> str:
    year, month, day = civil_from_days(days)
    if year <= 0:
        return f"{1 - year:04d}-{month:02d}-{day:02d} BC"
    return f"{year:04d}-{month:02d}-{day:02d}"
