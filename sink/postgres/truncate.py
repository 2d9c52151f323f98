"""A relational TRUNCATE under the ordering guard.

A truncate at source position P empties the table as it was at P: it removes the rows whose
last change is older than P (or has no position) and leaves the rows a later change wrote.
So a replay over a truncate is a no-op for the rows written after it, and the rows a replay
re-inserts from before it are removed again. With soft deletes (``deletion_strategy`` soft
or both) the rows are marked deleted at P, as a delete would; with hard deletes they are
removed. ``--force-replay`` (or a truncate without a position) removes every row.
"""

from __future__ import annotations

from typing import Any

from sink.postgres import names
from sink.postgres.catalog import TableInfo
from sink.postgres.metadata import Conn
from sink.postgres.names import quote
from sink.postgres.reduce import encode_position
from sink.records import Record

POS, DEL = quote(names.SOURCE_POS), quote(names.IS_DELETED)


def truncate_sql(info: TableInfo, soft: bool, guarded: bool) -> str:
    """Params: hard deletes: $1 the truncate's position (text) when ``guarded``; soft
    deletes: $1 the position, $2 its source timestamp."""
    older = f" AND ({POS} IS NULL OR {POS} < $1::numeric)" if guarded else ""
    if not soft:
        return f"DELETE FROM {info.qualified} WHERE true{older}"
    return (f"UPDATE {info.qualified} SET {DEL} = true, {quote(names.DELETED_AT)} = now(), "
            f"{quote(names.UPDATED_AT)} = now(), {quote(names.VERSION)} = "
            f"{quote(names.VERSION)} + 1, {POS} = coalesce($1::numeric, {POS}), "
            f"{quote(names.SOURCE_TS)} = coalesce($2::timestamptz, "
            f"{quote(names.SOURCE_TS)}) WHERE NOT {DEL}{older}")


async def apply_truncate(conn: Conn, info: TableInfo, rec: Record, opts: Any) -> None:
    """``opts``: the writer's WriteOptions (deletion_strategy, force)."""
    soft = opts.deletion_strategy != "hard"
    pos = encode_position(rec.position, rec.offset)
    guarded = pos is not None and not opts.force
    sql = truncate_sql(info, soft, guarded)
    text = None if pos is None else str(pos)
    if soft:
        await conn.execute(sql, text, rec.source_ts)
    elif guarded:
        await conn.execute(sql, text)
    else:
        await conn.execute(sql)
