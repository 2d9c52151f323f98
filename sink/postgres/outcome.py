"""What the writer's parts share: the options of a write, what it did to a table, and
the values it keeps aside (overflow, warnings) or writes as text (`dates.exact_texts`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog

from sink.errors import RecordError
from sink.postgres import statements
from sink.postgres.catalog import Catalog, Evolution, TableInfo
from sink.postgres.metadata import Conn
from sink.postgres.types import natural_type

log = structlog.get_logger("sink.writer")


@dataclass(frozen=True, slots=True)
class WriteOptions:
    metadata_schema: str
    deletion_strategy: str = "soft"  # soft | hard | both
    upsert_mode: str = "on_conflict"  # on_conflict | merge
    varchar: bool = False
    force: bool = False  # lift the ordering guard (deliberate replays)
    stage_min_rows: int = statements.STAGE_MIN_ROWS  # COPY + staging table from this size
    squeeze: int | None = None  # a refused wide row: inline bytes kept in columns (squeeze.py)
    id_type: str = "auto"  # a new MongoDB table's _id column type: auto | text (ids.py)


@dataclass(slots=True)
class TableResult:
    operations: Counter[str] = field(default_factory=Counter)
    overflowed: Counter[str] = field(default_factory=Counter)  # column -> values kept aside
    evolution: Evolution = field(default_factory=Evolution)
    # Records refused before any statement ran (an _id its column cannot hold): dead
    # letters, while the rest of the table's records are written.
    rejected: list[tuple[Any, RecordError]] = field(default_factory=list)


def value_type(value: Any) -> str:
    if isinstance(value, dict) and list(value) == ["$json"]:
        return "text with NUL"  # pgtypes.escaped
    return natural_type(value) or "date beyond timestamptz"  # dates.far_date_fits


async def narrowed(
    conn: Conn, catalog: Catalog, info: TableInfo, col: str, value: Any, result: TableResult,
    n: int = 1,
) -> None:
    vtype = value_type(value)
    if col not in info.columns and info.full:
        vtype = "no column left"  # PostgreSQL's column limit (catalog.MAX_COLUMNS)
    if (col, vtype) not in info.narrowed or not result.overflowed[col]:
        log.warning(
            "no column left (PostgreSQL's 1,600-column limit): value kept in overflow"
            if vtype == "no column left" else "type narrowing: value kept in overflow",
            schema=info.schema, table=info.table, column=col,
            column_type=info.columns.get(col), value_type=vtype,
        )
    result.overflowed[col] += n
    await catalog.record_narrowing(conn, info, col, vtype)


async def write_exact(
    conn: Conn, info: TableInfo, exact: dict[str, dict[int, str]], keys: list[list[Any]],
    pos: list[Any],
) -> None:
    """Write the values asyncpg cannot encode exactly (`dates.exact_texts`) as text."""
    for col, texts in exact.items():
        rows = list(texts)
        await conn.execute(statements.exact_values(info, col),
                           *[[k[i] for i in rows] for k in keys], [texts[i] for i in rows],
                           [pos[i] for i in rows])
