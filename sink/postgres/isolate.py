"""Helpers of the connector's isolation of refused records (bisection in savepoints)."""

from __future__ import annotations

from collections import defaultdict

from sink.errors import FatalError
from sink.postgres.catalog import Catalog
from sink.postgres.errors import classify, sqlstate
from sink.postgres.metadata import Conn
from sink.postgres.names import table_name
from sink.postgres.outcome import TableResult, WriteOptions
from sink.postgres.writer import prepare_table
from sink.records import Record

TableKey = tuple[str, str]


async def prepare_unit(
    conn: Conn, catalog: Catalog, records: list[Record], opts: WriteOptions
) -> dict[TableKey, TableResult]:
    """Before isolating a refused record: the DDL for the whole unit, once, outside the
    savepoints (its columns would otherwise be added again at every bisection step). A
    table whose DDL fails is left to the parts, which evolve it themselves as before."""
    by_table: dict[TableKey, list[Record]] = defaultdict(list)
    for rec in records:
        if rec.schema is not None and rec.table is not None:
            by_table[(table_name(rec.schema), table_name(rec.table))].append(rec)
    done: dict[TableKey, TableResult] = {}
    for key, recs in by_table.items():
        try:
            async with conn.transaction():
                done[key] = await prepare_table(conn, catalog, opts, *key, recs)
        except Exception as exc:
            catalog.forget()
            err = classify(exc)
            if err.retriable or isinstance(err, FatalError):
                raise err from exc
    return done


def merge_tables(into: dict[TableKey, TableResult], tables: dict[TableKey, TableResult]) -> None:
    for key, tr in tables.items():
        acc = into.setdefault(key, TableResult())
        acc.operations.update(tr.operations)
        acc.overflowed.update(tr.overflowed)
        acc.evolution.added += tr.evolution.added
        acc.evolution.widened += tr.evolution.widened


def row_too_big(exc: BaseException) -> bool:
    """PostgreSQL refused a row wider than a page (not an index row: a key cannot move)."""
    return sqlstate(exc) == "54000" and "row is too big" in str(exc)
