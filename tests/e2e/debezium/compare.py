"""Source table vs target table, column by column: types (``format_type``) and values (their
PostgreSQL text, both sessions in UTC, so equal text is an equal value of the same type).

A difference is a :data:`Gap` ``(table, column, problem)``: ``problem`` is ``"type <target
type>"``, ``"values"``, ``"missing column"``, ``"rows"`` (column ``*``: keys missing or
extra) or ``"missing table"``. The report keeps the why (counts and a first example) for
``docs/type-mapping.md``. Rows the sink soft-deleted (``is_deleted``) are not live rows;
the sink's own columns are not compared; a target column the source dropped is kept by
design (the sink never drops columns) and listed as ``kept``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from sink.postgres.names import IS_DELETED, RESERVED

Gap = tuple[str, str, str]

_SHAPE = """
SELECT c.relname AS tbl, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS typ,
       coalesce(a.attnum = ANY(i.indkey), false) AS pk, a.attnum
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""


@dataclass
class ColumnReport:
    column: str
    source_type: str
    target_type: str | None
    problems: list[str] = field(default_factory=list)
    detail: str = ""
    # the type the target must have when it is not the source's own (a MariaDB source)
    expected_type: str | None = None


@dataclass
class TableReport:
    table: str
    source_rows: int
    target_rows: int | None
    columns: list[ColumnReport] = field(default_factory=list)
    row_problem: str = ""
    kept: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.target_rows is not None and not self.row_problem and not any(
            c.problems for c in self.columns)

    def gaps(self) -> set[Gap]:
        out: set[Gap] = set()
        if self.target_rows is None:
            return {(self.table, "*", "missing table")}
        if self.row_problem:
            out.add((self.table, "*", "rows"))
        out |= {(self.table, c.column, p) for c in self.columns for p in c.problems}
        return out

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exact": self.exact}


async def _shapes(conn: Any, schema: str) -> dict[str, tuple[dict[str, str], list[str]]]:
    out: dict[str, tuple[dict[str, str], list[str]]] = {}
    for r in await conn.fetch(_SHAPE, schema):
        cols, pk = out.setdefault(r["tbl"], ({}, []))
        cols[r["col"]] = r["typ"]
        if r["pk"]:
            pk.append(r["col"])
    return out


async def _rows(conn: Any, schema: str, table: str, cols: list[str], live_only: bool
                ) -> list[tuple[str | None, ...]]:
    sel = ", ".join(f'"{c}"::text' for c in cols)
    where = f' WHERE NOT coalesce("{IS_DELETED}", false)' if live_only else ""
    rows = await conn.fetch(f'SELECT {sel} FROM "{schema}"."{table}"{where}')
    return [tuple(r) for r in rows]


def _short(v: str | None) -> str:
    if v is None:
        return "NULL"
    return repr(v) if len(v) <= 48 else repr(v[:45]) + "…"


def _compare_keyed(rep: TableReport, cols: list[str], pk: list[str], src: list[Any],
                   dst: list[Any], common: list[str]) -> None:
    idx = [cols.index(k) for k in pk]
    s_by = {tuple(r[i] for i in idx): r for r in src}
    d_by = {tuple(r[i] for i in idx): r for r in dst}
    missing, extra = s_by.keys() - d_by.keys(), d_by.keys() - s_by.keys()
    if missing or extra:
        rep.row_problem = (f"{len(missing)} source rows missing, {len(extra)} extra rows "
                           f"(e.g. {sorted(map(str, missing or extra))[0]})")
    both = sorted(s_by.keys() & d_by.keys(), key=str)
    for c in rep.columns:
        if c.column not in common:
            continue
        i = cols.index(c.column)
        diffs = [(k, s_by[k][i], d_by[k][i]) for k in both if s_by[k][i] != d_by[k][i]]
        if diffs:
            k, s, d = diffs[0]
            c.problems.append("values")
            c.detail = (f"{len(diffs)}/{len(both)} rows differ, e.g. key {k}: "
                        f"{_short(s)} → {_short(d)}")


def _compare_keyless(rep: TableReport, cols: list[str], src: list[Any], dst: list[Any],
                     common: list[str]) -> None:
    if Counter(src) != Counter(dst):
        rep.row_problem = f"source has {len(src)} rows, target {len(dst)} live rows (as a bag)"
    for c in rep.columns:
        if c.column in common:
            i = cols.index(c.column)
            s, d = Counter(r[i] for r in src), Counter(r[i] for r in dst)
            if s != d:
                c.problems.append("values")
                c.detail = f"value bags differ: only in source {sorted(map(_short, s - d))[:3]}"


async def compare(source_dsn: str, target_dsn: str, schema: str = "app") -> list[TableReport]:
    src_conn = await asyncpg.connect(source_dsn, server_settings={"TimeZone": "UTC"})
    dst_conn = await asyncpg.connect(target_dsn, server_settings={"TimeZone": "UTC"})
    try:
        src_shapes, dst_shapes = await _shapes(src_conn, schema), await _shapes(dst_conn, schema)
        reports: list[TableReport] = []
        for table, (scols, pk) in sorted(src_shapes.items()):
            cols = list(scols)
            src = await _rows(src_conn, schema, table, cols, live_only=False)
            if table not in dst_shapes:
                reports.append(TableReport(table, len(src), None))
                continue
            dcols = dst_shapes[table][0]
            common = [c for c in cols if c in dcols]
            rep = TableReport(table, len(src), 0, kept=[
                c for c in dcols if c not in scols and c not in RESERVED])
            for c in cols:
                col = ColumnReport(c, scols[c], dcols.get(c))
                if col.target_type is None:
                    col.problems.append("missing column")
                elif col.target_type != col.source_type:
                    col.problems.append(f"type {col.target_type}")
                rep.columns.append(col)
            dst = await _rows(dst_conn, schema, table, common, live_only=IS_DELETED in dcols)
            rep.target_rows = len(dst)
            src_common = [tuple(r[cols.index(c)] for c in common) for r in src]
            if pk and all(k in common for k in pk):
                _compare_keyed(rep, common, pk, src_common, dst, common)
            else:
                _compare_keyless(rep, common, src_common, dst, common)
            reports.append(rep)
        return reports
    finally:
        await src_conn.close()
        await dst_conn.close()


def connect_schemas(values: list[bytes | None]) -> dict[str, str]:
    """Column → its Connect schema in the captured messages (the last seen wins: DDL)."""
    import orjson

    out: dict[str, str] = {}
    for raw in values:
        if not raw:
            continue
        msg = orjson.loads(raw)
        schema = msg.get("schema") if isinstance(msg, dict) else None
        if not isinstance(schema, dict):
            continue
        for f in schema.get("fields") or []:
            if f.get("field") == "after":
                for col in f.get("fields") or []:
                    out[col["field"]] = describe(col)
    return out


def describe(node: dict[str, Any]) -> str:
    """``int16``, ``bytes Decimal(scale=2, precision=10)``, ``array<int32>``..."""
    return _describe(node) + _source(node.get("parameters") or {})


def _describe(node: dict[str, Any]) -> str:
    t = node.get("type", "?")
    if t == "array":
        return f"array<{describe(node.get('items') or {})}>"
    name = node.get("name")
    if not name:
        return str(t)
    params = {k.replace("connect.decimal.", ""): v
              for k, v in (node.get("parameters") or {}).items()
              if k != "allowed" and not k.startswith(_SOURCE)}
    short = name.rsplit(".", 1)[-1]
    args = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"{t} {short}({args})" if args else f"{t} {short}"


_SOURCE = "__debezium.source.column."


def _source(params: dict[str, Any]) -> str:
    """`` ← VARCHAR(20)``: the source type column.propagate.source.type added."""
    src = params.get(f"{_SOURCE}type")
    if src is None:
        return ""
    n, s = params.get(f"{_SOURCE}length", ""), params.get(f"{_SOURCE}scale", "0")
    size = [] if n in ("", "0", "2147483647") else [n] + ([s] if s not in ("0", None) else [])
    return f" ← {src}({','.join(size)})" if size else f" ← {src}"
