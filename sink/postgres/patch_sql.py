"""SQL text and parameters of partial updates (`PatchShape`, `patch`, `patch_row`): rows
travel column-wise like the other set-based writes (`statements`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sink.postgres import types as pgtypes
from sink.postgres.catalog import TableInfo
from sink.postgres.names import quote
from sink.postgres.reduce import Change, set_path
from sink.postgres.statements import (
    CR,
    DEL,
    OVF,
    PART,
    POS,
    TS,
    UP,
    V,
    guard,
    key_array,
    key_cast,
    value_cast,
)
from sink.postgres.types import JSONB, adapt_column, element_type, overflow_text, to_json_text
from sink.records import Path


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
    overflow (json text), count, source_ts, position (text).

    Unlike upserts, patches are not COPYed into a staging table above some size: measured,
    it gains nothing at any batch size (bench/README.md, "Partial updates: unnest or COPY").
    """
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
    keys = [col(key_array(info.columns[k])[:-2], key_cast(info.columns[k], ""))
            for k in info.primary_key]
    tops = [col(element_type(info.columns[c]), value_cast(info.columns[c], ""))
            for c in shape.top_set]

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
        f"FROM s WHERE {key_match} AND {guard('s.pos', force)} "
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


Signature = tuple[tuple[Path, ...], tuple[Path, ...], tuple[Path, ...]]


def signature(ch: Change) -> Signature:
    """The paths a patch touches (set, unset, truncate): what its `Layout` depends on."""
    p = ch.patch
    assert p is not None
    return tuple(p.set), tuple(p.unset), tuple(p.truncate)


class Layout:
    """Where each value of a patch goes in its `patch_row` row, found once for every patch
    of the same `signature`: a batch of partial updates is mostly one signature, and
    building the row from the layout skips the per-path decisions (it takes about a quarter
    of `patch_row`'s time). Made only when the values cannot change the row's shape: every
    top-level path has its own column, every nested root is a jsonb column, no ``aside``."""

    __slots__ = ("group", "many_keys", "nested", "top")

    def __init__(self, info: TableInfo, ch: Change, _col: Callable[[str], str]) -> None:
        shape, scalars, _, _ = patch_row(info, ch, _col, adapt=False)
        assert ch.patch is not None
        p, pk = ch.patch, info.primary_key
        self.group: tuple[Any, ...] = (shape, *scalars)
        self.many_keys = len(pk) > 1
        self.top = [path for path in p.set if len(path) == 1 and _col(path[0]) not in pk]
        # per root of shape.nested, its ops as patch_row orders them: truncates, sets, unsets
        ops: dict[str, list[tuple[str, Path, Path]]] = defaultdict(list)
        for path in p.truncate:
            if not (len(path) == 1 and (path in p.set or path in p.unset)) \
                    and _col(path[0]) not in pk:
                ops[_col(path[0])].append(("truncate", path, path[1:]))
        for path in p.set:
            if len(path) > 1 and _col(path[0]) not in pk:
                ops[_col(path[0])].append(("set", path, path[1:]))
        for path in p.unset:
            if len(path) > 1 and _col(path[0]) not in pk:
                ops[_col(path[0])].append(("unset", path, path[1:]))
        self.nested = [(_prefix(o), o) for o in ops.values()]
        assert [r for r, _ in shape.nested] == list(ops) and not shape.ovf_nested

    @staticmethod
    def of(info: TableInfo, ch: Change, _col: Callable[[str], str]) -> Layout | None:
        assert ch.patch is not None
        p, pk = ch.patch, info.primary_key
        top = {_col(path[0]) for path in p.set if len(path) == 1} - set(pk)
        if not top <= info.columns.keys() \
                or len(top) != sum(len(path) == 1 and _col(path[0]) not in pk for path in p.set):
            return None  # a value for overflow, or two fields in one column
        roots = {_col(path[0]) for path in [*p.set, *p.unset, *p.truncate] if len(path) > 1}
        roots |= {_col(path[0]) for path in p.truncate}
        if any(info.columns.get(r) != JSONB for r in roots - set(pk)):
            return None  # a path applied inside the overflow document
        return Layout(info, ch, _col)

    def row(self, ch: Change) -> list[Any] | None:
        """``ch``'s row as `patch_row` makes it with ``adapt=False``; None when it has a
        value `patch_row` must clean (a NUL character in a nested value)."""
        p = ch.patch
        assert p is not None
        s = p.set
        row: list[Any] = list(ch.kt) if self.many_keys else [ch.kt]  # type: ignore[call-overload]
        row += [s[path] for path in self.top]
        for prefix, ops in self.nested:
            if prefix is not None:  # one set: the insert value is the value wrapped
                value = s[ops[0][1]]
                if pgtypes.has_nul(value):
                    return None
                text = to_json_text(value)
                row += [f"{prefix}{text}{'}' * len(ops[0][2])}", text]
                continue
            init: dict[str, Any] = {}
            vals: list[Any] = []
            for op, path, sub in ops:
                if op == "set":
                    value = s[path]
                    if pgtypes.has_nul(value):
                        return None
                    set_path(init, sub, value)
                    vals.append(to_json_text(value))
                elif op == "truncate":
                    vals.append(p.truncate[path])
            row.append(to_json_text(init) if init else None)
            row += vals
        row += [None, None, ch.count, ch.source_ts, None if ch.pos is None else str(ch.pos)]
        return row


def _prefix(ops: list[tuple[str, Path, Path]]) -> str | None:
    """For a root whose only op sets a path of object keys, the JSON text that opens the
    insert document (`set_path` on an empty object): ``{"a":{"b":`` for ``a.b``."""
    if len(ops) != 1 or ops[0][0] != "set":
        return None
    return "".join(f"{{{to_json_text(seg)}:" for seg in ops[0][2])
