"""Changes to relational tables without a primary key: Debezium sends them with a null
record key, and nothing but the row images says which row a change is about.

``DecoderOptions.keyless`` (per table: ``keyless_tables["schema.table"]``) decides:

* ``match_before`` (default): an insert is a row; an update or a delete applies to one row
  equal to the ``before`` image (NULL-safe). Needs ``REPLICA IDENTITY FULL`` on a
  PostgreSQL source (MySQL/MariaDB always send the full ``before``); an update or delete
  without a ``before`` image is a dead letter ``missing_before``.
* ``append``: every event is a row of a change log with its op and source position (for
  the default replica identity, where updates carry no ``before``).
* ``dead_letter``: every event is a dead letter ``missing_key`` (the behaviour before).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sink.decode.column_types import column_types
from sink.decode.common import DecoderOptions, fail, show
from sink.decode.connect import convert_row
from sink.decode.schema import SchemaNode
from sink.records import Kind, Record

MODES = ("match_before", "append", "dead_letter")


def keyless_mode(schema: str, table: str, options: DecoderOptions) -> str:
    return options.keyless_tables.get(f"{schema}.{table}", options.keyless)


def _image(
    p: Mapping[str, Any], node: SchemaNode | None, name: str, options: DecoderOptions
) -> dict[str, Any] | None:
    row = p.get(name)
    if row is None:
        return None
    if type(row) is not dict:
        raise fail("bad_envelope", f"{name} must be a struct, got {show(row)}")
    sub = node.field(name) if node is not None else None
    # Unchanged TOASTed columns are left out: the writer keeps what the row holds.
    values, _unavailable = convert_row(row, sub, options.max_depth)
    return values


def decode_keyless(
    p: Mapping[str, Any],
    node: SchemaNode | None,
    op: str,
    schema: str,
    table: str,
    position: tuple[int, ...],
    source_ts: datetime | None,
    options: DecoderOptions,
) -> Record:
    mode = keyless_mode(schema, table, options)
    if mode not in ("match_before", "append"):
        raise fail("missing_key", f"op={op} on {schema}.{table}, a table without a primary "
                                  "key (mapping.keyless: dead_letter)")
    before = _image(p, node, "before", options)
    after = _image(p, node, "after", options) if op != "d" else None
    if op != "d" and after is None:
        raise fail("missing_after", f"op={op} without an after row")
    if op == "d" and before is None:
        raise fail("missing_before", f"op=d on {schema}.{table} (no primary key) without a "
                                     "before image: nothing says which row to delete")
    if mode == "match_before" and op == "u" and not before:
        raise fail("missing_before", f"op=u on {schema}.{table} (no primary key) without a "
                                     "before image: set REPLICA IDENTITY FULL on the source "
                                     "table, or mapping.keyless: append")
    kind = Kind.DELETE if op == "d" else Kind.UPSERT
    image = after if after is not None else before
    types = column_types(node.field("after" if after is not None else "before")
                         if node is not None else None, list(image or ()))
    return Record(schema, table, {}, kind, op, values=after, position=position,
                  source_ts=source_ts, keyless=mode, before=before, column_types=types)
