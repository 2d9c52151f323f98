"""Schemas off (JsonConverter ``schemas.enable=false``): the real ``warp-sink run`` warns once
per table that types are inferred from values, naming the columns whose values are
ambiguous and how to fix it; never per record, and never for a table whose events carry
their schema (issue 13, "What to build" item 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Stack
from tests.support import produce, run_sink, unique, write_config

pytestmark = pytest.mark.integration

# Debezium's wire encodings of one all-types row (the real connector's, for 2024-02-29,
# '\xdeadbeef00', 2.500, 13:45:30.123456)
ROW = {"c_date": 19782, "c_time": 49530123456, "c_bytea": "3q2+7wA=",
       "c_numeric": {"scale": 1, "value": "GQ=="}, "c_text": "hello world", "c_word": "John",
       "c_bool": True, "c_double": 0.1}
SCHEMA_FIELDS = {"c_date": {"type": "int32", "name": "io.debezium.time.Date"},
                 "c_time": {"type": "int64", "name": "io.debezium.time.MicroTime"},
                 "c_bytea": {"type": "bytes"}, "c_text": {"type": "string"},
                 "c_word": {"type": "string"}, "c_bool": {"type": "boolean"},
                 "c_double": {"type": "double"},
                 "c_numeric": {"type": "struct", "name": "io.debezium.data.VariableScaleDecimal",
                               "fields": [{"field": "scale", "type": "int32"},
                                          {"field": "value", "type": "bytes"}]}}


def _event(db: str, table: str, i: int, schemas: bool) -> tuple[bytes, bytes]:
    payload = {"before": None, "after": {"id": i, **ROW}, "op": "c", "ts_ms": 1,
               "source": {"connector": "postgresql", "db": "src", "schema": db,
                          "table": table, "ts_ms": 1, "lsn": 100 + i}}
    key: dict[str, Any] = {"id": i}
    if not schemas:
        return json.dumps(key).encode(), json.dumps(payload).encode()
    row = {"type": "struct", "name": f"src.{db}.{table}.Value", "optional": True,
           "fields": [{"field": "id", "type": "int32"},
                      *({"field": f, "optional": True, **s} for f, s in SCHEMA_FIELDS.items())]}
    schema = {"type": "struct", "name": f"src.{db}.{table}.Envelope", "fields": [
        {**row, "field": "before"}, {**row, "field": "after"},
        {"type": "struct", "field": "source", "fields": []}, {"type": "string", "field": "op"},
        {"type": "int64", "field": "ts_ms"}]}
    key_schema = {"type": "struct", "fields": [{"field": "id", "type": "int32"}]}
    return (json.dumps({"schema": key_schema, "payload": key}).encode(),
            json.dumps({"schema": schema, "payload": payload}).encode())


async def test_schemas_off_warns_once_per_table_naming_ambiguous_columns(
    stack: Stack, topic_factory: Any, pg: Any, tmp_path: Path
) -> None:
    db = unique("sl")
    topic = await topic_factory(partitions=2)
    events = [_event(db, t, i, schemas=(t == "typed"))
              for i in range(40) for t in ("plain", "other", "typed")]
    await produce(stack.bootstrap_servers, topic, events)
    cfg = write_config(tmp_path / "sink.yaml", bootstrap=stack.bootstrap_servers,
                       dsn=stack.pg_dsn, topic=topic, group=unique("g"))
    proc = run_sink(cfg, "--until-caught-up", timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]

    lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    warned = [x for x in lines if "without a schema" in x.get("event", "")]
    assert sorted(w["table"] for w in warned) == ["other", "plain"], warned
    for w in warned:
        assert w["level"] == "warning" and w["schema"] == db and w["topic"] == topic
        assert "schemas.enable=true" in w["event"] and "Avro" in w["event"]
        # the day count, the µs time, the base64 bytea and the VariableScaleDecimal; not
        # the key, the text, a plain word, the boolean or the float
        assert w["ambiguous"] == {"integers": ["c_date", "c_time"], "base64": ["c_bytea"],
                                  "decimal_structs": ["c_numeric"]}
    # 40 records per table (over two partitions), one line per table; all were written
    for t in ("plain", "other", "typed"):
        assert await pg.fetchval(f'SELECT count(*) FROM "{db}"."{t}"') == 40
    assert await pg.fetchval(  # with the schema, the exact type
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attname = 'c_date' "
        "AND attrelid = $1::regclass", f'"{db}"."typed"') == "date"
