"""Relational change events that carry no schema (JsonConverter ``schemas.enable=false``).

Without a schema the writer infers each column's type from the first values it sees, and
several of Debezium's wire encodings cannot be told from plain values: a date is a day
count, a time or a timestamp an integer of ms/µs/ns, bytea and precise decimals base64
text, a numeric without scale a ``{scale, value}`` struct. The sink warns once per table,
on the first such event, naming the columns whose values look like one of those, and how
to get exact types.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

log = structlog.get_logger("sink.decode")

FIX = ("set key.converter.schemas.enable=true and value.converter.schemas.enable=true on "
       "the connector (or use the Avro converter) so every column gets its exact type")
_MAX_TABLES = 10_000  # beyond this many tables, stop remembering (and warning)
_warned: set[tuple[str, str]] = set()
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _looks_base64(v: str) -> bool:
    if len(v) < 4 or len(v) % 4 or not _BASE64.fullmatch(v):
        return False
    # a plain word (lower, UPPER, Title case) is far likelier than its base64 look-alike
    return not (v.isalpha() and (v.islower() or v.isupper() or v.istitle()))


def ambiguous_columns(row: Mapping[str, Any], key: Iterable[str] = ()) -> dict[str, list[str]]:
    """What each column's value could also be, by kind: ``integers`` (dates as days, times,
    timestamps since the epoch), ``base64`` (bytea, a decimal's unscaled bytes),
    ``decimal_structs`` (a numeric without scale). Key columns are left out."""
    keys = set(key)
    out: dict[str, list[str]] = {"integers": [], "base64": [], "decimal_structs": []}
    for col, v in row.items():
        if col in keys or v is None:
            continue
        t = type(v)
        if t is int:
            out["integers"].append(col)
        elif t is str and _looks_base64(v):
            out["base64"].append(col)
        elif t is dict and v.keys() == {"scale", "value"}:
            out["decimal_structs"].append(col)
    return {k: v for k, v in out.items() if v}


def note(schema: str, table: str, topic: str, row: Mapping[str, Any] | None,
         key: Iterable[str] = ()) -> None:
    """Warn, the first time only for this table, that its events have no schema."""
    if (schema, table) in _warned or len(_warned) >= _MAX_TABLES:
        return
    _warned.add((schema, table))
    log.warning(
        f"events without a schema (JsonConverter schemas.enable=false): column types are "
        f"inferred from values, and dates, times, timestamps, bytea and decimals arrive as "
        f"integers, base64 text or structs; {FIX}",
        schema=schema, table=table, topic=topic, ambiguous=ambiguous_columns(row or {}, key),
    )


def forget() -> None:
    """Warn again for every table (tests)."""
    _warned.clear()
