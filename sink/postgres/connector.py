"""The PostgreSQL destination: the seed's connector, used by the library API and the service.

One `apply` = one transaction: DDL if needed, every table's changes, DLQ hand-off of
records PostgreSQL refuses (isolated by bisecting inside savepoints), then the
partitions' next offsets, then COMMIT.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import asyncpg
import structlog

from sink.config import DsnError, parse_dsn
from sink.errors import ConfigError, FatalError, RecordError, TransientError, WarpError
from sink.postgres import metadata
from sink.postgres.catalog import Catalog
from sink.postgres.errors import StaleCatalog, classify
from sink.postgres.isolate import merge_tables, prepare_unit, row_too_big
from sink.postgres.metadata import Conn
from sink.postgres.names import DELETED_AT, IS_DELETED, quote, schema_name, table_name
from sink.postgres.outcome import TableResult, WriteOptions
from sink.postgres.seed_api import SeedSchemaApi
from sink.postgres.squeeze import next_budget
from sink.postgres.statements import STAGE_MIN_ROWS, STAGE_MIN_ROWS_MERGE
from sink.postgres.topics import Target, TopicMemory
from sink.postgres.writer import write_table
from sink.records import Record

log = structlog.get_logger("sink.postgres")

TableKey = tuple[str, str]
_STALE_RETRIES = 3  # a table changed by another session: reload its shape and rerun
BadRecords = list[tuple[Record, WarpError]]
OnBad = Callable[[BadRecords], Awaitable[None]]


@dataclass(slots=True)
class ApplyResult:
    tables: dict[TableKey, TableResult] = field(default_factory=dict)
    failed: BadRecords = field(default_factory=list)
    seconds: float = 0.0


class PostgreSQLDestinationConnector(SeedSchemaApi):
    """Writes `Record`s to PostgreSQL (the seed's API, DESIGN section 5)."""

    def __init__(
        self,
        connection_string: str,
        metadata_schema: str = "cartridge_warp_metadata",
        batch_size: int = 1000,
        max_connections: int = 10,
        min_connections: int = 2,
        connection_timeout: float = 30.0,
        command_timeout: float = 60.0,
        enable_soft_deletes: bool = True,
        deletion_strategy: str = "soft",
        upsert_mode: str = "on_conflict",
        max_retries: int = 3,
        *,
        string_type: str = "text",
        id_type: str = "auto",
        hard_delete_after: timedelta = timedelta(days=7),
        ssl: Any = None,
        password: str | None = None,
    ) -> None:
        if deletion_strategy not in ("soft", "hard", "both"):
            raise ConfigError(
                f"deletion_strategy must be soft, hard or both, not {deletion_strategy!r}"
            )
        if id_type not in ("auto", "text"):
            raise ConfigError(f"id_type must be auto or text, not {id_type!r}")
        if upsert_mode not in ("on_conflict", "merge"):
            raise ConfigError(f"upsert_mode must be on_conflict or merge, not {upsert_mode!r}")
        try:
            dsn = parse_dsn(connection_string)
            dsn.check_usable()
        except DsnError as exc:  # the message quotes nothing of the string
            raise ConfigError(f"connection_string {exc}") from None
        if password is not None and dsn.password is not None:
            raise ConfigError("the password is given both in connection_string and apart: "
                              "give it in one place")
        # asyncpg gets the string as libpq read it, the password apart: its own URL parser
        # would read '?', '#' or '+' in a password differently.
        self._dsn = dsn.for_asyncpg()
        self._password = password if password is not None else dsn.password
        self.metadata_schema = metadata_schema
        self.batch_size = batch_size
        self.max_connections = max_connections
        self.min_connections = min_connections
        self.connection_timeout = connection_timeout
        self.command_timeout = command_timeout
        self.deletion_strategy = deletion_strategy if enable_soft_deletes else "hard"
        self.upsert_mode = upsert_mode
        self.max_retries = max_retries
        self.hard_delete_after = hard_delete_after
        self.id_type = id_type
        self._ssl = ssl
        self.catalog = Catalog(metadata_schema, varchar=string_type == "varchar")
        self._varchar = string_type == "varchar"
        # Upserts of this many rows or more are COPYed through a staging table.
        self.stage_min_rows = STAGE_MIN_ROWS_MERGE if upsert_mode == "merge" else STAGE_MIN_ROWS
        self._pool: asyncpg.Pool | None = None
        self._migrated = False  # the metadata schema is created/migrated (once per instance)
        self.topics = TopicMemory(metadata_schema)
        # A metric label: from the parse, so nothing of the query or the credentials.
        self.database = dsn.database

    # --- lifecycle -------------------------------------------------------------

    async def connect(self) -> None:
        """Open the pool and create/migrate the metadata schema, each retried ``max_retries``
        times; then a classified error (TransientError for a lost connection), so the
        service's retry policy takes over. Called again after a failure, it resumes where
        it stopped: a pool opened before a failed migration is not taken for a finished
        start."""
        if self._pool is None:
            self._pool = await self._retry(self._create_pool, "connect")
        if not self._migrated:
            await self._retry(self._migrate, "migrate metadata")
            self._migrated = True

    async def _migrate(self) -> None:
        async with self.pool.acquire() as conn:
            await metadata.migrate(conn, self.metadata_schema)

    async def _create_pool(self) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            self._dsn,
            password=self._password,
            min_size=self.min_connections,
            max_size=self.max_connections,
            timeout=self.connection_timeout,
            command_timeout=self.command_timeout,
            statement_cache_size=1024,
            ssl=self._ssl,
        )
        assert pool is not None
        return pool

    async def disconnect(self, within: float = 10) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=within)
            except (TimeoutError, OSError):
                pool.terminate()

    def terminate(self) -> None:
        """Close every connection now, without a word to a server that may not answer:
        the server rolls back a transaction whose connection went away."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.terminate()

    async def test_connection(self) -> bool:
        try:
            async with self.pool.acquire() as conn:
                return bool(await conn.fetchval("SELECT 1") == 1)
        except Exception:
            return False

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise TransientError("not connected to PostgreSQL (call connect first)")
        return self._pool

    @property
    def connected(self) -> bool:
        return self._pool is not None

    def pool_stats(self) -> tuple[int, int, int]:
        """(size, idle, active) read from the pool."""
        if self._pool is None:
            return (0, 0, 0)
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        return (size, idle, size - idle)

    # --- writing -----------------------------------------------------------------

    def options(self, force: bool = False) -> WriteOptions:
        return WriteOptions(
            metadata_schema=self.metadata_schema, deletion_strategy=self.deletion_strategy,
            upsert_mode=self.upsert_mode, varchar=self._varchar, force=force,
            stage_min_rows=self.stage_min_rows, id_type=self.id_type,
        )

    async def write_batch(self, schema_name: str, records: list[Record]) -> None:
        """Apply records in one transaction (library API). Records without a schema get
        ``schema_name``. Transient failures are retried ``max_retries`` times; a record
        PostgreSQL refuses raises RecordError and nothing of the batch is applied."""
        for rec in records:
            if rec.schema is None:
                rec.schema = schema_name

        async def once() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                tables = await self._write_all(conn, records, self.options())
                for result in tables.values():
                    if result.rejected:  # nothing of the batch is applied
                        raise result.rejected[0][1]

        await self._retry(once, "write_batch")

    async def apply(
        self,
        records: list[Record],
        offsets: Mapping[tuple[str, int], tuple[int | None, int]],
        group_id: str,
        *,
        force: bool = False,
        on_bad: OnBad | None = None,
    ) -> ApplyResult:
        """One flush unit in one transaction: records (refused ones isolated and handed
        to ``on_bad`` before commit), then the offsets. Raises TransientError to retry
        the whole unit, metadata.OffsetConflict when another instance owns a partition."""
        started = time.perf_counter()
        opts = self.options(force)
        for attempt in range(_STALE_RETRIES + 1):
            result = ApplyResult()
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._write_isolating(conn, records, opts, result,
                                                final=attempt == _STALE_RETRIES)
                    if result.failed:
                        if on_bad is None:
                            raise result.failed[0][1]
                        await on_bad(result.failed)
                    if offsets:
                        await metadata.store_offsets(conn, self.metadata_schema, group_id,
                                                     offsets)
            except BaseException as exc:
                self.catalog.forget()
                if isinstance(exc, (metadata.OffsetConflict, asyncio.CancelledError)):
                    raise
                err = classify(exc)
                if isinstance(err, StaleCatalog) and attempt < _STALE_RETRIES:
                    log.info("table changed under a cached shape; reloading", error=str(err))
                    continue  # the catalog is reloaded: run the unit again
                if err is exc:
                    raise
                raise err from exc
            break
        self.topics.committed(records, (rec for rec, _ in result.failed))
        result.seconds = time.perf_counter() - started
        return result

    async def _write_isolating(
        self, conn: Conn, records: list[Record], opts: WriteOptions,
        result: ApplyResult, *, final: bool = False, prepared: bool = False,
    ) -> None:
        """``final``: the last run of the unit; a shape error that survived every reload of
        the catalog is then the records' fault, isolated like any refused record.
        ``prepared``: the tables' DDL for all of the unit is done (`_prepare`)."""
        try:
            async with conn.transaction():  # a savepoint: a refused record rolls back only this
                tables = await self._write_all(conn, records, opts)
                await self.topics.remember(conn, records)
        except Exception as exc:
            self.catalog.forget()
            err = classify(exc)
            if final and isinstance(err, StaleCatalog):
                err = RecordError(str(err), code="rejected")
            if err.retriable or isinstance(err, FatalError):
                raise err from exc
            if len(records) == 1:
                budget = next_budget(opts.squeeze) if row_too_big(exc) else None
                if budget is not None:  # a row wider than a page: keep the rest in overflow
                    await self._write_isolating(conn, records, replace(opts, squeeze=budget),
                                                result, final=final, prepared=True)
                    return
                result.failed.append((records[0], err))
                return
            if not prepared:  # the unit's DDL once, not again at every bisection step
                merge_tables(result.tables, await prepare_unit(conn, self.catalog, records, opts))
            mid = len(records) // 2
            for part in (records[:mid], records[mid:]):
                await self._write_isolating(conn, part, opts, result, final=final,
                                            prepared=True)
            return
        merge_tables(result.tables, tables)
        for table in tables.values():  # refused before writing: the others are written
            result.failed += table.rejected

    async def _write_all(
        self, conn: Conn, records: list[Record], opts: WriteOptions
    ) -> dict[TableKey, TableResult]:
        by_table: dict[TableKey, list[Record]] = defaultdict(list)
        for rec in records:
            if rec.schema is None or rec.table is None:
                raise RecordError("record names no table", code="no_table")
            by_table[(rec.schema, rec.table)].append(rec)
        out: dict[TableKey, TableResult] = {}
        for (schema, table), recs in by_table.items():
            key = (schema_name(schema), table_name(table))  # pg_…, over 63 bytes
            out[key] = await write_table(conn, self.catalog, opts, *key, recs)
        return out

    async def tombstone_target(
        self, topic: str, keys: list[dict[str, Any]], offset: int,
        configured: TableKey | None = None,
    ) -> Target | None:
        """The table and key a tombstone deletes, from what the topic's records did before
        (see `sink.postgres.topics`). Failures come classified: TransientError to retry,
        RecordError when the key cannot be looked up."""
        try:
            async with self.pool.acquire() as conn:
                return await self.topics.target(conn, self.catalog, topic, keys, offset,
                                                configured)
        except Exception as exc:
            self.catalog.forget()
            err = classify(exc)
            if err is exc:
                raise
            raise err from exc

    async def load_offsets(self, group_id: str, topics: list[str]) -> dict[tuple[str, int], int]:
        """The stored offsets; a failure comes classified (a connection lost on the way is a
        TransientError the caller's retry policy retries, not an asyncpg error it cannot
        tell from a bug)."""
        try:
            async with self.pool.acquire() as conn:
                return await metadata.load_offsets(conn, self.metadata_schema, group_id, topics)
        except Exception as exc:
            err = classify(exc)
            if err is exc:
                raise
            raise err from exc

    async def purge_soft_deleted(self) -> int:
        """``deletion_strategy: both``: remove rows soft-deleted longer than
        ``hard_delete_after`` from every table the sink created (tables dropped since are
        skipped). Returns the number of rows removed."""
        total = 0
        async with self.pool.acquire() as conn:
            tables = await conn.fetch(
                f"SELECT schema_name, table_name FROM {quote(self.metadata_schema)}.tables "
                "WHERE to_regclass(format('%I.%I', schema_name, table_name)) IS NOT NULL"
            )
            for row in tables:
                status = await conn.execute(
                    f"DELETE FROM {quote(row['schema_name'])}.{quote(row['table_name'])} "
                    f"WHERE {quote(IS_DELETED)} AND {quote(DELETED_AT)} < now() - $1::interval",
                    self.hard_delete_after,
                )
                total += int(status.split()[-1])
        return total

    async def _retry(self, fn: Callable[[], Awaitable[Any]], what: str) -> Any:
        attempt = 0
        while True:
            try:
                return await fn()
            except Exception as exc:
                self.catalog.forget()
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # see service.retry: not a retry
                    raise asyncio.CancelledError from exc
                err = classify(exc)
                if not err.retriable or attempt >= self.max_retries:
                    if err is exc:
                        raise
                    raise err from exc
                attempt += 1
                delay = min(10.0, 0.2 * 2**attempt) * (0.5 + random.random() / 2)
                if not isinstance(err, StaleCatalog):
                    log.warning("retrying", operation=what, attempt=attempt, error=str(err),
                                delay=round(delay, 2))
                    await asyncio.sleep(delay)
