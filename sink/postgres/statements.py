"""SQL text for the set-based writes. Pure string building, identifiers always quoted.

Rows travel column-wise: as typed arrays through ``unnest`` (small batches: one round
trip), or COPYed into a per-connection TEMP staging table that one statement then reads
(large batches, `STAGE_MIN_ROWS`). Either way there is one statement per table, kind and
round, whatever the batch size. Every statement carries the ordering guard unless the
caller lifts it (``force``): a change whose source position is not newer than the row's
is not applied. Positions travel as text and are compared as ``numeric``.
"""

from __future__ import annotations

import hashlib

from sink.postgres import names
from sink.postgres.catalog import TableInfo
from sink.postgres.dates import key_as_text
from sink.postgres.names import quote
from sink.postgres.schema_types import text_cast, travels_as_text
from sink.postgres.types import (
    JSONB,
    array_cast,
    element_type,
)

V, CR, UP, TS, POS = (
    quote(names.VERSION),
    quote(names.CREATED_AT),
    quote(names.UPDATED_AT),
    quote(names.SOURCE_TS),
    quote(names.SOURCE_POS),
)
DEL, DAT, OVF, PART = (
    quote(names.IS_DELETED),
    quote(names.DELETED_AT),
    quote(names.OVERFLOW),
    quote(names.PARTIAL),
)
# The Kafka offset is the low 64 bits of a stored position (reduce.encode_position).
_OFFSET_MOD = str(2**64)
# Upserts of at least this many rows go through COPY and a staging table; measured where
# COPY starts to win, per upsert mode (bench/README.md).
STAGE_MIN_ROWS = 2000
STAGE_MIN_ROWS_MERGE = 3000
_UPSERT_TAIL = [("ovf", "text"), ("cnt", "bigint"), ("ts", "timestamptz"), ("pos", "text"),
                ("del", "boolean")]


def guard(new_pos: str, force: bool) -> str:
    if force:
        return "true"
    return f"(t.{POS} IS NULL OR {new_pos} IS NULL OR {new_pos} > t.{POS})"


def _key_match(info: TableInfo, src: str, target: str = "t") -> str:
    """Match the target's key columns to ``src``'s positional key columns ``c0``, ``c1``...
    (a key of a type that travels as text, e.g. inet, is cast back: ``inet = text`` fails)."""
    return " AND ".join(f"{target}.{quote(k)} = {key_cast(info.columns[k], f'{src}.c{i}')}"
                        for i, k in enumerate(info.primary_key))


def key_cast(col_type: str, expr: str) -> str:
    """A key value's cast back to its column's type (`plan.key_params`)."""
    return f"{expr}::{col_type}" if key_as_text(col_type) else value_cast(col_type, expr)


def key_array(col_type: str) -> str:
    return "text[]" if key_as_text(col_type) else array_cast(col_type)


def value_cast(col_type: str, expr: str) -> str:
    if travels_as_text(col_type):  # arrays (a 2-D unnest would flatten), intervals, inet...
        return f"{expr}{text_cast(col_type)}"
    return f"{expr}::jsonb" if col_type == JSONB else expr


def _upsert_columns(info: TableInfo) -> list[tuple[str, str]]:
    """(alias, element type) of the values an upsert carries, in parameter order."""
    keys = [(f"c{i}", key_array(info.columns[c])[:-2]) for i, c in enumerate(info.primary_key)]
    return keys + [(f"c{i}", element_type(info.columns[c]))
                   for i, c in enumerate(info.data_columns, len(keys))] + _UPSERT_TAIL


def stage_table(info: TableInfo) -> tuple[str, str]:
    """(name, DDL) of the TEMP table an upsert of ``info`` is staged in. Tables whose
    columns have the same types share one; rows vanish at commit."""
    cols = _upsert_columns(info)
    digest = hashlib.sha1("|".join(t for _, t in cols).encode()).hexdigest()[:16]
    name = f"warp_stage_{digest}"
    body = ", ".join(f"{a} {t}" for a, t in cols)
    return name, f"CREATE TEMP TABLE IF NOT EXISTS {quote(name)} ({body}) ON COMMIT DELETE ROWS"


def upsert(info: TableInfo, mode: str, force: bool, staged: str | None = None) -> str:
    """Full-document upsert. Params (unnest): one array per key column, per data column,
    then overflow (json text), count, source_ts, position (text), deleted. With ``staged``
    (a `stage_table` name) the same values are read from that table, which is emptied."""
    keys = info.primary_key
    data = info.data_columns
    cols = keys + data
    spec = _upsert_columns(info)
    # The derived table ``s`` names its columns positionally (c0, c1, ... then the sink's
    # own ovf, cnt, ts, pos, del): a user column, whatever its name, never shares a
    # namespace with the sink's aliases (a field named "ts" was ambiguous).
    select = (
        "SELECT " + ", ".join(
            [f"{key_cast(info.columns[c], f'u.c{i}')} AS c{i}" for i, c in enumerate(keys)]
            + [f"{value_cast(info.columns[c], f'u.c{i}')} AS c{i}"
               for i, c in enumerate(data, len(keys))]
            + ["u.ovf::jsonb AS ovf", "u.cnt AS cnt", "u.ts AS ts", "u.pos::numeric AS pos",
               "u.del AS del"]
        )
    )
    with_ = ""
    if staged is None:
        arrays = [f"${i + 1}::{t}[]" for i, (_, t) in enumerate(spec)]
        source = f"{select} FROM unnest({', '.join(arrays)}) AS u({', '.join(a for a, _ in spec)})"
    else:
        with_ = f"WITH u AS (DELETE FROM pg_temp.{quote(staged)} RETURNING *) "
        source = f"{select} FROM u"
    target_cols = [quote(c) for c in cols] + [OVF, V, CR, UP, TS, POS, DEL, DAT, PART]
    values = [f"s.c{i}" for i in range(len(cols))] + [
        "s.ovf", "s.cnt", "now()", "now()", "s.ts", "s.pos", "s.del",
        "CASE WHEN s.del THEN now() END", "false",
    ]
    if mode == "merge":
        sets = [f"{quote(c)} = s.c{len(keys) + i}" for i, c in enumerate(data)] + [
            f"{OVF} = s.ovf", f"{V} = t.{V} + s.cnt", f"{UP} = now()", f"{TS} = s.ts",
            f"{POS} = s.pos", f"{DEL} = s.del", f"{DAT} = CASE WHEN s.del THEN now() END",
            f"{PART} = false",
        ]
        return (
            f"{with_}MERGE INTO {info.qualified} AS t USING ({source}) AS s "
            f"ON {_key_match(info, 's')} WHEN MATCHED AND {guard('s.pos', force)} "
            f"THEN UPDATE SET {', '.join(sets)} "
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(target_cols)}) VALUES ({', '.join(values)})"
        )
    sets = [f"{quote(c)} = EXCLUDED.{quote(c)}" for c in data] + [
        f"{OVF} = EXCLUDED.{OVF}", f"{V} = t.{V} + EXCLUDED.{V}", f"{UP} = now()",
        f"{TS} = EXCLUDED.{TS}", f"{POS} = EXCLUDED.{POS}", f"{DEL} = EXCLUDED.{DEL}",
        f"{DAT} = EXCLUDED.{DAT}", f"{PART} = false",
    ]
    return (
        f"{with_}INSERT INTO {info.qualified} AS t ({', '.join(target_cols)}) "
        f"SELECT {', '.join(values)} FROM ({source}) AS s "
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {', '.join(sets)} "
        f"WHERE {guard('EXCLUDED.' + POS, force)}"
    )


def delete(info: TableInfo, hard: bool, force: bool) -> str:
    """Deletes. Params: key arrays, count, position (text), source_ts, tombstone flags,
    tombstone offsets. A tombstone alone carries no source position: it deletes a row that
    is still live unless the row holds a later change of the same partition (the Kafka
    offset in the low bits of its position is higher: a replay must not delete a row that
    was re-inserted after the tombstone)."""
    keys = info.primary_key
    n = len(keys)
    arrays = [f"${i + 1}::{key_array(info.columns[k])}" for i, k in enumerate(keys)]
    arrays += [f"${n + 1}::bigint[]", f"${n + 2}::text[]", f"${n + 3}::timestamptz[]",
               f"${n + 4}::boolean[]", f"${n + 5}::bigint[]"]
    alias = [f"c{i}" for i in range(n)] + ["cnt", "p", "ts", "tomb", "toff"]
    src = (f"(SELECT u.*, u.p::numeric AS pos FROM unnest({', '.join(arrays)}) "
           f"AS u({', '.join(alias)})) AS s")
    cond = (
        f"{_key_match(info, 's')} AND CASE WHEN s.tomb THEN NOT t.{DEL} AND (s.toff IS NULL "
        f"OR t.{POS} IS NULL OR mod(t.{POS}, {_OFFSET_MOD}) < s.toff) "
        f"ELSE {guard('s.pos', force)} END"
    )
    if hard:
        return f"DELETE FROM {info.qualified} AS t USING {src} WHERE {cond}"
    return (
        f"UPDATE {info.qualified} AS t SET {DEL} = true, {DAT} = now(), {UP} = now(), "
        f"{V} = t.{V} + s.cnt, {POS} = coalesce(s.pos, t.{POS}), {TS} = coalesce(s.ts, t.{TS}) "
        f"FROM {src} WHERE {cond}"
    )


def stored_positions(info: TableInfo) -> str:
    keys = info.primary_key
    arrays = ", ".join(f"${i + 1}::{key_array(info.columns[k])}" for i, k in enumerate(keys))
    alias = ", ".join(f"c{i}" for i in range(len(keys)))
    return (  # which key (its 1-based place in the arrays): the key as sent, not as read
        f"SELECT s.n, t.{POS} FROM {info.qualified} AS t "
        f"JOIN unnest({arrays}) WITH ORDINALITY AS s({alias}, n) ON {_key_match(info, 's')}"
    )


def exact_values(info: TableInfo, column: str) -> str:
    """Write values of ``column`` as text cast to its type (`dates.exact_texts`), on the rows
    the change just wrote (the row holds its position). Params: key arrays, texts,
    positions (text)."""
    keys = info.primary_key
    n = len(keys)
    arrays = [f"${i + 1}::{key_array(info.columns[k])}" for i, k in enumerate(keys)]
    arrays += [f"${n + 1}::text[]", f"${n + 2}::text[]"]
    alias = [f"c{i}" for i in range(n)] + ["v", "p"]
    return (
        f"UPDATE {info.qualified} AS t SET {quote(column)} = s.v::{info.columns[column]} "
        f"FROM unnest({', '.join(arrays)}) AS s({', '.join(alias)}) "
        f"WHERE {_key_match(info, 's')} AND (s.p IS NULL OR t.{POS} = s.p::numeric)"
    )


def truncate(info: TableInfo) -> str:
    return f"DELETE FROM {info.qualified}"
