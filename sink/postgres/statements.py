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
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sink.postgres import names
from sink.postgres import types as pgtypes
from sink.postgres.catalog import TableInfo
from sink.postgres.dates import key_as_text
from sink.postgres.names import quote
from sink.postgres.reduce import Change, set_path
from sink.postgres.schema_types import text_cast, travels_as_text
from sink.postgres.types import (
    JSONB,
    adapt_column,
    array_cast,
    element_type,
    overflow_text,
    to_json_text,
)
from sink.records import Path

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


def _guard(new_pos: str, force: bool) -> str:
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
    return f"{expr}::{col_type}" if key_as_text(col_type) else _cast(col_type, expr)


def _key_array(col_type: str) -> str:
    return "text[]" if key_as_text(col_type) else array_cast(col_type)


def _cast(col_type: str, expr: str) -> str:
    if travels_as_text(col_type):  # arrays (a 2-D unnest would flatten), intervals, inet...
        return f"{expr}{text_cast(col_type)}"
    return f"{expr}::jsonb" if col_type == JSONB else expr


def _upsert_columns(info: TableInfo) -> list[tuple[str, str]]:
    """(alias, element type) of the values an upsert carries, in parameter order."""
    keys = [(f"c{i}", _key_array(info.columns[c])[:-2]) for i, c in enumerate(info.primary_key)]
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
            + [f"{_cast(info.columns[c], f'u.c{i}')} AS c{i}"
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
            f"ON {_key_match(info, 's')} WHEN MATCHED AND {_guard('s.pos', force)} "
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
        f"WHERE {_guard('EXCLUDED.' + POS, force)}"
    )


def delete(info: TableInfo, hard: bool, force: bool) -> str:
    """Deletes. Params: key arrays, count, position (text), source_ts, tombstone flags,
    tombstone offsets. A tombstone alone carries no source position: it deletes a row that
    is still live unless the row holds a later change of the same partition (the Kafka
    offset in the low bits of its position is higher: a replay must not delete a row that
    was re-inserted after the tombstone)."""
    keys = info.primary_key
    n = len(keys)
    arrays = [f"${i + 1}::{_key_array(info.columns[k])}" for i, k in enumerate(keys)]
    arrays += [f"${n + 1}::bigint[]", f"${n + 2}::text[]", f"${n + 3}::timestamptz[]",
               f"${n + 4}::boolean[]", f"${n + 5}::bigint[]"]
    alias = [f"c{i}" for i in range(n)] + ["cnt", "p", "ts", "tomb", "toff"]
    src = (f"(SELECT u.*, u.p::numeric AS pos FROM unnest({', '.join(arrays)}) "
           f"AS u({', '.join(alias)})) AS s")
    cond = (
        f"{_key_match(info, 's')} AND CASE WHEN s.tomb THEN NOT t.{DEL} AND (s.toff IS NULL "
        f"OR t.{POS} IS NULL OR mod(t.{POS}, {_OFFSET_MOD}) < s.toff) "
        f"ELSE {_guard('s.pos', force)} END"
    )
    if hard:
        return f"DELETE FROM {info.qualified} AS t USING {src} WHERE {cond}"
    return (
        f"UPDATE {info.qualified} AS t SET {DEL} = true, {DAT} = now(), {UP} = now(), "
        f"{V} = t.{V} + s.cnt, {POS} = coalesce(s.pos, t.{POS}), {TS} = coalesce(s.ts, t.{TS}) "
        f"FROM {src} WHERE {cond}"
    )


@dataclass(frozen=True, slots=True)
class PatchShape:
    """What a partial update touches; patches with one shape share one statement.

    ``top_set``: top-level columns set; ``top_unset``: top-level columns nulled;
    ``nested``: per jsonb root column, its ops in order as ("truncate"|"set"|"unset");
    ``ovf_nested``: the same for roots whose column is not jsonb: applied inside
    ``_cartridge_overflow[root]``. Paths, values and sizes are parameters, never SQL text.
    """

    top_set: tuple[str, ...]
    top_unset: tuple[str, ...]
    nested: tuple[tuple[str, tuple[str, ...]], ...]
    ovf_nested: tuple[tuple[str, tuple[str, ...]], ...] = ()


def patch(info: TableInfo, shape: PatchShape, metadata_schema: str, force: bool) -> str:
    """Partial updates of many rows in one statement: rows the table has are updated in
    place, the others are inserted with what is known and marked partial.

    Params: first the scalars shared by the group — overflow keys to drop (text[]), then
    the path (text[]) of every op of ``nested`` then of ``ovf_nested`` (an ``ovf_nested``
    path starts with its root) — then one array per row value: keys, top_set values, per
    nested root its insert value (json text) then per op its value (set: json text) or
    size (truncate: integer), per ovf_nested op the same, then overflow, insert-only
    overflow (json text), count, source_ts, position (text)."""
    m = quote(metadata_schema)
    scalars: list[str] = []
    cols: list[tuple[str, str, str]] = []  # (alias, array element type, expression)

    def scalar(cast: str) -> str:
        scalars.append(cast)
        return f"${len(scalars)}::{cast}"

    def col(cast: str, expr_cast: str = "") -> str:
        alias = f"a{len(cols)}"
        cols.append((alias, cast, f"u.{alias}{expr_cast} AS {alias}"))
        return f"s.{alias}"

    drop = scalar("text[]")
    nested_paths = [[scalar("text[]") for _ in ops] for _, ops in shape.nested]
    ovf_paths = [[scalar("text[]") for _ in ops] for _, ops in shape.ovf_nested]
    # a key of a type that travels as text (inet, interval) is cast back, as in _key_match
    keys = [col(_key_array(info.columns[k])[:-2], key_cast(info.columns[k], ""))
            for k in info.primary_key]
    tops = [col(element_type(info.columns[c]), _cast(info.columns[c], "")) for c in shape.top_set]

    def op_exprs(base: str, ops: tuple[str, ...], paths: list[str]) -> str:
        expr = base
        for op, path in zip(ops, paths, strict=True):
            if op == "set":
                expr = f"{m}.jsonb_set_deep({expr}, {path}, {col('text', '::jsonb')})"
            elif op == "truncate":
                expr = f"{m}.jsonb_truncate({expr}, {path}, {col('integer')})"
            else:
                expr = f"{m}.jsonb_unset_deep({expr}, {path})"
        return expr

    inits: list[str] = []
    root_sets: list[str] = []
    for (root, ops), paths in zip(shape.nested, nested_paths, strict=True):
        inits.append(col("text", "::jsonb"))
        root_sets.append(f"{quote(root)} = {op_exprs(f't.{quote(root)}', ops, paths)}")
    ovf_expr = f"(coalesce(t.{OVF}, '{{}}'::jsonb) - {drop}) || coalesce(s.ovf, '{{}}'::jsonb)"
    for (_, ops), paths in zip(shape.ovf_nested, ovf_paths, strict=True):
        ovf_expr = op_exprs(ovf_expr, ops, paths)
    n = len(scalars)
    arrays = [f"${n + i + 1}::{t}[]" for i, (_, t, _) in enumerate(cols)]
    tail = ["ovf", "ovfi", "cnt", "ts", "p"]
    arrays += [f"${n + len(cols) + i + 1}::{t}[]" for i, t in
               enumerate(("text", "text", "bigint", "timestamptz", "text"))]
    source = (
        f"SELECT {', '.join(e for _, _, e in cols)}, u.ovf::jsonb AS ovf, u.ovfi::jsonb AS ovfi, "
        f"u.cnt, u.ts, u.p::numeric AS pos FROM unnest({', '.join(arrays)}) "
        f"AS u({', '.join([a for a, _, _ in cols] + tail)})"
    )
    pk = [quote(k) for k in info.primary_key]
    key_match = " AND ".join(f"t.{k} = {s}" for k, s in zip(pk, keys, strict=True))
    sets = [f"{quote(c)} = {v}" for c, v in zip(shape.top_set, tops, strict=True)]
    sets += [f"{quote(c)} = NULL" for c in shape.top_unset]
    sets += root_sets
    sets += [f"{OVF} = nullif({ovf_expr}, '{{}}'::jsonb)", f"{V} = t.{V} + s.cnt",
             f"{UP} = now()", f"{TS} = coalesce(s.ts, t.{TS})", f"{POS} = coalesce(s.pos, t.{POS})"]
    insert_cols = pk + [quote(c) for c in shape.top_set] + [quote(r) for r, _ in shape.nested]
    insert_cols += [OVF, V, CR, UP, TS, POS, DEL, PART]
    insert_vals = keys + tops + inits + [
        "nullif(coalesce(s.ovf, '{}'::jsonb) || coalesce(s.ovfi, '{}'::jsonb), '{}'::jsonb)",
        "s.cnt", "now()", "now()", "s.ts", "s.pos", "false", "true"]
    exists = " AND ".join(f"x.{k} = {s}" for k, s in zip(pk, keys, strict=True))
    return (
        f"WITH s AS ({source}), upd AS (UPDATE {info.qualified} AS t SET {', '.join(sets)} "
        f"FROM s WHERE {key_match} AND {_guard('s.pos', force)} "
        f"RETURNING {', '.join(f't.{k}' for k in pk)}) "
        f"INSERT INTO {info.qualified} AS t ({', '.join(insert_cols)}) "
        f"SELECT {', '.join(insert_vals)} FROM s "
        # Rows the UPDATE reached are out (a hash anti-join on what it returned, no index
        # probe per row); of the rest, the rows the table has (held back by the ordering
        # guard) are left alone by ON CONFLICT, the missing ones are inserted as partial.
        f"WHERE NOT EXISTS (SELECT 1 FROM upd AS x WHERE {exists}) "
        f"ON CONFLICT DO NOTHING"
    )


Op = tuple[str, Path, Any]


def patch_row(
    info: TableInfo, ch: Change, _col: Callable[[str], str], *, adapt: bool = True,
    aside: bool = False,
) -> tuple[PatchShape, list[tuple[str, ...]], list[Any], list[tuple[str, Any]]]:
    """One patch as (shape, scalar params, row values, narrowed (column, value) pairs), the
    parameters in the order `patch` takes them; ``_col`` maps a field name to its column.
    ``adapt=False`` leaves the values of ``shape.top_set`` as they came, for the caller to
    adapt column-wise (`pgtypes.adapt_column` over many rows costs about what it costs
    over one). ``aside``: top-level values go to overflow, their columns nulled (a row too
    wide for a page, see `squeeze`)."""
    assert ch.patch is not None
    p, pk = ch.patch, info.primary_key
    overflow: dict[str, Any] = {}
    narrowed: list[tuple[str, Any]] = []
    top_set: dict[str, Any] = {}
    top_unset: list[str] = []
    drop: list[str] = []
    nested: dict[str, list[Op]] = defaultdict(list)
    for path, size in p.truncate.items():
        if len(path) == 1 and (path in p.set or path in p.unset):
            continue  # replaced or removed whole by the same patch
        if _col(path[0]) not in pk:
            nested[_col(path[0])].append(("truncate", path[1:], size))
    for path, value in p.set.items():
        col = _col(path[0])
        if col in pk:
            continue
        if len(path) > 1:
            nested[col].append(("set", path[1:], value))
            continue
        drop.append(col)
        if col in info.columns and aside:
            top_set[col] = None
            if value is not None:
                overflow[col] = value
        elif col in info.columns and not adapt:
            top_set[col] = value
        elif col in info.columns:
            stored, over = adapt_column([value], info.columns[col])
            top_set[col] = stored[0]
            if over:
                overflow[col] = over[0]
                narrowed.append((col, over[0]))
        elif value is not None:  # no column for it (no type, or the table is full)
            overflow[col] = value
            narrowed.append((col, value))
    for path in p.unset:
        col = _col(path[0])
        if col in pk:
            continue
        if len(path) > 1:
            nested[col].append(("unset", path[1:], None))
            continue
        drop.append(col)
        if col in info.columns and col not in top_set:
            top_unset.append(col)
    row: list[Any] = [*(ch.kt if len(pk) > 1 else (ch.kt,)), *top_set.values()]  # type: ignore[misc]
    paths: list[tuple[str, ...]] = []
    in_col: list[tuple[str, tuple[str, ...]]] = []
    in_ovf: list[tuple[str, tuple[str, ...]]] = []
    ovf_init: dict[str, Any] = {}
    ovf_vals: list[Any] = []
    ovf_paths: list[tuple[str, ...]] = []
    for root, ops in nested.items():
        init: dict[str, Any] = {}
        vals: list[Any] = []
        for op, path, value in ops:
            if op == "set":
                if pgtypes.has_nul(value):
                    value = pgtypes.strip_nul(value)
                    narrowed.append((root, value))
                set_path(init, path, value)
                vals.append(to_json_text(value))
            elif op == "truncate":
                vals.append(value)
        if info.columns.get(root) == JSONB:
            drop.append(root)
            row += [to_json_text(init) if init else None, *vals]
            paths += [path for _, path, _ in ops]
            in_col.append((root, tuple(op for op, _, _ in ops)))
        else:  # cannot hold a path: apply it inside the overflow document
            narrowed += [(root, value) for op, _, value in ops if op == "set"]
            if init:
                ovf_init[root] = init
            ovf_vals += vals
            ovf_paths += [(root, *path) for _, path, _ in ops]
            in_ovf.append((root, tuple(op for op, _, _ in ops)))
    row += ovf_vals
    row += [overflow_text(overflow) if overflow else None,
            to_json_text(ovf_init) if ovf_init else None, ch.count, ch.source_ts,
            None if ch.pos is None else str(ch.pos)]
    shape = PatchShape(tuple(top_set), tuple(top_unset), tuple(in_col), tuple(in_ovf))
    return shape, [tuple(drop), *paths, *ovf_paths], row, narrowed


def stored_positions(info: TableInfo) -> str:
    keys = info.primary_key
    arrays = ", ".join(f"${i + 1}::{_key_array(info.columns[k])}" for i, k in enumerate(keys))
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
    arrays = [f"${i + 1}::{_key_array(info.columns[k])}" for i, k in enumerate(keys)]
    arrays += [f"${n + 1}::text[]", f"${n + 2}::text[]"]
    alias = [f"c{i}" for i in range(n)] + ["v", "p"]
    return (
        f"UPDATE {info.qualified} AS t SET {quote(column)} = s.v::{info.columns[column]} "
        f"FROM unnest({', '.join(arrays)}) AS s({', '.join(alias)}) "
        f"WHERE {_key_match(info, 's')} AND (s.p IS NULL OR t.{POS} = s.p::numeric)"
    )


def truncate(info: TableInfo) -> str:
    return f"DELETE FROM {info.qualified}"
