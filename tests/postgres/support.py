"""Helpers shared by the PostgreSQL destination tests: record builders, table reads and
the ``make_dest`` fixture (a connected connector, closed after the test)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest

from sink.postgres.connector import PostgreSQLDestinationConnector
from sink.postgres.names import qualified
from sink.records import Kind, Patch, Record

pytestmark = pytest.mark.integration

META = "warp_dest_test_meta"
TS = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
# Columns whose value depends on the clock, not on the records.
CLOCK = {"_cartridge_created_at", "_cartridge_updated_at", "deleted_at"}

Maker = Callable[..., Awaitable[PostgreSQLDestinationConnector]]


def up(db: str, key: Any, values: dict[str, Any], pos: int | None, *, op: str = "u",
       table: str = "t", off: int | None = None) -> Record:
    return Record(db, table, {"_id": key}, Kind.UPSERT, op, values={"_id": key, **values},
                  position=(pos, 1) if pos is not None else (), offset=off, source_ts=TS)


def dele(db: str, key: Any, pos: int | None, *, table: str = "t",
         off: int | None = None) -> Record:
    return Record(db, table, {"_id": key}, Kind.DELETE, "d",
                  position=(pos, 1) if pos is not None else (), offset=off)


def tomb(db: str, key: Any, *, table: str = "t", off: int | None = None) -> Record:
    return Record(db, table, {"_id": key}, Kind.DELETE, "tombstone", offset=off)


def patch(db: str, key: Any, pos: int | None, *, set: dict[str, Any] | None = None,
          unset: list[str] | None = None, truncate: dict[str, int] | None = None,
          table: str = "t") -> Record:
    p = Patch(
        set={tuple(k.split(".")): v for k, v in (set or {}).items()},
        unset=[tuple(k.split(".")) for k in unset or []],
        truncate={tuple(k.split(".")): v for k, v in (truncate or {}).items()},
    )
    return Record(db, table, {"_id": key}, Kind.PATCH, "u", patch=p,
                  position=(pos, 1) if pos is not None else ())


async def rows(conn: asyncpg.Connection[Any], db: str, table: str = "t",
               key: str = "_id") -> dict[Any, dict[str, Any]]:
    """Every row by key, jsonb decoded, numeric positions as ints."""
    out = {}
    for r in await conn.fetch(f"SELECT * FROM {qualified(db, table)}"):
        row = dict(r)
        for k, v in row.items():
            if isinstance(v, str) and k in JSONB_COLS.get((db, table), ()):
                row[k] = orjson.loads(v)
        out[row[key]] = row
    return out


JSONB_COLS: dict[tuple[str, str], set[str]] = {}


async def load_jsonb_cols(conn: asyncpg.Connection[Any], db: str, table: str = "t") -> None:
    found = await conn.fetch(
        "SELECT attname FROM pg_attribute "
        "WHERE attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) "
        "AND atttypid = 'jsonb'::regtype", db, table)
    JSONB_COLS[(db, table)] = {r["attname"] for r in found}


async def table_rows(conn: asyncpg.Connection[Any], db: str, table: str = "t",
                     key: str = "_id") -> dict[Any, dict[str, Any]]:
    await load_jsonb_cols(conn, db, table)
    return await rows(conn, db, table, key)


def without_clock(table: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {k: {c: v for c, v in r.items() if c not in CLOCK} for k, r in table.items()}


async def column_types(conn: asyncpg.Connection[Any], db: str, table: str = "t") -> dict[str, str]:
    found = await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute "
        "WHERE attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND attnum > 0 "
        "AND NOT attisdropped", db, table)
    return {r["attname"]: r["t"] for r in found}
