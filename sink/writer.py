"""Apply one table's records inside the caller's transaction.

Order of work for a table: create it if new → drop changes already applied (by
source position) → reduce per key → evolve columns → write each round of segments
with set-based statements. No row is read into Python except the stored positions
of keys changed more than once in the batch.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import structlog

from . import pgtypes, statements
from .catalog import Catalog, Evolution, TableInfo
from .metadata import Conn
from .names import column_name
from .pgtypes import JSONB, NARROW, adapt, natural_type, to_json_text
from .records import Kind, Path, Record
from .reduce import Change, encode_position, key_tuple, reduce_records

log = structlog.get_logger("sink.writer")

OPERATION = {"c": "insert", "r": "insert", "u": "update", "d": "delete", "tombstone": "delete",
             "t": "truncate"}


@dataclass(frozen=True, slots=True)
class WriteOptions:
    metadata_schema: str
    deletion_strategy: str = "soft"  # soft | hard | both
    upsert_mode: str = "on_conflict"  # on_conflict | merge
    varchar: bool = False
    force: bool = False  # lift the ordering guard (deliberate replays)


@dataclass(slots=True)
class TableResult:
    operations: Counter[str] = field(default_factory=Counter)
    overflowed: Counter[str] = field(default_factory=Counter)  # column -> values kept aside
    evolution: Evolution = field(default_factory=Evolution)


@lru_cache(maxsize=65536)
def _col(field_name: str) -> str:
    return column_name(field_name)


def _dec(pos: int | None) -> Decimal | None:
    return None if pos is None else Decimal(pos)


async def write_table(
    conn: Conn,
    catalog: Catalog,
    opts: WriteOptions,
    schema: str,
    table: str,
    records: list[Record],
) -> TableResult:
    result = TableResult()
    for rec in records:
        result.operations[OPERATION.get(rec.op, "update")] += 1
    run: list[Record] = []
    for rec in records:
        if rec.kind is Kind.TRUNCATE:
            if run:
                await _write_run(conn, catalog, opts, schema, table, run, result)
                run = []
            info = await catalog.load(conn, schema, table)
            if info is not None:
                await conn.execute(statements.truncate(info))
            continue
        run.append(rec)
    if run:
        await _write_run(conn, catalog, opts, schema, table, run, result)
    return result


async def _write_run(
    conn: Conn,
    catalog: Catalog,
    opts: WriteOptions,
    schema: str,
    table: str,
    records: list[Record],
    result: TableResult,
) -> None:
    key_types = {
        _col(k): natural_type(v, varchar=False) or pgtypes.TEXT for k, v in records[0].key.items()
    }
    info = await catalog.ensure_table(
        conn, schema, table, key_types, soft_deletes=opts.deletion_strategy != "hard",
        source_name=f"{schema}.{table}",
    )
    if not opts.force:
        records = await _drop_applied(conn, info, records)
    keyed = [r if all(k in info.columns for k in r.key) else _rekey(r) for r in records]
    segments = reduce_records(keyed)
    await _evolve(conn, catalog, info, segments, opts, result)
    rounds = max((len(s) for s in segments), default=0)
    for i in range(rounds):
        await _write_round(conn, info, [s[i] for s in segments if len(s) > i], opts, result)


def _rekey(rec: Record) -> Record:
    rec.key = {_col(k): v for k, v in rec.key.items()}
    return rec


async def _drop_applied(
    conn: Conn, info: TableInfo, records: list[Record]
) -> list[Record]:
    """Keys changed more than once in this batch: drop the changes the row already holds,
    so versions count exactly what is applied (a replay may straddle the stored state)."""
    seen: Counter[tuple[Any, ...]] = Counter(key_tuple(r.key) for r in records if r.position)
    multi = [kt for kt, n in seen.items() if n > 1]
    if not multi:
        return records
    cols = list(zip(*multi, strict=True))
    rows = await conn.fetch(statements.stored_positions(info), *[list(c) for c in cols])
    stored = {tuple(r[k] for k in info.primary_key): r["pos"] for r in rows if r["pos"] is not None}
    if not stored:
        return records
    kept = []
    for rec in records:
        have = stored.get(key_tuple(rec.key))
        pos = encode_position(rec.position, rec.offset) if rec.position else None
        if have is not None and pos is not None and pos <= have:
            continue
        kept.append(rec)
    return kept


def _columns_of(values: dict[str, Any], info: TableInfo) -> dict[str, Any]:
    return {c: v for f, v in values.items() if (c := _col(f)) not in info.primary_key}


async def _evolve(
    conn: Conn,
    catalog: Catalog,
    info: TableInfo,
    segments: list[list[Change]],
    opts: WriteOptions,
    result: TableResult,
) -> None:
    wanted: dict[str, str] = {}  # new column -> type
    widen_to: dict[str, str] = {}
    roots: set[str] = set()

    def consider(col: str, value: Any) -> None:
        if value is None:
            return
        current = wanted.get(col) or widen_to.get(col) or info.columns.get(col)
        if current is None:
            nat = natural_type(value, varchar=opts.varchar)
            if nat is not None:
                wanted[col] = nat
            return
        target = pgtypes.widen_for_value(current, value, varchar=opts.varchar)
        if target is not None:
            (wanted if col in wanted else widen_to)[col] = target

    for segs in segments:
        for ch in segs:
            if ch.kind is Kind.UPSERT and ch.values:
                for col, value in _columns_of(ch.values, info).items():
                    consider(col, value)
            elif ch.kind is Kind.PATCH and ch.patch is not None:
                for path, value in ch.patch.set.items():
                    if len(path) == 1:
                        consider(_col(path[0]), value)
                    else:
                        roots.add(_col(path[0]))
                for path in list(ch.patch.truncate) + ch.patch.unset:
                    if len(path) > 1:
                        roots.add(_col(path[0]))
    for root in roots:
        current = wanted.get(root) or widen_to.get(root) or info.columns.get(root)
        if current is None:
            wanted[root] = JSONB
        elif pgtypes.is_textual(current):
            (wanted if root in wanted else widen_to)[root] = JSONB
    for col, pg_type in wanted.items():
        await catalog.add_column(conn, info, col, pg_type)
        result.evolution.added.append((col, pg_type))
    for col, pg_type in widen_to.items():
        old = info.columns[col]
        await catalog.widen_column(conn, info, col, pg_type)
        result.evolution.widened.append((col, old, pg_type))


def _narrowed(info: TableInfo, col: str, value: Any, result: TableResult) -> None:
    if not result.overflowed[col]:
        log.warning(
            "type narrowing: value kept in overflow", schema=info.schema, table=info.table,
            column=col, column_type=info.columns.get(col),
            value_type=natural_type(value) or "null",
        )
    result.overflowed[col] += 1


async def _write_round(
    conn: Conn,
    info: TableInfo,
    changes: list[Change],
    opts: WriteOptions,
    result: TableResult,
) -> None:
    hard = opts.deletion_strategy == "hard"
    upserts = [c for c in changes if c.kind is Kind.UPSERT and not (hard and c.deleted)]
    deletes = [c for c in changes if c.kind is Kind.DELETE or (hard and c.deleted)]
    patches = [c for c in changes if c.kind is Kind.PATCH]
    if upserts:
        await _upserts(conn, info, upserts, opts, result)
    if deletes:
        keys = [list(col) for col in zip(*(key_tuple(c.key) for c in deletes), strict=True)]
        await conn.execute(
            statements.delete(info, hard, opts.force), *keys,
            [c.count for c in deletes], [_dec(c.position) for c in deletes],
            [c.source_ts for c in deletes], [c.tombstone_only for c in deletes],
        )
    if patches:
        await _patches(conn, info, patches, opts, result)


async def _upserts(
    conn: Conn,
    info: TableInfo,
    changes: list[Change],
    opts: WriteOptions,
    result: TableResult,
) -> None:
    keys = info.primary_key
    data = info.data_columns
    arrays: list[list[Any]] = [[] for _ in range(len(keys) + len(data))]
    ovfs, counts, tss, poss, dels = [], [], [], [], []
    for ch in changes:
        for i, k in enumerate(keys):
            arrays[i].append(ch.key[k])
        cells = _columns_of(ch.values or {}, info)
        overflow: dict[str, Any] = {}
        for j, col in enumerate(data, start=len(keys)):
            value = cells.get(col)
            if value is not None:
                adapted = adapt(value, info.columns[col])
                if adapted is NARROW:
                    overflow[col] = value
                    _narrowed(info, col, value, result)
                    adapted = None
                value = adapted
            arrays[j].append(value)
        ovfs.append(to_json_text(overflow) if overflow else None)
        counts.append(ch.count)
        tss.append(ch.source_ts)
        poss.append(_dec(ch.position))
        dels.append(ch.deleted)
    sql = statements.upsert(info, opts.upsert_mode, opts.force)
    await conn.execute(sql, *arrays, ovfs, counts, tss, poss, dels)


async def _patches(
    conn: Conn,
    info: TableInfo,
    changes: list[Change],
    opts: WriteOptions,
    result: TableResult,
) -> None:
    by_shape: dict[statements.PatchShape, list[list[Any]]] = defaultdict(list)
    for ch in changes:
        shape, args = _patch_args(info, ch, result)
        by_shape[shape].append(args)
    for shape, rows in by_shape.items():
        sql = statements.patch(info, shape, opts.metadata_schema, opts.force)
        await conn.executemany(sql, rows)


def _patch_args(
    info: TableInfo, ch: Change, result: TableResult
) -> tuple[statements.PatchShape, list[Any]]:
    assert ch.patch is not None
    p = ch.patch
    overflow: dict[str, Any] = {}
    top_set: dict[str, Any] = {}
    top_unset: list[str] = []
    nested: dict[str, list[tuple[str, Path, Any]]] = defaultdict(list)
    for path, size in p.truncate.items():
        if len(path) > 1:
            nested[_col(path[0])].append(("truncate", path[1:], size))
    for path, value in p.set.items():
        col = _col(path[0])
        if len(path) == 1:
            adapted = adapt(value, info.columns[col]) if col in info.columns else None
            if adapted is NARROW:
                overflow[col] = value
                _narrowed(info, col, value, result)
                adapted = None
            top_set[col] = adapted
        else:
            nested[col].append(("set", path[1:], value))
    for path in p.unset:
        col = _col(path[0])
        if len(path) == 1:
            if col in info.columns and col not in top_set:
                top_unset.append(col)
        else:
            nested[col].append(("unset", path[1:], None))
    args: list[Any] = [ch.key[k] for k in info.primary_key]
    args += list(top_set.values())
    shape_nested: list[tuple[str, tuple[str, ...]]] = []
    for root, ops in nested.items():
        if info.columns.get(root) != JSONB:  # cannot hold a path: keep the values aside
            for op, path, value in ops:
                if op == "set":
                    overflow[".".join((root, *path))] = value
                    _narrowed(info, root, value, result)
            continue
        init: dict[str, Any] = {}
        from .reduce import set_path

        for op, path, value in ops:
            if op == "set":
                set_path(init, path, value)
        args.append(to_json_text(init) if init else None)
        for op, path, value in ops:
            args.append(list(path))
            if op == "truncate":
                args.append(value)
            elif op == "set":
                args.append(to_json_text(value))
        shape_nested.append((root, tuple(op for op, _, _ in ops)))
    dropped = list(top_set) + top_unset
    args += [to_json_text(overflow) if overflow else None, dropped, ch.count, ch.source_ts,
             _dec(ch.position)]
    shape = statements.PatchShape(tuple(top_set), tuple(top_unset), tuple(shape_nested))
    return shape, args
