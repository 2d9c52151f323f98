"""The schemas-off warning (sink.decode.schemaless): relational events without a schema,
envelope or flattened, warn once per table; MongoDB events (schemaless by design) and
events with a schema never do. The real process's log is tested in
tests/e2e/test_schemaless_warning.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from sink.decode import schemaless
from sink.decode.schemaless import ambiguous_columns
from tests.decode.support import KEY, decode, dumps, envelope_schema, fx, mongo_event, pg_payload


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    schemaless.forget()
    yield
    schemaless.forget()


def _warnings(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in logs if "without a schema" in str(e["event"])]


def test_envelope_without_schema_warns_once_per_table() -> None:
    with capture_logs() as logs:
        for i in range(5):
            for table in ("t", "u"):
                p = pg_payload({"id": i, "d": 19782, "b": "3q2+7wA="})
                p["source"]["table"] = table
                decode(dumps(p), dumps({"id": i}))
    got = _warnings(logs)
    assert [(w["table"], w["ambiguous"]) for w in got] == [
        ("t", {"integers": ["d"], "base64": ["b"]}), ("u", {"integers": ["d"], "base64": ["b"]})]
    assert all(w["log_level"] == "warning" for w in got)


def test_flattened_relational_rows_without_schema_warn_too() -> None:
    with capture_logs() as logs:
        for i in range(3):
            decode(dumps({"id": i, "amount": {"scale": 2, "value": "AQ=="}, "__table": "f",
                          "__schema": "s", "__lsn": 10 + i}), dumps({"id": i}))
    assert [(w["schema"], w["table"], w["ambiguous"]) for w in _warnings(logs)] == [
        ("s", "f", {"decimal_structs": ["amount"]})]


def test_mongo_and_schema_carrying_events_do_not_warn() -> None:
    with capture_logs() as logs:
        decode(mongo_event("c", after='{"_id": {"$oid": "5f0c1c1c1c1c1c1c1c1c1c1c"}, "n": 1}'),
               KEY)
        decode(fx("debezium-relational/postgresql-3x-docs/create_c_schema+payload.json"),
               dumps({"id": 1}))
        schema = envelope_schema([("id", {"type": "int32"}), ("d", {"type": "int32"})])
        decode(dumps({"schema": schema, "payload": pg_payload({"id": 1, "d": 5})}),
               dumps({"id": 1}))
    assert _warnings(logs) == []


def test_ambiguous_columns_by_kind() -> None:
    row = {"id": 1, "n": 5, "ok": True, "f": 0.5, "bytes": "3q2+7wA=", "dec": "EtaH",
           "word": "John", "WORD": "ABCD", "text": "hello world", "odd": "abc",
           "num": {"scale": 1, "value": "GQ=="}, "doc": {"a": 1}, "none": None}
    assert ambiguous_columns(row, ["id"]) == {
        "integers": ["n"], "base64": ["bytes", "dec"], "decimal_structs": ["num"]}
