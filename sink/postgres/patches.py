"""Partial updates of a table: one statement per shape of patch (`patch_sql.patch`)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sink.postgres import patch_sql
from sink.postgres.catalog import Catalog, TableInfo
from sink.postgres.dates import exact_texts
from sink.postgres.metadata import Conn
from sink.postgres.outcome import TableResult, WriteOptions, narrowed, write_exact
from sink.postgres.patch_sql import Layout, PatchShape
from sink.postgres.plan import column_of, key_param
from sink.postgres.reduce import Change
from sink.postgres.types import adapt_column

Narrowed = list[tuple[str, Any]]  # (column, value) pairs kept in overflow


async def write_patches(
    conn: Conn, catalog: Catalog, info: TableInfo, pats: list[Change], opts: WriteOptions,
    result: TableResult,
) -> None:
    groups: dict[tuple[Any, ...], list[tuple[Change, list[Any], Narrowed]]] = defaultdict(list)
    aside = opts.squeeze is not None
    layouts: dict[patch_sql.Signature, tuple[Layout | None, list[Any]]] = {}
    for ch in pats:
        sig = patch_sql.signature(ch)
        lay, items = layouts.get(sig) or layouts.setdefault(
            sig, (None if aside else Layout.of(info, ch, column_of), []))
        row = None if lay is None else lay.row(ch)
        if row is not None:
            items.append((ch, row, []))
            continue
        shape, scalars, row, pairs = patch_sql.patch_row(info, ch, column_of, adapt=False,
                                                         aside=aside)
        groups[(shape, *scalars)].append((ch, row, pairs))
    for lay, items in layouts.values():
        if lay is not None and items:
            groups[lay.group] += items
    params: list[tuple[PatchShape, list[Any], list[list[Any]]]] = []
    for (shape, *scalars), items in groups.items():
        columns = _adapted(info, shape, [row for _, row, _ in items])
        if columns is None:  # a value the column cannot hold: adapt row by row (overflow)
            redo = [patch_sql.patch_row(info, ch, column_of, aside=aside)
                    for ch, _, _ in items]
            columns = [list(c) for c in zip(*(r[2] for r in redo), strict=True)]
            narrowings = [r[3] for r in redo]
        else:
            narrowings = [pairs for _, _, pairs in items]
        for pairs in narrowings:
            for col, value in pairs:
                await narrowed(conn, catalog, info, col, value, result)
        params.append((shape, [list(s) for s in scalars], columns))
    npk = len(info.primary_key)
    for shape, scalars, columns in params:
        for i, k in enumerate(info.primary_key):  # an interval key as text (plan.key_params)
            columns[i] = key_param(info.columns[k], columns[i])
        exact: dict[str, dict[int, str]] = {}
        for j, col in enumerate(shape.top_set):
            if texts := exact_texts(columns[npk + j], info.columns[col]):
                columns[npk + j] = [None if i in texts else v
                                    for i, v in enumerate(columns[npk + j])]
                exact[col] = texts
        key = ("patch", shape, opts.force)
        sql = info.sql.get(key) or info.sql.setdefault(
            key, patch_sql.patch(info, shape, opts.metadata_schema, opts.force))
        await conn.execute(sql, *scalars, *columns)
        await write_exact(conn, info, exact, columns[:npk], columns[-1])



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
