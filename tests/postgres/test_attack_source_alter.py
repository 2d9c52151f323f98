"""Hostile source (attack pass): the source widens a varchar(n)/char(n) column (ALTER COLUMN
TYPE) mid-stream, then sends values longer than the old length. The sink created the column
with the old propagated type; the longer values are legitimate source rows and must land
(widened), not be refused by PostgreSQL as too long and dead-lettered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sink.decode.envelope import decode_json
from sink.errors import WarpError
from sink.records import Record
from tests.decode.support import envelope_schema, pg_payload
from tests.postgres.support import Maker, column_types

pytestmark = pytest.mark.integration


def _rec(db: str, name: str, length: int, i: int, value: str) -> Record:
    spec = {"type": "string", "parameters": {
        "__debezium.source.column.type": name, "__debezium.source.column.length": str(length),
        "__debezium.source.column.scale": "0"}}
    payload = pg_payload({"id": i, "s": value})
    payload["source"]["schema"], payload["source"]["lsn"] = db, 100 + i
    value_msg = {"schema": envelope_schema([("id", {"type": "int64"}), ("s", spec)]),
                 "payload": payload}
    key = {"schema": {"type": "struct", "fields": [{"field": "id", "type": "int64"}]},
           "payload": {"id": i}}
    rec = decode_json(json.dumps(key).encode(), json.dumps(value_msg).encode(), "topic")
    assert isinstance(rec, Record)
    rec.topic, rec.partition, rec.offset = "topic", 0, i
    return rec


@pytest.mark.parametrize(("name", "created"), [("VARCHAR", "character varying(3)"),
                                               ("BPCHAR", "character(3)")])
async def test_a_source_alter_to_a_longer_string_type_widens_the_column(
    make_dest: Maker, pg_schema_factory: Any, pg: Any, name: str, created: str
) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    bad: list[tuple[Record, WarpError]] = []

    async def on_bad(failed: list[tuple[Record, WarpError]]) -> None:
        bad.extend(failed)

    await dest.apply([_rec(db, name, 3, 1, "abc")], {}, "g", on_bad=on_bad)
    assert (await column_types(pg, db, "t"))["s"] == created
    # ALTER TABLE t ALTER COLUMN s TYPE varchar(10) / char(10) on the source
    await dest.apply([_rec(db, name, 10, 2, "abcdefghij")], {}, "g", on_bad=on_bad)
    assert [(r.offset, e.code) for r, e in bad] == []
    got = {r["id"]: r["s"] for r in await pg.fetch(f'SELECT id, s::text AS s FROM "{db}".t')}
    assert got == {1: "abc", 2: "abcdefghij"}
    assert (await column_types(pg, db, "t"))["s"] in ("text", "character varying(10)",
                                                      "character(10)")
