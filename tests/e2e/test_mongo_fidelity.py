"""Issue 17 through the real ``warp-sink run`` process: MongoDB events rendered by pymongo's
``bson.json_util`` as Debezium renders them, on a real topic, into real PostgreSQL; no dead
letter, and the rows say what the events said."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest
from bson import Binary, DBRef, Int64
from bson import ObjectId as BsonObjectId

from tests.postgres.test_mongo_fidelity import CANONICAL, OID, event, raw_event
from tests.support import produce, read_topic, run_sink, topic_exists, unique, write_config

pytestmark = pytest.mark.integration


async def test_mongo_fidelity_through_the_service(stack, topic_factory, tmp_path: Path) -> None:
    topic = await topic_factory(partitions=1)
    db, pgdb = unique("fid"), unique("pg_fid")
    legacy_create = raw_event(db, json.dumps({"_id": {"$numberLong": "77"}, "name": "a"}),
                              coll="legacy", ts=1700000000010)
    legacy_update = raw_event(db, None, coll="legacy", op="u", ts=1700000000011,
                              patch='{"$set": {"name": "b"}}',
                              filter='{"_id" : {"$numberLong" : "77"}}')
    events = [
        event(db, BsonObjectId(OID), {"kind": "oid", "n": Int64(5), "bin": {"b": Binary(b"k")},
                                      "ref": DBRef("c", BsonObjectId(OID))}, mode=CANONICAL),
        event(db, OID, {"kind": "string"}, ts=1700000000001),
        event(db, 7, {"d": {"$date": "x"}, "xmin": 1.5}, ts=1700000000002),
        event(pgdb, 1, {"ctid": "c", "tableoid": 2}, ts=1700000000003),
        (None, legacy_create[1]), (None, legacy_update[1]),  # item 14: no Kafka key
    ]
    await produce(stack.bootstrap_servers, topic, events)
    group = unique("g")
    cfg = write_config(tmp_path / "c.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=group)
    done = await asyncio.to_thread(run_sink, cfg, "--until-caught-up")
    assert done.returncode == 0, done.stderr[-3000:]
    dlq = f"{group}.dlq"  # created with the first dead letter: none may exist
    assert not await topic_exists(stack.bootstrap_servers, dlq) or \
        await read_topic(stack.bootstrap_servers, dlq, within=3) == []

    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        t = {r["_id"]: dict(r) for r in await conn.fetch(
            f'SELECT _id, kind, n, bin::text, ref::text, d::text, _src_xmin FROM "{db}"."t"')}
        sys_row = await conn.fetchrow(f'SELECT _id, _src_ctid, _src_tableoid FROM '
                                      f'"_src_{pgdb}"."t"')
        legacy = await conn.fetchrow(f'SELECT _id, name, _cartridge_version FROM "{db}".legacy')
        n_type = await conn.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = format('%I.%I', $1::text, 't')::regclass AND attname = 'n'", db)
    finally:
        await conn.close()
    assert t[OID]["kind"] == "oid" and t[f'"{OID}"']["kind"] == "string"  # item 5
    assert (t[OID]["n"], n_type) == (5, "bigint")  # item 12
    assert json.loads(t[OID]["bin"]) == {"b": {"$binary": {"base64": "aw==", "subType": "00"}}}
    assert json.loads(t[OID]["ref"]) == {"$ref": "c", "$id": {"$oid": OID}}  # items 4, 11
    seven = t['{"$numberLong":"7"}']
    assert json.loads(seven["d"]) == {"$date": "x"} and seven["_src_xmin"] == 1.5  # 10, 6
    assert tuple(sys_row) == (1, "c", 2)  # item 6: pg_ database; 13: a bigint _id
    assert tuple(legacy) == (77, "b", 2)  # item 14
