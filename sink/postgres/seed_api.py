"""The seed's library API for schemas, tables and markers (DESIGN section 5): explicit
calls a library user makes, beside the service's own path (``apply``). A mixin of
:class:`~sink.postgres.connector.PostgreSQLDestinationConnector`, which owns the pool and
the catalog these methods use."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import structlog

from sink.errors import RecordError
from sink.postgres import types as pgtypes
from sink.postgres.catalog import Catalog
from sink.postgres.names import column_name, quote, table_name
from sink.records import SchemaChange, TableSchema

log = structlog.get_logger("sink.postgres")


class SeedSchemaApi:
    """Needs ``pool``, ``catalog``, ``metadata_schema`` and ``deletion_strategy``."""

    catalog: Catalog
    metadata_schema: str
    deletion_strategy: str

    @property
    def pool(self) -> asyncpg.Pool:
        raise NotImplementedError

    # --- the seed's schema methods ----------------------------------------------

    async def create_schema_if_not_exists(self, schema_name: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema_name)}")

    async def create_table_if_not_exists(self, schema_name: str, table_schema: TableSchema) -> None:
        key_types = {
            column_name(c.name): _seed_type(c.pg_type)
            for c in table_schema.columns if c.name in table_schema.primary_key
        }
        async with self.pool.acquire() as conn, conn.transaction():
            info = await self.catalog.ensure_table(
                conn, schema_name, table_name(table_schema.name), key_types,
                soft_deletes=self.deletion_strategy != "hard",
            )
            for col in table_schema.columns:
                name = column_name(col.name)
                if name not in info.columns:
                    await self.catalog.add_column(conn, info, name, _seed_type(col.pg_type))

    async def apply_schema_changes(self, schema_name: str, changes: list[SchemaChange]) -> None:
        """Apply explicit evolution steps: ``add_column`` (details: column_name, column_type)
        and ``widen_column`` (column_name, new_type). Narrowing requests are refused."""
        async with self.pool.acquire() as conn, conn.transaction():
            for ch in changes:
                info = await self.catalog.load(conn, schema_name, table_name(ch.table_name))
                if info is None:
                    raise RecordError(f"table {schema_name}.{ch.table_name} does not exist")
                col = column_name(str(ch.details["column_name"]))
                if ch.change_type == "add_column":
                    pg_type = _seed_type(str(ch.details.get("column_type", "string")))
                    if col not in info.columns:
                        await self.catalog.add_column(conn, info, col, pg_type)
                elif ch.change_type == "widen_column":
                    new = _seed_type(str(ch.details["new_type"]))
                    old = info.columns[col]
                    if pgtypes.widen(old, new) != new:
                        log.warning("type narrowing refused", schema=schema_name,
                                    table=ch.table_name, column=col, old_type=old, new_type=new)
                        continue
                    await self.catalog.widen_column(conn, info, col, new)
                else:
                    raise RecordError(f"unknown schema change type {ch.change_type!r}")

    # --- markers -------------------------------------------------------------------

    async def update_marker(self, schema_name: str, table_name: str, marker: Any) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                f"INSERT INTO {quote(self.metadata_schema)}.markers (schema_name, table_name,"
                " marker) VALUES ($1, $2, $3::jsonb) ON CONFLICT (schema_name, table_name) DO "
                "UPDATE SET marker = EXCLUDED.marker, updated_at = now()",
                schema_name, table_name, pgtypes.to_json_text(marker),
            )

    async def get_marker(self, schema_name: str, table_name: str) -> Any | None:
        async with self.pool.acquire() as conn:
            raw = await conn.fetchval(
                f"SELECT marker FROM {quote(self.metadata_schema)}.markers "
                "WHERE schema_name = $1 AND table_name = $2",
                schema_name, table_name,
            )
        return None if raw is None else orjson.loads(raw)


_SEED_TYPES = {
    "string": pgtypes.TEXT, "text": pgtypes.TEXT, "integer": pgtypes.INTEGER,
    "int": pgtypes.INTEGER, "bigint": pgtypes.BIGINT, "float": pgtypes.REAL,
    "double": pgtypes.DOUBLE, "boolean": pgtypes.BOOLEAN, "timestamp": pgtypes.TIMESTAMPTZ,
    "date": pgtypes.DATE, "json": pgtypes.JSONB, "object": pgtypes.JSONB, "array": pgtypes.JSONB,
    "binary": pgtypes.BYTEA, "decimal": pgtypes.NUMERIC, "uuid": pgtypes.UUID,
}


def _seed_type(name: str) -> str:
    return _SEED_TYPES.get(name.lower(), name)
