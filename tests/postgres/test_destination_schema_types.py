"""Column types from the event's schema (issue 13 item 2): a decoded Debezium event with a
Connect schema creates smallint, bigint from the first row, real, numeric(p,s),
timestamp(3), time(3), timetz and jsonb with the source's exact JSON text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sink.decode import decode_json
from sink.postgres.names import qualified
from tests.decode.support import envelope_schema, pg_payload
from tests.postgres.support import Maker, column_types

pytestmark = pytest.mark.integration

FIELDS = [
    ("id", {"type": "int64"}),
    ("s", {"type": "int16"}),
    ("r", {"type": "float"}),
    ("amount", {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
                "parameters": {"scale": "2", "connect.decimal.precision": "10"}}),
    ("ts3", {"type": "int64", "name": "io.debezium.time.Timestamp"}),
    ("t3", {"type": "int32", "name": "io.debezium.time.Time"}),
    ("tz", {"type": "string", "name": "io.debezium.time.ZonedTime"}),
    ("doc", {"type": "string", "name": "io.debezium.data.Json"}),
    ("mood", {"type": "string", "name": "io.debezium.data.Enum",
              "parameters": {"allowed": "sad,happy"}}),
    ("dur", {"type": "int64", "name": "io.debezium.time.MicroDuration"}),
    ("nums", {"type": "array", "items": {"type": "int32", "optional": True}}),
    ("tags", {"type": "array", "items": {"type": "string", "optional": True}}),
]


def event(db: str, row: dict[str, Any]) -> Any:
    payload = pg_payload(row)
    payload["source"]["schema"] = db
    value = json.dumps({"schema": envelope_schema(FIELDS), "payload": payload}).encode()
    key = json.dumps({"schema": {"type": "struct", "fields": [{"field": "id", "type": "int64"}]},
                      "payload": {"id": row["id"]}}).encode()
    rec = decode_json(key, value, "topic")
    rec.offset = row["id"]
    return rec


async def test_columns_take_the_schema_types(make_dest: Maker, pg_schema_factory, pg) -> None:
    dest = await make_dest()
    db = await pg_schema_factory()
    row = {"id": 1, "s": 7, "r": 0.1, "amount": "AeI=",  # 4.82
           "ts3": 1700000000123, "t3": 49530123, "tz": "08:15:30.123456Z",
           "doc": '{"qty": 2.500, "big": 123456789012345678901234567890, "n": null}',
           "mood": "happy", "dur": -7_200_000_000, "nums": [1, None, -3],
           "tags": ["a", "b c", None, '"q"', "NULL"]}
    await dest.write_batch(db, [event(db, row), event(db, {**row, "id": 2, "doc": "null",
                                                             "dur": 129_600_000_000})])
    types = await column_types(pg, db, "t")
    assert {c: types[c] for c, _ in FIELDS} == {
        "id": "bigint",  # from the first row, though 1 fits an integer
        "s": "smallint", "r": "real", "amount": "numeric(10,2)",
        "ts3": "timestamp(3) without time zone", "t3": "time(3) without time zone",
        "tz": "time with time zone", "doc": "jsonb", "mood": "text",
        "nums": "integer[]", "tags": "text[]", "dur": "interval",
    }  # fmt: skip
    got = await pg.fetch(f"SELECT id, r::text, amount::text, ts3::text, t3::text, "
                         f"tz::text, doc::text, doc IS NULL AS sql_null FROM "
                         f"{qualified(db, 't')} ORDER BY id")
    assert tuple(got[0]) == (
        1, "0.1", "4.82", "2023-11-14 22:13:20.123", "13:45:30.123", "08:15:30.123456+00",
        '{"n": null, "big": 123456789012345678901234567890, "qty": 2.500}', False)
    assert (got[1]["doc"], got[1]["sql_null"]) == ("null", False)  # JSON null, not SQL NULL
    # µs intervals as the source counted them, not re-normalised into days
    assert [r[0] for r in await pg.fetch(f"SELECT dur::text FROM {qualified(db, 't')} "
                                         "ORDER BY id")] == ["-02:00:00", "36:00:00"]
    arrays = await pg.fetchrow(f"SELECT nums::text, tags::text, tags[4] AS q, tags[3] AS n "
                               f"FROM {qualified(db, 't')} WHERE id = 1")
    assert tuple(arrays) == ("{1,NULL,-3}", '{a,"b c",NULL,"\\"q\\"","NULL"}', '"q"', None)
    assert await pg.fetchval(f"SELECT count(*) FROM {qualified(db, 't')} "
                             "WHERE _cartridge_overflow IS NOT NULL") == 0
