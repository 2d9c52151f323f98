"""Source names (db, collection / schema, table) -> PostgreSQL schema and table names."""

from __future__ import annotations

from sink.config import MappingConfig
from sink.postgres.names import schema_name, table_name


class Router:
    def __init__(self, cfg: MappingConfig) -> None:
        self.cfg = cfg
        self._cache: dict[tuple[str, str], tuple[str, str]] = {}

    def route(self, db: str, collection: str) -> tuple[str, str]:
        key = (db, collection)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        override = self.cfg.overrides.get(f"{db}.{collection}")
        if override is not None:
            schema, _, table = override.partition(".")
        else:
            schema = self.cfg.schema_template.format(db=db, collection=collection)
            table = self.cfg.table_template.format(db=db, collection=collection)
        out = (schema_name(schema), table_name(table))
        self._cache[key] = out
        return out

    def topic_tables(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for topic, target in self.cfg.topic_tables.items():
            schema, _, table = target.partition(".")
            out[topic] = (schema, table)
        return out
