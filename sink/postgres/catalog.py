"""What the destination tables look like, and the DDL that creates and evolves them.

The cache is filled from PostgreSQL's catalog on first use of a table, so tables
created or altered by another instance (or by hand) are seen as they are. All DDL
runs on the caller's connection, inside the flush transaction, and is recorded in
the metadata schema's ``schema_changes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from sink.postgres import metadata, names
from sink.postgres import types as pgtypes
from sink.postgres.errors import StaleCatalog
from sink.postgres.metadata import Conn
from sink.postgres.names import qualified, quote
from sink.postgres.reclaim import reclaim_overflow
from sink.postgres.schema_types import base_of, use_hint

log = structlog.get_logger("sink.catalog")

MAX_COLUMNS = 1600  # PostgreSQL's MaxHeapAttributeNumber


@dataclass(slots=True)
class TableInfo:
    schema: str
    table: str
    columns: dict[str, str]  # column -> catalog type (format_type spelling)
    primary_key: list[str]
    soft_deletes: bool = True
    version: int = 0  # bumped on every DDL: statement caches key on it
    data_columns: list[str] = field(default_factory=list)
    sql: dict[Any, str] = field(default_factory=dict)  # statement text per (kind, options)
    narrowed: set[tuple[str, str]] = field(default_factory=set)  # (column, value type) seen
    slots: int = 0  # attribute numbers used, dropped columns included (they keep theirs)

    @property
    def full(self) -> bool:
        """No column can be added: PostgreSQL's limit counts dropped columns too."""
        return self.slots >= MAX_COLUMNS

    def refresh_data_columns(self) -> None:
        self.data_columns = [
            c for c in self.columns if c not in names.RESERVED and c not in self.primary_key
        ]
        self.sql.clear()

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.table)


@dataclass(slots=True)
class Evolution:
    """What one flush changed: counted for metrics by the caller."""

    added: list[tuple[str, str]] = field(default_factory=list)
    widened: list[tuple[str, str, str]] = field(default_factory=list)


def _use_hint(hint: str | None, natural: str) -> str:
    """The schema's type for a new column, unless the values need a wider one (the source
    widened the column since the schema the hint came from)."""
    t = use_hint(hint, natural)
    if pgtypes.varchar_len(t) is not None and natural == pgtypes.TEXT:
        return t  # the source's varchar(n): a longer string later widens it to text
    if t not in (natural, pgtypes.REAL) and pgtypes.widen(base_of(t), natural) is not None:
        return natural
    return t


# Extension types a propagated source type may name, and what a target without the
# extension gets instead (the values kept: citext's text, hstore's JSON object).
_EXTENSION_FALLBACK = {"citext": "text", "hstore": "jsonb"}


class Catalog:
    def __init__(self, metadata_schema: str, *, varchar: bool = False) -> None:
        self.metadata_schema = metadata_schema
        self.varchar = varchar
        self._tables: dict[tuple[str, str], TableInfo] = {}
        self._schemas: set[str] = set()
        # (schema, table) -> column -> the type the events' schema says, for new columns
        # (set by the writer per table and flush: schema_types.hinted).
        self.hints: dict[tuple[str, str], dict[str, str]] = {}
        self._extension_types: dict[str, bool] = {}  # citext/hstore: installed in the target?

    async def _available(self, conn: Conn, pg_type: str) -> str:
        """``pg_type``, or its fallback when it is an extension type the target lacks (looked
        up once per process: an extension created later is used after a restart)."""
        fallback = _EXTENSION_FALLBACK.get(pg_type)
        if fallback is None:
            return pg_type
        found = self._extension_types.get(pg_type)
        if found is None:
            found = bool(await conn.fetchval("SELECT to_regtype($1) IS NOT NULL", pg_type))
            self._extension_types[pg_type] = found
        return pg_type if found else fallback

    def forget(self, schema: str | None = None, table: str | None = None) -> None:
        """Drop cached shapes (all, or one table) so the next use reloads from the catalog."""
        if schema is None or table is None:
            self._tables.clear()
            self._schemas.clear()
        else:
            self._tables.pop((schema, table), None)

    async def reload(self, conn: Conn, info: TableInfo) -> TableInfo:
        """The table's shape as PostgreSQL has it now (another session may have changed it)."""
        self._tables.pop((info.schema, info.table), None)
        fresh = await self.load(conn, info.schema, info.table)
        if fresh is None:
            raise StaleCatalog(f"table {info.schema}.{info.table} disappeared")
        fresh.soft_deletes = info.soft_deletes
        fresh.narrowed = info.narrowed
        return fresh

    async def load(self, conn: Conn, schema: str, table: str) -> TableInfo | None:
        cached = self._tables.get((schema, table))
        if cached is not None:
            return cached
        rows = await conn.fetch(
            """
            SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
                   coalesce(a.attnum = ANY(i.indkey), false) AS pk, a.attnum, a.attisdropped
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
            WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0
            ORDER BY a.attnum
            """,
            schema,
            table,
        )
        if not rows:
            return None
        slots = max(r["attnum"] for r in rows)
        rows = [r for r in rows if not r["attisdropped"]]
        info = TableInfo(
            schema=schema,
            table=table,
            columns={r["name"]: r["type"] for r in rows},
            primary_key=[r["name"] for r in rows if r["pk"]],
            slots=slots,
        )
        info.refresh_data_columns()
        self._tables[(schema, table)] = info
        return info

    async def ensure_schema(self, conn: Conn, schema: str) -> None:
        if schema in self._schemas:
            return
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"schema {schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        self._schemas.add(schema)

    async def ensure_table(
        self,
        conn: Conn,
        schema: str,
        table: str,
        key_types: dict[str, str],
        *,
        soft_deletes: bool,
        source_name: str | None = None,
    ) -> TableInfo:
        info = await self.load(conn, schema, table)
        if info is not None:
            info.soft_deletes = soft_deletes
            return info
        # Two instances may meet a new table at once: serialise its creation.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{schema}.{table}")
        info = await self.load(conn, schema, table)
        if info is not None:
            info.soft_deletes = soft_deletes
            return info
        await self.ensure_schema(conn, schema)
        hints = self.hints.get((schema, table), {})
        key_types = {c: await self._available(conn, _use_hint(hints.get(c), t))
                     for c, t in key_types.items()}
        cols = [f"{quote(c)} {t} NOT NULL" for c, t in key_types.items()]
        cols += [f"{quote(c)} {t}" for c, t in names.RESERVED.items()]
        pk = ", ".join(quote(c) for c in key_types)
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} "
            f"({', '.join(cols)}, PRIMARY KEY ({pk}))"
        )
        if soft_deletes:
            index = names.shorten(f"{table}_is_deleted_idx")
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {quote(index)} ON {qualified(schema, table)} "
                f"({quote(names.IS_DELETED)}) WHERE {quote(names.IS_DELETED)}"
            )
        await conn.execute(
            f"INSERT INTO {quote(self.metadata_schema)}.tables "
            "(schema_name, table_name, source_name, primary_key) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING",
            schema, table, source_name, list(key_types),
        )
        await metadata.record_schema_change(
            conn, self.metadata_schema, schema_name=schema, table_name=table,
            change_type="create_table", details={"primary_key": key_types},
        )
        log.info("table created", schema=schema, table=table, primary_key=list(key_types))
        self._tables.pop((schema, table), None)
        loaded = await self.load(conn, schema, table)
        assert loaded is not None
        loaded.soft_deletes = soft_deletes
        return loaded

    async def add_column(
        self, conn: Conn, info: TableInfo, column: str, pg_type: str
    ) -> None:
        pg_type = await self._available(
            conn, _use_hint(self.hints.get((info.schema, info.table), {}).get(column), pg_type))
        await conn.execute(
            f"ALTER TABLE {info.qualified} ADD COLUMN IF NOT EXISTS {quote(column)} {pg_type}"
        )
        info.columns[column] = pg_type
        info.version += 1
        info.slots += 1
        info.refresh_data_columns()
        await metadata.record_schema_change(
            conn, self.metadata_schema, schema_name=info.schema, table_name=info.table,
            change_type="add_column", column=column, new_type=pg_type,
        )
        log.info("column added", schema=info.schema, table=info.table, column=column,
                 type=pg_type)

    async def widen_column(
        self, conn: Conn, info: TableInfo, column: str, new_type: str
    ) -> None:
        old = info.columns[column]
        using = f"{quote(column)}::{new_type}"
        if new_type == pgtypes.JSONB:
            using = f"to_jsonb({quote(column)})"
        await conn.execute(
            f"ALTER TABLE {info.qualified} ALTER COLUMN {quote(column)} TYPE {new_type} "
            f"USING {using}"
        )
        info.columns[column] = new_type
        info.version += 1
        info.sql.clear()
        if new_type == pgtypes.JSONB:
            await reclaim_overflow(conn, info, column)
        await metadata.record_schema_change(
            conn, self.metadata_schema, schema_name=info.schema, table_name=info.table,
            change_type="widen_column", column=column, old_type=old, new_type=new_type,
        )
        log.info("column widened", schema=info.schema, table=info.table, column=column,
                 old_type=old, new_type=new_type)

    async def record_narrowing(
        self, conn: Conn, info: TableInfo, column: str, value_type: str
    ) -> None:
        """Record in ``schema_changes`` that values of ``value_type`` arrived for ``column``
        and went to overflow: once per table shape loaded (again after a restart)."""
        if (column, value_type) in info.narrowed:
            return
        info.narrowed.add((column, value_type))
        await metadata.record_schema_change(
            conn, self.metadata_schema, schema_name=info.schema, table_name=info.table,
            change_type="narrowing", column=column, old_type=info.columns.get(column),
            new_type=value_type, details={"kept_in": names.OVERFLOW},
        )
