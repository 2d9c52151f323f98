"""Which tables a topic's records went to, and which table and key a tombstone deletes.

A tombstone's value is null: only its topic and key say what it deletes. The service
answers from the records it read recently (the usual case: Debezium writes the tombstone
right after the key's delete); this module answers for keys whose records were applied
before (another run, or long ago): from the tables the topic fed (the sink's
``topic_destinations`` table, plus ``mapping.topic_tables``), the reading of the key that
matches a table's primary key and, when several tables or readings fit, the row that
exists and was changed last by the topic (the Kafka offset in its stored position).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from sink.postgres import ids, metadata
from sink.postgres.catalog import Catalog, TableInfo
from sink.postgres.errors import StaleCatalog, classify
from sink.postgres.metadata import Conn
from sink.postgres.names import SOURCE_POS, column_name, quote, table_name
from sink.records import Record

TableKey = tuple[str, str]
Pair = tuple[str, str, str]  # topic, schema, table
_OFFSET_MOD = 2**64  # a stored position keeps the Kafka offset in its low 64 bits


@dataclass(frozen=True, slots=True)
class Target:
    """Where a tombstone applies: the table and the key as that table's rows hold it."""

    schema: str
    table: str
    key: dict[str, Any]


class TopicMemory:
    """The (topic, table) pairs stored in the metadata schema, cached once committed."""

    def __init__(self, metadata_schema: str) -> None:
        self.metadata_schema = metadata_schema
        self._known: set[Pair] = set()

    @staticmethod
    def pairs(records: Iterable[Record]) -> set[Pair]:
        return {(r.topic, r.schema, r.table) for r in records
                if r.topic is not None and r.schema is not None and r.table is not None}

    async def remember(self, conn: Conn, records: list[Record]) -> None:
        """In the savepoint that writes ``records``: their names fail with them."""
        new = self.pairs(records) - self._known
        if new:
            await metadata.remember_topics(conn, self.metadata_schema, sorted(new))

    def committed(self, records: list[Record], failed: Iterable[Record]) -> None:
        gone = {id(r) for r in failed}
        self._known |= self.pairs(r for r in records if id(r) not in gone)

    async def target(
        self, conn: Conn, catalog: Catalog, topic: str, keys: list[dict[str, Any]],
        offset: int, configured: TableKey | None,
    ) -> Target | None:
        """The table and key a tombstone at ``offset`` of ``topic`` deletes; None when no
        table the topic fed has a primary key that fits the key, or no such row exists
        where several could."""
        candidates = await metadata.topic_tables(conn, self.metadata_schema, topic)
        if configured is not None and configured not in candidates:
            candidates.append(configured)
        fits: list[tuple[TableInfo, dict[str, Any]]] = []
        for schema, table in candidates:
            info = await catalog.load(conn, table_name(schema), table_name(table))
            if info is None:
                continue  # not created yet, or dropped
            pk = set(info.primary_key)
            fits.extend((info, key) for key in keys
                        if {column_name(k) for k in key} == pk)
        if len(fits) == 1:
            info, key = fits[0]
            return Target(info.schema, info.table, key)
        best: tuple[int, int, TableInfo, dict[str, Any]] | None = None
        for info, key in fits:
            stored = await _probe(conn, info, key)
            if stored is None:
                continue
            # A row changed after the tombstone (a replay) ranks below one changed before.
            rank = (1 if stored < offset else 0, stored)
            if best is None or rank > best[:2]:
                best = (*rank, info, key)
        if best is None:
            return None
        return Target(best[2].schema, best[2].table, best[3])


async def _probe(conn: Conn, info: TableInfo, key: dict[str, Any]) -> int | None:
    """The stored offset of the key's row (-1 without one), None when there is no row or
    the key's values do not fit the key columns' types."""
    names = {column_name(k): v for k, v in key.items()}
    cols = info.primary_key
    for c in cols:  # a MongoDB id as its column holds it (ids.py)
        v = names[c]
        if ids.is_id(v) and (convert := ids.converter(info.columns[c])) is not None:
            names[c] = convert(v)
            if names[c] is None:
                return None  # an id this column cannot hold: not this table's row
    where = " AND ".join(f"{quote(c)} = ${i + 1}" for i, c in enumerate(cols))
    sql = (f"SELECT coalesce(mod({quote(SOURCE_POS)}, {_OFFSET_MOD}), -1)::numeric "
           f"FROM {info.qualified} WHERE {where}")
    try:
        found = await conn.fetchval(sql, *[names[c] for c in cols])
    except (asyncpg.PostgresError, asyncpg.exceptions.DataError, ValueError, TypeError,
            OverflowError) as exc:
        err = classify(exc)
        if err.retriable and not isinstance(err, StaleCatalog):
            raise err from exc
        return None  # this reading of the key is not this table's (a type mismatch)
    return None if found is None else int(found)


__all__ = ["Target", "TopicMemory"]
