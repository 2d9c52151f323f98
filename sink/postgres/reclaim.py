"""Values kept in overflow move into their column when it is widened to jsonb.

A text column cannot hold a number or a document, so such values go to
``_cartridge_overflow``; jsonb holds every value. When a later value widens the column to
jsonb, the values kept before move into it, so where a value sits depends only on the
event sequence: in one flush (the widening planned before any row is written) they would
have gone into the column directly. A value kept with a NUL (``{"$json": <original>}``)
keeps its exact copy, and the column gets it without the NUL, as a write would.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sink.postgres.jsonb import strip_nul, to_json_text
from sink.postgres.metadata import Conn
from sink.postgres.names import OVERFLOW, quote

if TYPE_CHECKING:  # the catalog calls this module when it widens a column
    from sink.postgres.catalog import TableInfo


def _escaped_original(text: str) -> str | None:
    """The original JSON text of an overflow value in its NUL-escaped form, else None."""
    if not text.startswith('{"$json"'):
        return None
    value = json.loads(text)
    if list(value) == ["$json"] and isinstance(value["$json"], str):
        return str(value["$json"])
    return None


async def reclaim_overflow(conn: Conn, info: TableInfo, column: str) -> int:
    """Move ``column``'s values out of the overflow of the rows whose column is NULL (the
    column is jsonb now); returns how many rows changed."""
    ovf, col = quote(OVERFLOW), quote(column)
    found = await conn.fetch(
        f"SELECT ctid::text AS id, ({ovf} -> $1)::text AS v FROM {info.qualified} "
        f"WHERE {col} IS NULL AND {ovf} ? $1", column)
    if not found:
        return 0
    moved: list[str] = []
    exact: list[tuple[str, str]] = []
    for row in found:
        original = _escaped_original(row["v"])
        if original is None:
            moved.append(row["id"])
        else:  # the exact copy stays; the column holds the value without its NULs
            value: Any = json.loads(original, parse_float=Decimal)
            exact.append((row["id"], to_json_text(strip_nul(value))))
    # ctid is stable here: the ALTER that widened the column holds the table's lock.
    if moved:
        await conn.execute(
            f"UPDATE {info.qualified} SET {col} = {ovf} -> $1, "
            f"{ovf} = nullif({ovf} - $1, '{{}}'::jsonb) WHERE ctid = ANY($2::text[]::tid[])",
            column, moved)
    if exact:
        await conn.execute(
            f"UPDATE {info.qualified} AS t SET {col} = v.doc::jsonb "
            f"FROM unnest($1::text[], $2::text[]) AS v(id, doc) WHERE t.ctid = v.id::tid",
            [i for i, _ in exact], [d for _, d in exact])
    return len(found)
