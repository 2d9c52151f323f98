"""Tables without a primary key (records with ``key == {}``, see ``sink.decode.keyless``).

The table has no key of its own: the data columns, the sink's columns and, for ``append``,
``_cartridge_op``. Changes apply one statement per record, in order (keyless tables are
rare, and each update or delete has to find its row):

* ``match_before``: an insert adds a row; an update sets the after image on ONE live row
  equal (``IS NOT DISTINCT FROM``, so NULLs match) to the before image on every column the
  image names, or inserts the after image when none is; a delete removes one such row
  (soft deletes: marks it). Two identical rows and one delete: one row is left, as at the
  source.
* ``append``: every event is a new row (the after image, the before image for a delete),
  with its op in ``_cartridge_op``.

Ordering guard: a change whose source position is not above the highest position the
table holds is skipped, so a replay adds nothing. (With hard deletes a replay past a delete
of the newest row can re-apply changes: the position left with the row.)
"""

from __future__ import annotations

from typing import Any

import structlog

from sink.errors import RecordError
from sink.postgres import metadata, names
from sink.postgres.catalog import Catalog, TableInfo
from sink.postgres.dates import exact_texts
from sink.postgres.metadata import Conn
from sink.postgres.names import column_name, qualified, quote
from sink.postgres.reduce import encode_position
from sink.postgres.schema_types import text_cast, travels_as_text
from sink.postgres.types import (
    JSONB,
    adapt_column,
    element_type,
    overflow_text,
    target_type,
)
from sink.records import Kind, Record

log = structlog.get_logger("sink.keyless")

OP = "_cartridge_op"
V, CR, UP, TS, POS = (quote(names.VERSION), quote(names.CREATED_AT), quote(names.UPDATED_AT),
                      quote(names.SOURCE_TS), quote(names.SOURCE_POS))
DEL, DAT, OVF = quote(names.IS_DELETED), quote(names.DELETED_AT), quote(names.OVERFLOW)


async def _ensure_table(conn: Conn, catalog: Catalog, schema: str, table: str, mode: str,
                        soft: bool) -> TableInfo:
    info = await catalog.load(conn, schema, table)
    if info is None:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{schema}.{table}")
        await catalog.ensure_schema(conn, schema)
        cols = [f"{quote(c)} {t}" for c, t in names.RESERVED.items()]
        if mode == "append":
            cols.append(f"{quote(OP)} text")
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} "
                           f"({', '.join(cols)})")
        await conn.execute(
            f"INSERT INTO {quote(catalog.metadata_schema)}.tables (schema_name, table_name, "
            "source_name, primary_key) VALUES ($1, $2, $3, '{}') ON CONFLICT DO NOTHING",
            schema, table, f"{schema}.{table}")
        await metadata.record_schema_change(
            conn, catalog.metadata_schema, schema_name=schema, table_name=table,
            change_type="create_table", details={"primary_key": {}, "keyless": mode})
        log.warning("table without a primary key created", schema=schema, table=table,
                    keyless=mode)
        catalog.forget(schema, table)
        info = await catalog.load(conn, schema, table)
        assert info is not None
    if info.primary_key:
        raise RecordError(f"a change without a record key for {schema}.{table}, which has the "
                          f"primary key {info.primary_key}", code="key_mismatch")
    info.soft_deletes = soft
    return info


async def _evolve(conn: Conn, catalog: Catalog, info: TableInfo, images: list[dict[str, Any]],
                  varchar: bool) -> None:
    by_col: dict[str, list[Any]] = {}
    for img in images:
        for f, v in img.items():
            by_col.setdefault(column_name(f), []).append(v)
    for col, values in by_col.items():
        cur = info.columns.get(col)
        new = target_type(cur, values, varchar=varchar)
        if new is None:  # fits, or only NULLs so far (no column: NULL is what it reads)
            continue
        if cur is None:
            await catalog.add_column(conn, info, col, new)
        else:
            await catalog.widen_column(conn, info, col, new)


class _Image:
    """An image's columns and values as the columns take them, what they cannot hold
    (overflow), and which values travel as text (`dates.exact_texts`)."""

    def __init__(self, info: TableInfo, image: dict[str, Any]) -> None:
        self.info = info
        self.cols: list[str] = []
        self.vals: list[Any] = []
        self.over: dict[str, Any] = {}
        self.texts: set[str] = set()
        for f, v in image.items():
            col = column_name(f)
            if col not in info.columns:
                continue  # only NULLs were ever seen for it (see _evolve)
            stored, narrowed = adapt_column([v], info.columns[col])
            text = exact_texts(stored, info.columns[col])
            self.cols.append(col)
            self.vals.append(text.get(0, stored[0]))
            if text:
                self.texts.add(col)
            if narrowed:
                self.over[col] = narrowed[0]

    def param(self, col: str, n: int) -> str:
        t = self.info.columns[col]
        if col in self.texts:
            return f"${n}::text::{t}"
        return f"${n}::{element_type(t)}" + ("::jsonb" if t == JSONB else "") + (
            text_cast(t) if travels_as_text(t) else "")


# Types without an equality operator (PostgreSQL refuses ``json = json``): a before image
# matches them by their text, which the column keeps exactly as it was written.
_NO_EQUALITY = frozenset({"json", "xml", "point", "line", "lseg", "box", "path", "polygon",
                          "circle"})


def _equal(image: _Image, col: str, n: int) -> str:
    base = image.info.columns[col].split("(")[0].strip().removesuffix("[]")
    if base in _NO_EQUALITY:
        return f"{quote(col)}::text IS NOT DISTINCT FROM ({image.param(col, n)})::text"
    return f"{quote(col)} IS NOT DISTINCT FROM {image.param(col, n)}"


async def _insert(conn: Conn, info: TableInfo, rec: Record, image: dict[str, Any],
                  pos: int | None, mode: str) -> None:
    img = _Image(info, image)
    cols, vals, over = img.cols, img.vals, img.over
    params = [img.param(c, i + 1) for i, c in enumerate(cols)]
    n = len(cols)
    extra_cols = [OVF, V, TS, POS] + ([quote(OP)] if mode == "append" else [])
    extra = [f"${n + 1}::jsonb", "1", f"${n + 2}::timestamptz", f"${n + 3}::numeric"]
    args = [overflow_text(over) if over else None, rec.source_ts,
            None if pos is None else str(pos)]
    if mode == "append":
        extra.append(f"${n + 4}::text")
        args.append(rec.op)
    await conn.execute(
        f"INSERT INTO {info.qualified} ({', '.join([*map(quote, cols), *extra_cols])}) "
        f"VALUES ({', '.join(params + extra)})", *vals, *args)


async def _apply_matched(conn: Conn, info: TableInfo, rec: Record, pos: int | None) -> bool:
    """Update or delete one live row equal to ``rec.before``; False when none is."""
    assert rec.before is not None
    before = _Image(info, rec.before)
    bcols, bvals = before.cols, before.vals
    where = [_equal(before, c, i + 1) for i, c in enumerate(bcols)]
    if info.soft_deletes:
        where.append(f"NOT {DEL}")
    n = len(bcols)
    args: list[Any] = [*bvals, rec.source_ts, None if pos is None else str(pos)]
    meta = [f"{V} = {V} + 1", f"{UP} = now()", f"{TS} = ${n + 1}::timestamptz",
            f"{POS} = ${n + 2}::numeric"]
    row = (f"ctid = (SELECT ctid FROM {info.qualified} WHERE "
           f"{' AND '.join(where) or 'true'} LIMIT 1)")
    if rec.kind is Kind.DELETE and not info.soft_deletes:
        status = await conn.execute(f"DELETE FROM {info.qualified} WHERE {row}", *bvals)
    elif rec.kind is Kind.DELETE:
        status = await conn.execute(
            f"UPDATE {info.qualified} SET {DEL} = true, {DAT} = now(), {', '.join(meta)} "
            f"WHERE {row}", *args)
    else:
        after = _Image(info, rec.values or {})
        acols, avals, over = after.cols, after.vals, after.over
        sets = [f"{quote(c)} = {after.param(c, n + 3 + i)}" for i, c in enumerate(acols)]
        sets.append(f"{OVF} = ${n + 3 + len(acols)}::jsonb")
        status = await conn.execute(
            f"UPDATE {info.qualified} SET {', '.join(sets + meta)} WHERE {row}",
            *args, *avals, overflow_text(over) if over else None)
    return bool(status.split()[-1] != "0")


async def write_keyless(conn: Conn, catalog: Catalog, opts: Any, schema: str, table: str,
                        records: list[Record]) -> None:
    """``opts``: the writer's WriteOptions (deletion_strategy, varchar, force)."""
    soft, varchar, force = opts.deletion_strategy != "hard", opts.varchar, opts.force
    mode = records[0].keyless or "match_before"
    info = await _ensure_table(conn, catalog, schema, table, mode, soft)
    if not force:
        mark = await conn.fetchval(f"SELECT max({POS}) FROM {info.qualified}")
        if mark is not None:
            records = [r for r in records if (p := encode_position(r.position, r.offset))
                       is None or p > int(mark)]
    images = [img for r in records for img in (r.values, r.before) if img]
    info = await catalog.reload(conn, info)
    await _evolve(conn, catalog, info, images, varchar)
    for rec in records:
        pos = encode_position(rec.position, rec.offset)
        if mode == "append":
            await _insert(conn, info, rec, (rec.values if rec.kind is Kind.UPSERT else
                                            rec.before) or {}, pos, mode)
        elif rec.kind is Kind.UPSERT and (rec.op in ("c", "r") or not rec.before):
            await _insert(conn, info, rec, rec.values or {}, pos, mode)
        elif not await _apply_matched(conn, info, rec, pos):
            log.warning("no row matches the before image", schema=schema, table=table,
                        op=rec.op)
            if rec.kind is Kind.UPSERT:
                await _insert(conn, info, rec, rec.values or {}, pos, mode)
