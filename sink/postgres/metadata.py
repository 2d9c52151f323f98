"""The sink's own tables in the metadata schema: offsets, markers, schema history,
the table registry. Created on connect and migrated under an advisory lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from sink.postgres.names import quote

# A plain connection or one borrowed from the pool: both run the same SQL.
Conn = asyncpg.Connection | PoolConnectionProxy

# Each entry is applied once, in order; the applied count is kept in schema_version.
_MIGRATIONS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {m}.kafka_offsets (
        group_id text NOT NULL,
        topic text NOT NULL,
        partition integer NOT NULL,
        next_offset bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (group_id, topic, partition)
    );
    CREATE TABLE IF NOT EXISTS {m}.schema_changes (
        id bigserial PRIMARY KEY,
        schema_name text NOT NULL,
        table_name text NOT NULL,
        change_type text NOT NULL,
        column_name text,
        old_type text,
        new_type text,
        details jsonb,
        applied_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS {m}.tables (
        schema_name text NOT NULL,
        table_name text NOT NULL,
        source_name text,
        primary_key text[] NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (schema_name, table_name)
    );
    CREATE TABLE IF NOT EXISTS {m}.topic_tables (
        topic text PRIMARY KEY,
        schema_name text NOT NULL,
        table_name text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS {m}.markers (
        schema_name text NOT NULL,
        table_name text NOT NULL,
        marker jsonb,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (schema_name, table_name)
    );
    """,
    # Creates missing parent objects on the way, as MongoDB's $set does; a scalar in the
    # way is replaced by an object. Used by partial updates of jsonb columns.
    """
    CREATE OR REPLACE FUNCTION {m}.jsonb_set_deep(target jsonb, path text[], val jsonb)
    RETURNS jsonb LANGUAGE sql IMMUTABLE AS $fn$
      SELECT CASE
        WHEN coalesce(array_length(path, 1), 0) = 0 THEN val
        WHEN array_length(path, 1) = 1 THEN
          jsonb_set(CASE WHEN jsonb_typeof(target) IN ('object', 'array') THEN target
                         ELSE '{{}}'::jsonb END, path, val, true)
        ELSE
          jsonb_set(CASE WHEN jsonb_typeof(target) IN ('object', 'array') THEN target
                         ELSE '{{}}'::jsonb END,
                    path[1:1],
                    {m}.jsonb_set_deep(
                      CASE WHEN jsonb_typeof(target) IN ('object', 'array')
                           THEN target -> path[1] END,
                      path[2:], val),
                    true)
      END
    $fn$;
    CREATE OR REPLACE FUNCTION {m}.jsonb_truncate(target jsonb, path text[], size integer)
    RETURNS jsonb LANGUAGE sql IMMUTABLE AS $fn$
      SELECT CASE
        WHEN jsonb_typeof(target #> path) = 'array' THEN
          jsonb_set(target, path, coalesce(
            (SELECT jsonb_agg(e ORDER BY i) FROM jsonb_array_elements(target #> path)
                    WITH ORDINALITY AS x(e, i) WHERE i <= size), '[]'::jsonb))
        ELSE target
      END
    $fn$;
    """,
    # MongoDB's path semantics for partial updates of jsonb (the same as sink.postgres.reduce does
    # to documents): array steps need an index, $set pads arrays with nulls and turns a
    # missing or scalar step into an object, $unset of an array element leaves null, and
    # nothing raises on a scalar or a path that is not there.
    """
    CREATE OR REPLACE FUNCTION {m}.jsonb_set_deep(target jsonb, path text[], val jsonb)
    RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $fn$
    DECLARE
      n int := coalesce(array_length(path, 1), 0);
      head text;
      child jsonb;
      len int;
    BEGIN
      IF n = 0 THEN RETURN val; END IF;
      head := path[1];
      IF jsonb_typeof(target) = 'array' THEN
        IF head !~ '^[0-9]{{1,9}}$' THEN RETURN target; END IF;
        len := jsonb_array_length(target);
        IF head::int >= len THEN
          target := target || (SELECT jsonb_agg(NULL::jsonb) FROM generate_series(len, head::int));
        END IF;
        child := target -> head::int;
      ELSIF jsonb_typeof(target) = 'object' THEN
        child := target -> head;
      ELSE
        target := '{{}}'::jsonb;
      END IF;
      IF n = 1 THEN RETURN jsonb_set(target, ARRAY[head], val); END IF;
      RETURN jsonb_set(target, ARRAY[head], {m}.jsonb_set_deep(child, path[2:], val));
    END
    $fn$;
    CREATE OR REPLACE FUNCTION {m}.jsonb_unset_deep(target jsonb, path text[])
    RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $fn$
    DECLARE
      n int := coalesce(array_length(path, 1), 0);
      head text;
      child jsonb;
    BEGIN
      IF n = 0 THEN RETURN target; END IF;
      head := path[1];
      IF jsonb_typeof(target) = 'array' THEN
        IF head !~ '^[0-9]{{1,9}}$' OR head::int >= jsonb_array_length(target) THEN
          RETURN target;
        END IF;
        IF n = 1 THEN RETURN jsonb_set(target, ARRAY[head], 'null'::jsonb); END IF;
        child := target -> head::int;
      ELSIF jsonb_typeof(target) = 'object' THEN
        IF n = 1 THEN RETURN target - head; END IF;
        child := target -> head;
      ELSE
        RETURN target;
      END IF;
      IF jsonb_typeof(child) NOT IN ('object', 'array') OR child IS NULL THEN
        RETURN target;
      END IF;
      RETURN jsonb_set(target, ARRAY[head], {m}.jsonb_unset_deep(child, path[2:]));
    END
    $fn$;
    CREATE OR REPLACE FUNCTION {m}.jsonb_truncate(target jsonb, path text[], size integer)
    RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $fn$
    DECLARE
      n int := coalesce(array_length(path, 1), 0);
      head text;
      child jsonb;
    BEGIN
      IF n = 0 THEN
        IF jsonb_typeof(target) = 'array' THEN
          RETURN coalesce((SELECT jsonb_agg(e ORDER BY i) FROM jsonb_array_elements(target)
                           WITH ORDINALITY AS x(e, i) WHERE i <= size), '[]'::jsonb);
        END IF;
        RETURN target;
      END IF;
      head := path[1];
      IF jsonb_typeof(target) = 'array' THEN
        IF head !~ '^[0-9]{{1,9}}$' OR head::int >= jsonb_array_length(target) THEN
          RETURN target;
        END IF;
        child := target -> head::int;
      ELSIF jsonb_typeof(target) = 'object' AND target ? head THEN
        child := target -> head;
      ELSE
        RETURN target;
      END IF;
      RETURN jsonb_set(target, ARRAY[head], {m}.jsonb_truncate(child, path[2:], size));
    END
    $fn$;
    """,
    # A topic can carry several collections: every table a topic's records went to (a
    # tombstone's table is one of them), not only the last. A new table, so that
    # instances of the previous version keep working during a rolling upgrade.
    """
    CREATE TABLE IF NOT EXISTS {m}.topic_destinations (
        topic text NOT NULL,
        schema_name text NOT NULL,
        table_name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (topic, schema_name, table_name)
    );
    INSERT INTO {m}.topic_destinations (topic, schema_name, table_name, created_at)
    SELECT topic, schema_name, table_name, updated_at FROM {m}.topic_tables
    ON CONFLICT DO NOTHING;
    """,
]

# The advisory lock key that serialises migrations between instances.
_LOCK_KEY = 0x0C47_7219


async def migrate(conn: Conn, schema: str) -> None:
    m = quote(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {m}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {m}.schema_version (version integer NOT NULL)"
        )
        current = await conn.fetchval(f"SELECT max(version) FROM {m}.schema_version")
        applied = int(current or 0)
        for number, ddl in enumerate(_MIGRATIONS, start=1):
            if number <= applied:
                continue
            await conn.execute(ddl.format(m=m))
            await conn.execute(f"INSERT INTO {m}.schema_version VALUES ($1)", number)


class OffsetConflict(Exception):
    """Another consumer moved a partition's stored offset: this instance no longer owns it."""


async def load_offsets(
    conn: Conn, schema: str, group_id: str, topics: Iterable[str]
) -> dict[tuple[str, int], int]:
    rows = await conn.fetch(
        f"SELECT topic, partition, next_offset FROM {quote(schema)}.kafka_offsets "
        "WHERE group_id = $1 AND topic = ANY($2::text[])",
        group_id,
        list(topics),
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def load_offset_ages(
    conn: Conn, schema: str, group_id: str, topics: Iterable[str]
) -> dict[tuple[str, int], tuple[int, float]]:
    """Each stored offset and the seconds since the flush that wrote it (``status``)."""
    rows = await conn.fetch(
        f"SELECT topic, partition, next_offset, "
        f"extract(epoch FROM clock_timestamp() - updated_at)::float8 AS age "
        f"FROM {quote(schema)}.kafka_offsets WHERE group_id = $1 AND topic = ANY($2::text[])",
        group_id,
        list(topics),
    )
    return {(r["topic"], r["partition"]): (r["next_offset"], r["age"]) for r in rows}


async def store_offsets(
    conn: Conn,
    schema: str,
    group_id: str,
    offsets: Mapping[tuple[str, int], tuple[int | None, int]],
) -> None:
    """Move each partition from its expected stored offset to the new one, in the caller's
    transaction. ``offsets`` maps (topic, partition) to (expected, new); expected None means
    no row is expected yet. A mismatch raises OffsetConflict (a fenced zombie writer)."""
    m = quote(schema)
    for (topic, partition), (expected, new) in offsets.items():
        if expected is None:
            done = await conn.fetchval(
                f"INSERT INTO {m}.kafka_offsets (group_id, topic, partition, next_offset) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                group_id, topic, partition, new,
            )
        else:
            done = await conn.fetchval(
                f"UPDATE {m}.kafka_offsets SET next_offset = $4, updated_at = now() "
                "WHERE group_id = $1 AND topic = $2 AND partition = $3 AND next_offset = $5 "
                "RETURNING 1",
                group_id, topic, partition, new, expected,
            )
        if done is None:
            raise OffsetConflict(
                f"offset of {topic}[{partition}] moved under us (expected {expected}); "
                "another instance owns the partition now"
            )


async def set_offsets(
    conn: Conn,
    schema: str,
    group_id: str,
    offsets: Mapping[tuple[str, int], int],
) -> None:
    """Unconditionally set stored offsets (operator tooling: `offsets reset`)."""
    m = quote(schema)
    for (topic, partition), new in offsets.items():
        await conn.execute(
            f"INSERT INTO {m}.kafka_offsets (group_id, topic, partition, next_offset) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, topic, partition) "
            "DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
            group_id, topic, partition, new,
        )


async def remember_topics(
    conn: Conn, schema: str, pairs: Iterable[tuple[str, str, str]]
) -> None:
    """Remember that (topic, schema, table) received records. Runs inside the savepoint
    that writes those records, so a name PostgreSQL refuses fails with them."""
    rows = list(pairs)
    if rows:
        await conn.executemany(
            f"INSERT INTO {quote(schema)}.topic_destinations (topic, schema_name, table_name) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            rows,
        )


async def topic_tables(conn: Conn, schema: str, topic: str) -> list[tuple[str, str]]:
    """Every table the topic's records went to, oldest first."""
    rows = await conn.fetch(
        f"SELECT schema_name, table_name FROM {quote(schema)}.topic_destinations "
        "WHERE topic = $1 ORDER BY created_at, schema_name, table_name",
        topic,
    )
    return [(r["schema_name"], r["table_name"]) for r in rows]


async def record_schema_change(
    conn: Conn,
    schema: str,
    *,
    schema_name: str,
    table_name: str,
    change_type: str,
    column: str | None = None,
    old_type: str | None = None,
    new_type: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        f"INSERT INTO {quote(schema)}.schema_changes (schema_name, table_name, change_type, "
        "column_name, old_type, new_type, details) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        schema_name, table_name, change_type, column, old_type, new_type,
        orjson.dumps(details).decode() if details is not None else None,
    )
