"""Apply one table's records inside the caller's transaction.

Order of work for a table: create it if new → drop changes already applied (by source
position, for keys changed more than once in the batch) → reduce per key → for each
round of segments: evolve columns (reloading the table's shape first, as another session
may have changed it) → one set-based statement per kind. Values are handled a column at
a time (`pgtypes.adapt_column`); large upserts are COPYed into a staging table first.
No row is read into Python except the stored positions of keys changed more than once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from operator import itemgetter
from typing import Any

import structlog

from sink.errors import RecordError
from sink.postgres import ids, statements
from sink.postgres import types as pgtypes
from sink.postgres.catalog import Catalog, TableInfo
from sink.postgres.dates import exact_texts
from sink.postgres.keyless import write_keyless
from sink.postgres.metadata import Conn
from sink.postgres.outcome import (
    TableResult,
    WriteOptions,
    narrowed,
    value_type,
    write_exact,
)
from sink.postgres.patches import write_patches
from sink.postgres.plan import Plan, column_of, columnar, ddl_plan, key_params, run_plan
from sink.postgres.reduce import Change, encode_position, reduce_records
from sink.postgres.rows import Upserts, change_pos, has_kind, op_counts, split_unique
from sink.postgres.schema_types import hinted
from sink.postgres.squeeze import squeeze
from sink.postgres.truncate import apply_truncate
from sink.postgres.types import adapt_column, natural_type, overflow_text
from sink.records import Kind, Record

log = structlog.get_logger("sink.writer")

OPERATION = {"c": "insert", "r": "insert", "u": "update", "d": "delete", "tombstone": "delete",
             "t": "truncate"}


async def write_table(
    conn: Conn,
    catalog: Catalog,
    opts: WriteOptions,
    schema: str,
    table: str,
    records: list[Record],
) -> TableResult:
    result = TableResult()
    catalog.hints[(schema, table)] = hinted(records, column_of)  # types the events' schema says
    for op, n in op_counts(records).items():
        result.operations[OPERATION.get(op, "update")] += n
    if not has_kind(records, Kind.TRUNCATE):
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
    info, records, kts, refused = await _open(conn, catalog, opts, schema, table, records)
    if refused:
        result.rejected += refused
        for rec, _ in refused:
            result.operations[OPERATION.get(rec.op, "update")] -= 1
        log.warning("records refused: _id type mismatch", schema=schema, table=table,
                    count=len(refused), column_type=info.columns[info.primary_key[0]])
        if not records:
            return None
    unique = len(set(kts)) == len(kts)
    planned = not unique or has_kind(records, Kind.PATCH)
    if planned:
        # Types from every value in partition order, before any folding (a round sees
        # upserts before patches, and a folded key only its last document).
        info = await _evolve(conn, catalog, info, result,
                             lambda i: run_plan(i, records, kts, varchar=opts.varchar))
    if unique:  # each key once: one round, upserts straight from records
        ups, rest = split_unique(records, kts)
        # Nothing folded: the round holds exactly the values run_plan just planned for.
        await _write_round(conn, catalog, info, ups, rest, opts, result, planned=planned)
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


async def prepare_table(
    conn: Conn, catalog: Catalog, opts: WriteOptions, schema: str, table: str,
    records: list[Record],
) -> TableResult:
    """Create and evolve the table for all of ``records`` at once (the DDL of a flush that
    is then written in parts, e.g. while isolating a refused record)."""
    result = TableResult()
    data = [r for r in records if r.kind is not Kind.TRUNCATE]
    catalog.hints[(schema, table)] = hinted(data, column_of)
    if data and data[0].keyless is None:  # a keyless table's writer makes its own DDL
        info, data, kts, _ = await _open(conn, catalog, opts, schema, table, data)
        await _evolve(conn, catalog, info, result,
                      lambda i: run_plan(i, data, kts, varchar=opts.varchar))
    return result


async def _open(
    conn: Conn, catalog: Catalog, opts: WriteOptions, schema: str, table: str,
    records: list[Record],
) -> tuple[TableInfo, list[Record], list[Hashable], list[tuple[Record, RecordError]]]:
    """The table (created if new), the records it can hold, each one's key in primary-key
    order (a MongoDB id as its column's type: `ids`), and the records refused."""
    first = records[0].key
    by_col = {column_of(k): k for k in first}
    key_types = {c: _key_type(first[k], opts) for c, k in by_col.items()}
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
    if any(type(v) is list for v in first.values()):  # an array key: grouped as a tuple
        kts = [_frozen(kt) for kt in kts]  # (plan.key_param passes it as the list again)
    col = info.primary_key[0]
    # Only a MongoDB table's ids need converting: a relational integer key is an int already,
    # and its flushes should not pay a pass over every record for nothing.
    mongo = len(info.primary_key) == 1 and ids.is_id(kts[0])
    convert = ids.converter(info.columns[col]) if mongo else None
    if convert is None:
        return info, records, kts, []
    kept: list[Record] = []
    kept_kts: list[Hashable] = []
    refused: list[tuple[Record, RecordError]] = []
    for rec, kt in zip(records, kts, strict=True):
        if ids.is_id(kt):
            value = convert(kt)
            if value is None:
                refused.append((rec, ids.mismatch(f"{schema}.{table}", col, info.columns[col],
                                                  kt)))
                continue
            kt = value
        kept.append(rec)
        kept_kts.append(kt)
    return info, kept, kept_kts, refused


def _frozen(v: Any) -> Any:
    return tuple(map(_frozen, v)) if type(v) in (list, tuple) else v


def _key_type(value: Any, opts: WriteOptions) -> str:
    """A new table's key column type: a MongoDB id's from `ids`, else the value's own."""
    if ids.is_id(value):
        return ids.column_type(value, opts.id_type)
    return natural_type(value) or pgtypes.TEXT


async def _drop_applied(
    conn: Conn, info: TableInfo, records: list[Record], kts: list[Hashable]
) -> tuple[list[Record], list[Hashable]]:
    """Keys changed more than once in this batch: drop the changes the row already holds,
    so versions count exactly what is applied (a replay may straddle the stored state)."""
    seen = Counter(kt for kt, r in zip(kts, records, strict=True) if r.position)
    multi = [kt for kt, n in seen.items() if n > 1]
    if not multi:
        return records, kts
    rows = await conn.fetch(statements.stored_positions(info), *key_params(info, multi))
    stored = {multi[r[0] - 1]: int(r[1]) for r in rows if r[1] is not None}
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
    *,
    planned: bool = False,
) -> TableInfo:
    """One round: ``ups`` full documents, ``rest`` deletes and patches (keys all distinct).
    ``planned``: the table's DDL already covers every value of the round (`run_plan`
    over the same records): planning again costs about 1 µs a patch and finds nothing."""
    hard = opts.deletion_strategy == "hard"
    dels = [c for c in rest if c.kind is not Kind.PATCH]
    pats = [c for c in rest if c.kind is Kind.PATCH]
    cols = columnar(info, ups.docs)
    if not planned:
        info = await _evolve(conn, catalog, info, result, lambda i: ddl_plan(
            i, ups.docs, ups.kts, cols, rest, varchar=opts.varchar))
    if ups.kts:
        await _upserts(conn, catalog, info, ups, cols, opts, result)
    if dels:
        await _deletes(conn, info, dels, hard, opts)
    if pats:
        await write_patches(conn, catalog, info, pats, opts, result)
    return info


async def _evolve(
    conn: Conn, catalog: Catalog, info: TableInfo, result: TableResult,
    planner: Callable[[TableInfo], Plan],
) -> TableInfo:
    """Apply the DDL ``planner`` asks of the table (planned again on the table as
    PostgreSQL has it now: another session may have changed it)."""
    if not planner(info):
        return info
    info = await catalog.reload(conn, info)
    for col, (old, new) in planner(info).items():
        if old is None:
            await catalog.add_column(conn, info, col, new)
            result.evolution.added.append((col, new))
        else:
            await catalog.widen_column(conn, info, col, new)
            result.evolution.widened.append((col, old, new))
    return info


async def _upserts(
    conn: Conn, catalog: Catalog, info: TableInfo, ups: Upserts,
    cols: dict[str, list[Any]], opts: WriteOptions, result: TableResult,
) -> None:
    n = len(ups.kts)
    arrays = key_params(info, ups.kts)
    keys = list(arrays)
    overflow: dict[int, dict[str, Any]] = {}
    exact: dict[str, dict[int, str]] = {}
    nulls: list[Any] = [None] * n
    for col, vals in cols.items():
        if col not in info.columns:  # no column for it (no type, or the table is full)
            over = {i: v for i, v in enumerate(vals) if v is not None}
            for i, v in over.items():
                overflow.setdefault(i, {})[col] = v
            if over:
                await narrowed(conn, catalog, info, col, next(iter(over.values())), result,
                                len(over))
    for col in info.data_columns:
        values = cols.get(col)
        if values is None:
            arrays.append(nulls)
            continue
        stored, over = adapt_column(values, info.columns[col])
        if texts := exact_texts(stored, info.columns[col]):
            stored = [None if i in texts else v for i, v in enumerate(stored)]
            exact[col] = texts
        arrays.append(stored if opts.squeeze is None or stored is not values else list(stored))
        for i, v in over.items():
            overflow.setdefault(i, {})[col] = v
        if over:
            firsts = {value_type(v): v for v in over.values()}
            for v in firsts.values():
                await narrowed(conn, catalog, info, col, v, result, 0)
            result.overflowed[col] += len(over)
    if opts.squeeze is not None:
        data = arrays[len(keys):]
        present = [c for c, a in zip(info.data_columns, data, strict=True) if a is not nulls]
        kept = [a for a in data if a is not nulls]
        moved = squeeze(present, kept, cols, opts.squeeze, overflow)
        for i, col in moved:
            exact.get(col, {}).pop(i, None)
            result.overflowed[col] += 1
        log.warning("row too wide for a page: values kept in overflow", schema=info.schema,
                    table=info.table, columns=len({c for _, c in moved}), budget=opts.squeeze)
    ovfs = [overflow_text(overflow[i]) if i in overflow else None for i in range(n)] if overflow \
        else nulls
    arrays += [ovfs, ups.counts, ups.ts, ups.pos, ups.deleted]
    if n < opts.stage_min_rows:
        key: tuple[Any, ...] = ("upsert", opts.upsert_mode, opts.force)
        sql = info.sql.get(key) or info.sql.setdefault(
            key, statements.upsert(info, opts.upsert_mode, opts.force))
        await conn.execute(sql, *arrays)
        await write_exact(conn, info, exact, keys, ups.pos)
        return
    stage, ddl = statements.stage_table(info)
    key = ("staged", opts.upsert_mode, opts.force, stage)
    sql = info.sql.get(key) or info.sql.setdefault(
        key, statements.upsert(info, opts.upsert_mode, opts.force, staged=stage))
    await conn.execute(ddl)
    await conn.copy_records_to_table(stage, records=list(zip(*arrays, strict=False)),
                                     schema_name="pg_temp")
    await conn.execute(sql)
    await write_exact(conn, info, exact, keys, ups.pos)


async def _deletes(
    conn: Conn, info: TableInfo, dels: list[Change], hard: bool, opts: WriteOptions
) -> None:
    key = ("delete", hard, opts.force)
    sql = info.sql.get(key) or info.sql.setdefault(key, statements.delete(info, hard, opts.force))
    await conn.execute(
        sql, *key_params(info, [c.kt for c in dels]), [c.count for c in dels],
        [change_pos(c) for c in dels], [c.source_ts for c in dels],
        [c.tombstone_only for c in dels],
        [c.tomb_offset if c.tombstone_only else None for c in dels],
    )


