"""MariaDB source table vs PostgreSQL target table: each source column has the PostgreSQL
type that holds all its values exactly (:func:`expected_type`); the target column must have
it, and every source value, cast to it by PostgreSQL, must have the same PostgreSQL text as
the target's value (both sessions in UTC).

A source value the expected type cannot hold (a zero date, a negative ``TIME``) renders as
``unrepresentable: <value>``, so it never equals a target value and shows as a ``values``
gap. Reports and gaps are :mod:`compare`'s, with ``expected_type`` filled in.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import asyncpg

from sink.postgres.names import IS_DELETED, RESERVED
from tests.e2e.debezium import compare
from tests.e2e.debezium.mariadb_server import DATABASE, PASSWORD, USER

_INTS = {  # (data type, unsigned) -> the smallest PostgreSQL integer holding every value
    ("tinyint", False): "smallint", ("tinyint", True): "smallint",
    ("smallint", False): "smallint", ("smallint", True): "integer",
    ("mediumint", False): "integer", ("mediumint", True): "integer",
    ("int", False): "integer", ("int", True): "bigint",
    ("bigint", False): "bigint", ("bigint", True): "numeric(20,0)",
}
_TEXTS = {"tinytext", "text", "mediumtext", "longtext", "enum", "set"}
_BYTES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}

# MariaDB's JSON is LONGTEXT with a json_valid() check: the text is the value, kept as is.
_COLUMNS = """
SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, DATETIME_PRECISION, COLUMN_KEY
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION
"""

_TRY_CAST = """
CREATE FUNCTION pg_temp.warp_try_cast(v text, t text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  EXECUTE format('SELECT %L::%s::text', v, t) INTO r;
  RETURN r;
EXCEPTION WHEN others THEN
  RETURN 'unrepresentable: ' || v;
END $$
"""


def expected_type(data_type: str, column_type: str, precision: int | None) -> str:
    """The natural exact PostgreSQL type of a MariaDB column (``format_type`` spelling)."""
    unsigned = "unsigned" in column_type
    size = re.search(r"\((\d+)(?:,(\d+))?\)", column_type)
    if (data_type, unsigned) in _INTS:
        return _INTS[(data_type, unsigned)]
    if data_type == "decimal" and size:
        return f"numeric({size.group(1)},{size.group(2) or 0})"
    if data_type == "float":
        return "real"
    if data_type == "double":
        return "double precision"
    if data_type == "bit":
        n = int(size.group(1)) if size else 1
        return "boolean" if n == 1 else f"bit({n})"
    if data_type == "char" and size:
        return f"character({size.group(1)})"
    if data_type == "varchar" and size:
        return f"character varying({size.group(1)})"
    if data_type in _TEXTS:
        return "text"
    if data_type in _BYTES:
        return "bytea"
    if data_type == "date":
        return "date"
    # precision 6 is PostgreSQL's default, which format_type does not spell out
    p = "" if precision == 6 else f"({precision or 0})"
    if data_type == "datetime":
        return f"timestamp{p} without time zone"
    if data_type == "timestamp":
        return f"timestamp{p} with time zone"
    if data_type == "time":
        return f"time{p} without time zone"
    if data_type == "year":
        return "integer"
    return f"? {column_type}"


def _literal(v: Any, pg_type: str) -> str | None:
    """A MariaDB value (as PyMySQL returns it) in the input syntax of ``pg_type``."""
    if v is None:
        return None
    if pg_type == "boolean" and isinstance(v, bytes):
        return "true" if int.from_bytes(v, "big") else "false"
    if pg_type.startswith("bit(") and isinstance(v, bytes):
        return format(int.from_bytes(v, "big"), f"0{pg_type[4:-1]}b")
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dt.timedelta):
        us = v // dt.timedelta(microseconds=1)
        sign, us = ("-" if us < 0 else ""), abs(us)
        return f"{sign}{us // 3_600_000_000:02d}:{us // 60_000_000 % 60:02d}:" \
               f"{us // 1_000_000 % 60:02d}.{us % 1_000_000:06d}"
    if isinstance(v, dt.datetime):
        return v.isoformat(" ") + ("+00" if "with time zone" in pg_type else "")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, set):
        return ",".join(sorted(v))
    return str(v)


def _source(port: int) -> Any:
    import pymysql

    return pymysql.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD,
                           database=DATABASE, charset="utf8mb4", autocommit=True,
                           init_command="SET time_zone = '+00:00'")


def _read_source(port: int) -> dict[str, tuple[list[tuple[str, str, str]], list[str],
                                              list[tuple[Any, ...]]]]:
    """table -> ([(column, source type, expected type)], primary key, rows)."""
    conn = _source(port)
    out: dict[str, tuple[list[tuple[str, str, str]], list[str], list[tuple[Any, ...]]]] = {}
    try:
        with conn.cursor() as cur:
            cur.execute(_COLUMNS, (DATABASE,))
            for table, col, dtype, ctype, prec, key in cur.fetchall():
                cols, pk, _ = out.setdefault(table, ([], [], []))
                cols.append((col, ctype, expected_type(dtype, ctype, prec)))
                if key == "PRI":
                    pk.append(col)
            for table, (cols, _pk, rows) in out.items():
                # a FLOAT widened to DOUBLE is its exact binary value; PostgreSQL's cast to
                # real rounds it back to the same float
                sel = ", ".join(f"CAST(`{c}` AS DOUBLE)" if e == "real" else f"`{c}`"
                                for c, _t, e in cols)
                cur.execute(f"SELECT {sel} FROM `{DATABASE}`.`{table}`")
                rows.extend(cur.fetchall())
    finally:
        conn.close()
    return out


async def compare_mariadb(port: int, target_dsn: str, schema: str = DATABASE
                          ) -> list[compare.TableReport]:
    import asyncio

    source = await asyncio.to_thread(_read_source, port)
    conn = await asyncpg.connect(target_dsn, server_settings={"TimeZone": "UTC"})
    try:
        await conn.execute(_TRY_CAST)
        dst_shapes = await compare._shapes(conn, schema)
        reports: list[compare.TableReport] = []
        for table, (cols, pk, raw) in sorted(source.items()):
            names = [c for c, _t, _e in cols]
            # every source value in the expected type's PostgreSQL text
            canon: list[list[str | None]] = []
            for i, (_c, _t, expected) in enumerate(cols):
                lits = [_literal(r[i], expected) for r in raw]
                canon.append(list(await conn.fetchval(
                    "SELECT coalesce(array_agg(CASE WHEN v IS NULL THEN NULL ELSE "
                    "pg_temp.warp_try_cast(v, $2) END ORDER BY n), '{}') "
                    "FROM unnest($1::text[]) WITH ORDINALITY AS u(v, n)", lits, expected)))
            src = [tuple(col[j] for col in canon) for j in range(len(raw))]
            if table not in dst_shapes:
                reports.append(compare.TableReport(table, len(src), None))
                continue
            dcols = dst_shapes[table][0]
            common = [c for c in names if c in dcols]
            rep = compare.TableReport(table, len(src), 0, kept=[
                c for c in dcols if c not in names and c not in RESERVED])
            for c, stype, expected in cols:
                col = compare.ColumnReport(c, stype, dcols.get(c), expected_type=expected)
                if col.target_type is None:
                    col.problems.append("missing column")
                elif col.target_type != expected:
                    col.problems.append(f"type {col.target_type}")
                rep.columns.append(col)
            dst = await compare._rows(conn, schema, table, common,
                                      live_only=IS_DELETED in dcols)
            rep.target_rows = len(dst)
            src_common = [tuple(r[names.index(c)] for c in common) for r in src]
            if pk and all(k in common for k in pk):
                compare._compare_keyed(rep, common, pk, src_common, dst, common)
            else:
                compare._compare_keyless(rep, common, src_common, dst, common)
            reports.append(rep)
        return reports
    finally:
        await conn.close()
