"""SQL text for the set-based writes. Pure string building, identifiers always quoted.

Rows travel as typed arrays through ``unnest``: one statement per table, kind and
round, whatever the batch size. Every statement carries the ordering guard unless
the caller lifts it (``force``): a change whose source position is not newer than
the row's is not applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import names
from .catalog import TableInfo
from .names import quote
from .pgtypes import JSONB, array_cast

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


def _guard(new_pos: str, force: bool) -> str:
    if force:
        return "true"
    return f"(t.{POS} IS NULL OR {new_pos} IS NULL OR {new_pos} > t.{POS})"


def _key_match(info: TableInfo, src: str) -> str:
    return " AND ".join(f"t.{quote(k)} = {src}.{quote(k)}" for k in info.primary_key)


def _cast(col_type: str, expr: str) -> str:
    return f"{expr}::jsonb" if col_type == JSONB else expr


def upsert(info: TableInfo, mode: str, force: bool) -> str:
    """Full-document upsert. Params: one array per key column, per data column, then
    overflow (json text), count, source_ts, position, deleted."""
    keys = info.primary_key
    data = info.data_columns
    cols = keys + data
    n = len(cols)
    arrays = [f"${i + 1}::{array_cast(info.columns[c])}" for i, c in enumerate(cols)]
    arrays += [f"${n + 1}::text[]", f"${n + 2}::bigint[]", f"${n + 3}::timestamptz[]",
               f"${n + 4}::numeric[]", f"${n + 5}::boolean[]"]
    alias = [f"c{i}" for i in range(n)] + ["ovf", "cnt", "ts", "pos", "del"]
    source = (
        "SELECT " + ", ".join(
            [f"{_cast(info.columns[c], f'c{i}')} AS {quote(c)}" for i, c in enumerate(cols)]
            + ["ovf::jsonb AS ovf", "cnt", "ts", "pos", "del"]
        )
        + f" FROM unnest({', '.join(arrays)}) AS u({', '.join(alias)})"
    )
    target_cols = [quote(c) for c in cols] + [OVF, V, CR, UP, TS, POS, DEL, DAT, PART]
    values = [f"s.{quote(c)}" for c in cols] + [
        "s.ovf", "s.cnt", "now()", "now()", "s.ts", "s.pos", "s.del",
        "CASE WHEN s.del THEN now() END", "false",
    ]
    if mode == "merge":
        sets = [f"{quote(c)} = s.{quote(c)}" for c in data] + [
            f"{OVF} = s.ovf", f"{V} = t.{V} + s.cnt", f"{UP} = now()", f"{TS} = s.ts",
            f"{POS} = s.pos", f"{DEL} = s.del", f"{DAT} = CASE WHEN s.del THEN now() END",
            f"{PART} = false",
        ]
        return (
            f"MERGE INTO {info.qualified} AS t USING ({source}) AS s ON {_key_match(info, 's')} "
            f"WHEN MATCHED AND {_guard('s.pos', force)} "
            f"THEN UPDATE SET {', '.join(sets)} "
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(target_cols)}) VALUES ({', '.join(values)})"
        )
    sets = [f"{quote(c)} = EXCLUDED.{quote(c)}" for c in data] + [
        f"{OVF} = EXCLUDED.{OVF}", f"{V} = t.{V} + EXCLUDED.{V}", f"{UP} = now()",
        f"{TS} = EXCLUDED.{TS}", f"{POS} = EXCLUDED.{POS}", f"{DEL} = EXCLUDED.{DEL}",
        f"{DAT} = EXCLUDED.{DAT}", f"{PART} = false",
    ]
    return (
        f"INSERT INTO {info.qualified} AS t ({', '.join(target_cols)}) "
        f"SELECT {', '.join(values)} FROM ({source}) AS s "
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {', '.join(sets)} "
        f"WHERE {_guard('EXCLUDED.' + POS, force)}"
    )


def delete(info: TableInfo, hard: bool, force: bool) -> str:
    """Deletes. Params: key arrays, count, position, source_ts, tombstone flags.
    A tombstone alone carries no position: it deletes a row that is still live."""
    keys = info.primary_key
    n = len(keys)
    arrays = [f"${i + 1}::{array_cast(info.columns[k])}" for i, k in enumerate(keys)]
    arrays += [f"${n + 1}::bigint[]", f"${n + 2}::numeric[]", f"${n + 3}::timestamptz[]",
               f"${n + 4}::boolean[]"]
    alias = [quote(k) for k in keys] + ["cnt", "pos", "ts", "tomb"]
    src = f"unnest({', '.join(arrays)}) AS s({', '.join(alias)})"
    cond = (
        f"{_key_match(info, 's')} AND CASE WHEN s.tomb THEN NOT t.{DEL} "
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
    ``nested``: per jsonb root column, its ops in order as ("truncate"|"set"|"unset").
    Paths, values and sizes are parameters, never SQL text.
    """

    top_set: tuple[str, ...]
    top_unset: tuple[str, ...]
    nested: tuple[tuple[str, tuple[str, ...]], ...]


def patch(info: TableInfo, shape: PatchShape, metadata_schema: str, force: bool) -> str:
    """Params, in order: keys, top_set values, per nested root: its insert value then
    per op (path[, size | value]), overflow json, overflow keys to drop, count, ts, pos."""
    m = quote(metadata_schema)
    params: list[str] = []

    def p(cast: str) -> str:
        params.append(cast)
        return f"${len(params)}::{cast}"

    key_vals = [p(info.columns[k]) for k in info.primary_key]
    top_vals = [p(_param_type(info.columns[c])) for c in shape.top_set]
    root_init: list[str] = []
    root_exprs: list[str] = []
    for root, ops in shape.nested:
        root_init.append(p("jsonb"))
        expr = f"t.{quote(root)}"
        for op in ops:
            path = p("text[]")
            if op == "truncate":
                expr = f"{m}.jsonb_truncate({expr}, {path}, {p('integer')})"
            elif op == "set":
                expr = f"{m}.jsonb_set_deep({expr}, {path}, {p('jsonb')})"
            else:
                expr = f"({expr} #- {path})"
        root_exprs.append(expr)
    ovf, ovf_drop, cnt, ts, pos = p("jsonb"), p("text[]"), p("bigint"), p("timestamptz"), p(
        "numeric")
    top_vals = [_cast(info.columns[c], v) for c, v in zip(shape.top_set, top_vals, strict=True)]
    insert_cols = (
        [quote(k) for k in info.primary_key]
        + [quote(c) for c in shape.top_set]
        + [quote(r) for r, _ in shape.nested]
        + [OVF, V, CR, UP, TS, POS, DEL, PART]
    )
    insert_vals = key_vals + top_vals + root_init + [
        ovf, cnt, "now()", "now()", ts, pos, "false", "true"]
    sets = [f"{quote(c)} = EXCLUDED.{quote(c)}" for c in shape.top_set]
    sets += [f"{quote(c)} = NULL" for c in shape.top_unset]
    sets += [f"{quote(r)} = {e}" for (r, _), e in zip(shape.nested, root_exprs, strict=True)]
    sets += [
        f"{OVF} = nullif((coalesce(t.{OVF}, '{{}}'::jsonb) - {ovf_drop}) "
        f"|| coalesce(EXCLUDED.{OVF}, '{{}}'::jsonb), '{{}}'::jsonb)",
        f"{V} = t.{V} + EXCLUDED.{V}", f"{UP} = now()", f"{TS} = EXCLUDED.{TS}",
        f"{POS} = EXCLUDED.{POS}",
    ]
    return (
        f"INSERT INTO {info.qualified} AS t ({', '.join(insert_cols)}) "
        f"VALUES ({', '.join(insert_vals)}) "
        f"ON CONFLICT ({', '.join(quote(k) for k in info.primary_key)}) DO UPDATE SET "
        f"{', '.join(sets)} WHERE {_guard('EXCLUDED.' + POS, force)}"
    )


def _param_type(col_type: str) -> str:
    return "text" if col_type == JSONB else col_type


def stored_positions(info: TableInfo) -> str:
    keys = info.primary_key
    arrays = ", ".join(f"${i + 1}::{array_cast(info.columns[k])}" for i, k in enumerate(keys))
    cols = ", ".join(f"t.{quote(k)}" for k in keys)
    return (
        f"SELECT {cols}, t.{POS} AS pos FROM {info.qualified} AS t "
        f"JOIN unnest({arrays}) AS s({', '.join(quote(k) for k in keys)}) "
        f"ON {_key_match(info, 's')}"
    )


def truncate(info: TableInfo) -> str:
    return f"DELETE FROM {info.qualified}"
