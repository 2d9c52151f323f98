"""Apply one table's records inside the caller's transaction.

Order of work for a table: create it if new → drop changes already applied (by source
position, for keys changed more than once in the batch) → reduce per key → for each
round of segments: evolve columns (reloading the table's shape first, as another session
may have changed it) → one set-based statement per kind. Values are handled a column at
a time (`pgtypes.adapt_column`); large upserts are COPYed into a staging table first.
No row is read into Python except the stored positions of keys changed more than once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

import structlog

from sink.errors import RecordError
from sink.postgres import statements
from sink.postgres import types as pgtypes
from sink.postgres.catalog import Catalog, Evolution, TableInfo
from sink.postgres.keyless import write_keyless
from sink.postgres.metadata import Conn
from sink.postgres.names import column_name
from sink.postgres.reduce import (
    Change,
    encode_position,
    position_of,
    reduce_records,
    start_change,
)
from sink.postgres.schema_types import hinted
from sink.postgres.statements import PatchShape
from sink.postgres.truncate import apply_truncate
from sink.postgres.types import JSONB, adapt_column, natural_type, target_type, to_json_text
from sink.records import Kind, Record

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
    stage_min_rows: int = statements.STAGE_MIN_ROWS  # COPY + staging table from this size


@dataclass(slots=True)
class TableResult:
    operations: Counter[str] = field(default_factory=Counter)
    overflowed: Counter[str] = field(default_factory=Counter)  # column -> values kept aside
    evolution: Evolution = field(default_factory=Evolution)


@dataclass(slots=True)
class Upserts:
    """One round's full documents, column-wise (no object per row on the common path)."""

    kts: list[Hashable]
    docs: list[dict[str, Any]]
    counts: list[int]
    ts: list[Any]
    pos: list[str | None]
    deleted: list[bool]

    @classmethod
    def of_changes(cls, chs: list[Change]) -> Upserts:
        return cls([c.kt for c in chs], [c.values or {} for c in chs], [c.count for c in chs],
                   [c.source_ts for c in chs], [_pos(c) for c in chs], [c.deleted for c in chs])

    @classmethod
    def of_records(cls, recs: list[Record], kts: list[Hashable]) -> Upserts:
        pos = [None if not r.position else str(position_of(r)) for r in recs]
        n = len(recs)
        return cls(kts, [r.values or {} for r in recs], [1] * n, [r.source_ts for r in recs],
                   pos, [False] * n)


@lru_cache(maxsize=65536)
def _col(field_name: str) -> str:
    return column_name(field_name)


def _pos(ch: Change) -> str | None:
    return None if ch.pos is None else str(ch.pos)


async def write_table(
    conn: Conn,
    catalog: Catalog,
    opts: WriteOptions,
    schema: str,
    table: str,
    records: list[Record],
) -> TableResult:
    result = TableResult()
    catalog.hints[(schema, table)] = hinted(records, _col)  # types the events' schema says
    for op, n in Counter(r.op for r in records).items():
        result.operations[OPERATION.get(op, "update")] += n
    if not any(r.kind is Kind.TRUNCATE for r in records):
        await _write_run(conn, catalog, opts, schema, table, records, result)
        return result
    run: list[Record] = []
    for rec in records:
        if rec.kind is Kind.TRUNCATE:
            if run:
                await _write_run(conn, catalog, opts, schema, table, run, result)
                run = []
            info = await catalog.load(conn, schema, table)
            if info is not None:
                await apply_truncate(conn, info, rec, opts)
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
    if records[0].keyless is not None:  # a table without a primary key
        return await write_keyless(conn, catalog, opts, schema, table, records)
    first = records[0].key
    by_col = {_col(k): k for k in first}
    key_types = {c: natural_type(first[k]) or pgtypes.TEXT for c, k in by_col.items()}
    info = await catalog.ensure_table(
        conn, schema, table, key_types, soft_deletes=opts.deletion_strategy != "hard",
        source_name=f"{schema}.{table}",
    )
    if set(info.primary_key) != set(by_col):
        raise RecordError(f"record key {sorted(by_col)} does not match the primary key "
                          f"{info.primary_key} of {schema}.{table}", code="key_mismatch")
    getter = itemgetter(*[by_col[c] for c in info.primary_key])
    try:
        kts: list[Hashable] = [getter(r.key) for r in records]
    except KeyError as exc:
        raise RecordError(f"record key lacks {exc} ({schema}.{table})",
                          code="key_mismatch") from exc
    if len(set(kts)) == len(kts):  # each key once: one round, upserts straight from records
        up = [i for i, r in enumerate(records) if r.kind is Kind.UPSERT]
        rest = [start_change(r, kts[i]) for i, r in enumerate(records) if r.kind is not Kind.UPSERT]
        ups = Upserts.of_records([records[i] for i in up], [kts[i] for i in up])
        await _write_round(conn, catalog, info, ups, rest, opts, result)
        return
    if not opts.force:
        records, kts = await _drop_applied(conn, info, records, kts)
    segments = reduce_records(records, kts)
    hard = opts.deletion_strategy == "hard"
    for i in range(max((len(s) for s in segments), default=0)):
        changes = [s[i] for s in segments if len(s) > i]
        full = [c for c in changes if c.kind is Kind.UPSERT and not (hard and c.deleted)]
        rest = [c for c in changes if not (c.kind is Kind.UPSERT and not (hard and c.deleted))]
        info = await _write_round(conn, catalog, info, Upserts.of_changes(full), rest, opts,
                                  result)


async def _drop_applied(
    conn: Conn, info: TableInfo, records: list[Record], kts: list[Hashable]
) -> tuple[list[Record], list[Hashable]]:
    """Keys changed more than once in this batch: drop the changes the row already holds,
    so versions count exactly what is applied (a replay may straddle the stored state)."""
    seen = Counter(kt for kt, r in zip(kts, records, strict=True) if r.position)
    multi = [kt for kt, n in seen.items() if n > 1]
    if not multi:
        return records, kts
    single = len(info.primary_key) == 1
    arrays = [multi] if single else [list(c) for c in zip(*multi, strict=True)]
    rows = await conn.fetch(statements.stored_positions(info), *arrays)
    npk = len(info.primary_key)
    stored = {(r[0] if single else tuple(r[i] for i in range(npk))): int(r["pos"])
              for r in rows if r["pos"] is not None}
    if not stored:
        return records, kts
    kept: list[Record] = []
    kept_kts: list[Hashable] = []
    for rec, kt in zip(records, kts, strict=True):
        have = stored.get(kt)
        if have is not None and rec.position:
            pos = encode_position(rec.position, rec.offset)
            if pos is not None and pos <= have:
                continue
        kept.append(rec)
        kept_kts.append(kt)
    return kept, kept_kts


async def _write_round(
    conn: Conn,
    catalog: Catalog,
    info: TableInfo,
    ups: Upserts,
    rest: list[Change],
    opts: WriteOptions,
    result: TableResult,
) -> TableInfo:
    """One round: ``ups`` full documents, ``rest`` deletes and patches (keys all distinct)."""
    hard = opts.deletion_strategy == "hard"
    dels = [c for c in rest if c.kind is not Kind.PATCH]
    pats = [c for c in rest if c.kind is Kind.PATCH]
    cols = _columnar(info, ups.docs)
    if _plan(info, ups, cols, rest, opts):
        info = await catalog.reload(conn, info)  # DDL ahead: see the table as it is now
        cols = _columnar(info, ups.docs)
        for col, (old, new) in _plan(info, ups, cols, rest, opts).items():
            if old is None:
                await catalog.add_column(conn, info, col, new)
                result.evolution.added.append((col, new))
            else:
                await catalog.widen_column(conn, info, col, new)
                result.evolution.widened.append((col, old, new))
    if ups.kts:
        await _upserts(conn, catalog, info, ups, cols, opts, result)
    if dels:
        await _deletes(conn, info, dels, hard, opts)
    if pats:
        await _patches(conn, catalog, info, pats, opts, result)
    return info


def _key_arrays(info: TableInfo, kts: list[Hashable]) -> list[list[Any]]:
    if len(info.primary_key) == 1:
        return [kts]
    return [list(c) for c in zip(*kts, strict=True)]


def _columnar(info: TableInfo, docs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Column name -> one value per document (None where the document lacks the field)."""
    out: dict[str, list[Any]] = {}
    pk = info.primary_key
    for f in set().union(*docs) if docs else ():
        c = _col(f)
        if c not in pk:
            out[c] = [d.get(f) for d in docs]
    return out


def _plan(
    info: TableInfo, ups: Upserts, cols: dict[str, list[Any]], rest: list[Change],
    opts: WriteOptions,
) -> dict[str, tuple[str | None, str]]:
    """The DDL a round needs: column -> (current type or None to add, new type)."""
    plan: dict[str, tuple[str | None, str]] = {}

    def want(col: str, values: list[Any]) -> None:
        cur = plan[col][1] if col in plan else info.columns.get(col)
        new = target_type(cur, values, varchar=opts.varchar)
        if new is not None:
            plan[col] = (plan[col][0] if col in plan else info.columns.get(col), new)

    kts = ups.kts + [c.kt for c in rest] if rest else ups.kts
    for col, values in zip(info.primary_key, _key_arrays(info, kts), strict=True):
        want(col, values)  # a key column widens too (integer -> bigint -> numeric)
    new = [c for c in cols if c not in info.columns]
    if new:
        new.sort(key=_first_seen(ups.docs))
    for col in [*(c for c in cols if c in info.columns), *new]:
        want(col, cols[col])
    top: dict[str, list[Any]] = defaultdict(list)
    roots: dict[str, None] = {}
    for ch in rest:
        if ch.patch is None:
            continue
        for path, value in ch.patch.set.items():
            if len(path) == 1 and (c := _col(path[0])) not in info.primary_key:
                top[c].append(value)
        for path in [*ch.patch.set, *ch.patch.unset, *ch.patch.truncate]:
            if len(path) > 1 or path in ch.patch.truncate:
                roots[_col(path[0])] = None
    for col, values in top.items():
        want(col, values)
    for root in roots:  # a dotted path needs a jsonb column (or goes to overflow)
        old = info.columns.get(root)
        if old is None or pgtypes.is_textual(plan[root][1] if root in plan else old):
            plan[root] = (old, JSONB)
    return plan


def _first_seen(docs: list[dict[str, Any]]) -> Any:
    """Sort key: new columns are added in the order their fields first appear."""
    order: dict[str, int] = {}
    for doc in docs:
        for f in doc:
            order.setdefault(_col(f), len(order))
    return order.__getitem__


def _value_type(value: Any) -> str:
    if isinstance(value, dict) and list(value) == ["$json"]:
        return "text with NUL"  # pgtypes.escaped
    return natural_type(value) or "null"


async def _narrowed(
    conn: Conn, catalog: Catalog, info: TableInfo, col: str, value: Any, result: TableResult,
    n: int = 1,
) -> None:
    value_type = _value_type(value)
    if (col, value_type) not in info.narrowed or not result.overflowed[col]:
        log.warning(
            "type narrowing: value kept in overflow", schema=info.schema, table=info.table,
            column=col, column_type=info.columns.get(col), value_type=value_type,
        )
    result.overflowed[col] += n
    await catalog.record_narrowing(conn, info, col, value_type)


async def _upserts(
    conn: Conn, catalog: Catalog, info: TableInfo, ups: Upserts,
    cols: dict[str, list[Any]], opts: WriteOptions, result: TableResult,
) -> None:
    n = len(ups.kts)
    arrays = _key_arrays(info, ups.kts)
    overflow: dict[int, dict[str, Any]] = {}
    nulls: list[Any] = [None] * n
    for col in info.data_columns:
        values = cols.get(col)
        if values is None:
            arrays.append(nulls)
            continue
        stored, over = adapt_column(values, info.columns[col])
        arrays.append(stored)
        for i, v in over.items():
            overflow.setdefault(i, {})[col] = v
        if over:
            firsts = {_value_type(v): v for v in over.values()}
            for v in firsts.values():
                await _narrowed(conn, catalog, info, col, v, result, 0)
            result.overflowed[col] += len(over)
    ovfs = [to_json_text(overflow[i]) if i in overflow else None for i in range(n)] if overflow \
        else nulls
    arrays += [ovfs, ups.counts, ups.ts, ups.pos, ups.deleted]
    if n < opts.stage_min_rows:
        key: tuple[Any, ...] = ("upsert", opts.upsert_mode, opts.force)
        sql = info.sql.get(key) or info.sql.setdefault(
            key, statements.upsert(info, opts.upsert_mode, opts.force))
        await conn.execute(sql, *arrays)
        return
    stage, ddl = statements.stage_table(info)
    key = ("staged", opts.upsert_mode, opts.force, stage)
    sql = info.sql.get(key) or info.sql.setdefault(
        key, statements.upsert(info, opts.upsert_mode, opts.force, staged=stage))
    await conn.execute(ddl)
    await conn.copy_records_to_table(stage, records=list(zip(*arrays, strict=False)),
                                     schema_name="pg_temp")
    await conn.execute(sql)


async def _deletes(
    conn: Conn, info: TableInfo, dels: list[Change], hard: bool, opts: WriteOptions
) -> None:
    key = ("delete", hard, opts.force)
    sql = info.sql.get(key) or info.sql.setdefault(key, statements.delete(info, hard, opts.force))
    await conn.execute(
        sql, *_key_arrays(info, [c.kt for c in dels]), [c.count for c in dels],
        [_pos(c) for c in dels], [c.source_ts for c in dels], [c.tombstone_only for c in dels],
        [c.tomb_offset if c.tombstone_only else None for c in dels],
    )


async def _patches(
    conn: Conn, catalog: Catalog, info: TableInfo, pats: list[Change], opts: WriteOptions,
    result: TableResult,
) -> None:
    groups: dict[tuple[Any, ...], list[tuple[Change, list[Any], Narrowed]]] = defaultdict(list)
    for ch in pats:
        shape, scalars, row, narrowed = statements.patch_row(info, ch, _col, adapt=False)
        groups[(shape, *scalars)].append((ch, row, narrowed))
    params: list[tuple[PatchShape, list[Any], list[list[Any]]]] = []
    for (shape, *scalars), items in groups.items():
        columns = _adapted(info, shape, [row for _, row, _ in items])
        if columns is None:  # a value the column cannot hold: adapt row by row (overflow)
            redo = [statements.patch_row(info, ch, _col) for ch, _, _ in items]
            columns = [list(c) for c in zip(*(r[2] for r in redo), strict=True)]
            narrowings = [r[3] for r in redo]
        else:
            narrowings = [narrowed for _, _, narrowed in items]
        for narrowed in narrowings:
            for col, value in narrowed:
                await _narrowed(conn, catalog, info, col, value, result)
        params.append((shape, [list(s) for s in scalars], columns))
    for shape, scalars, columns in params:
        key = ("patch", shape, opts.force)
        sql = info.sql.get(key) or info.sql.setdefault(
            key, statements.patch(info, shape, opts.metadata_schema, opts.force))
        await conn.execute(sql, *scalars, *columns)


Narrowed = list[tuple[str, Any]]


def _adapted(info: TableInfo, shape: PatchShape, rows: list[list[Any]]) -> list[list[Any]] | None:
    """The rows' parameters column-wise, the top-level values adapted to their columns;
    None when one of them cannot be stored in its column."""
    columns = [list(c) for c in zip(*rows, strict=True)]
    first = len(info.primary_key)
    for j, col in enumerate(shape.top_set):
        stored, over = adapt_column(columns[first + j], info.columns[col])
        if over:
            return None
        columns[first + j] = stored
    return columns
