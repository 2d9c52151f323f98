"""``warp-sink decode``: what the sink would do with one message, as JSON."""

from __future__ import annotations

import argparse
import base64
import io
import json
import struct
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

from sink.records import TemporalText
from sink.tools.decode import add_parser, main, render
from sink.tools.events import MongoEvents, Oid
from tests import paths, schema_registry_server
from tests.schema_registry_server import RegistryServer

schema_registry = schema_registry_server.schema_registry  # the fixture, for this module

FIXTURES = paths.FIXTURES
SCHEMAS = paths.SCHEMAS
OID = "596e275826f08b2730779e1f"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def mongo_key(tmp_path: Path, id_text: str) -> str:
    return write(tmp_path, "key.json", json.dumps({"id": id_text}).encode())


def test_full_document_update_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = mongo_key(tmp_path, '{"$numberLong": "1004"}')
    code, out = run(["--key", key, str(FIXTURES / "debezium-mongodb/v1x-docs/"
                                   "update_u_change_streams_update_full.payload.json")], capsys)
    assert code == 0
    assert out == {
        "op": "u", "action": "upsert", "schema": "inventory", "table": "customers",
        "key": {"_id": '{"$numberLong":"1004"}'},
        "values": {"_id": '{"$numberLong":"1004"}', "first_name": "Anne Marie",
                   "last_name": "Kretchmar", "email": "annek@noanswer.org"},
        "types": {"_id": "text", "first_name": "text", "last_name": "text", "email": "text"},
        "source_position": [1558965508000, 1, 0],
        "source_ts": "2019-05-27T13:58:28+00:00",
    }  # fmt: skip


def test_oplog_patch_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = mongo_key(tmp_path, "1004")
    code, out = run(["--key", key, "--topic", "fulfillment.inventory.customers",
                     str(FIXTURES / "debezium-mongodb/v0x-docs/update_u_patch.payload.json")],
                    capsys)  # fmt: skip
    assert code == 0 and out["op"] == "u" and out["action"] == "patch"
    assert out["patch"] == {"set": {"first_name": "Anne Marie"}, "unset": [], "truncate": {}}
    assert out["types"] == {"first_name": "text"} and "values" not in out


def test_partial_update_dotted_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = MongoEvents("shop", "users")
    key, value = ev.update(Oid(OID), {"age": 31, "address.city": "Oslo",
                                      "seen": datetime(2024, 2, 1, 8, tzinfo=UTC)}, ["tmp.x"])
    code, out = run(["--key", write(tmp_path, "k", key), write(tmp_path, "v", value)], capsys)
    assert code == 0 and out["action"] == "patch" and out["key"] == {"_id": OID}
    assert out["patch"] == {
        "set": {"age": 31, "address.city": "Oslo", "seen": "2024-02-01T08:00:00+00:00"},
        "unset": ["tmp.x"], "truncate": {},
    }  # fmt: skip
    assert out["types"] == {"age": "integer", "address.city": "jsonb",
                            "seen": "timestamp with time zone"}  # fmt: skip


def test_relational_fixture_with_schema(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "debezium-relational/postgresql-3x-docs/create_c_schema+payload.json"
    key = FIXTURES / "debezium-relational/postgresql-3x-docs/key_schema+payload.json"
    code, out = run(["--key", str(key), str(path)], capsys)
    assert code == 0, out
    assert (out["op"], out["schema"], out["table"]) == ("c", "public", "customers")
    assert out["values"]["first_name"] == "Anne" and out["types"]["id"] == "integer"
    assert out["source_position"] == [24023128]


def test_skip_and_tombstone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run([str(FIXTURES / "debezium-mongodb/v3x-docs/transaction_BEGIN.json")], capsys)
    assert (code, out) == (0, {"op": "skip", "reason": "transaction_begin"})
    key = mongo_key(tmp_path, f'{{"$oid": "{OID}"}}')
    code, out = run(["--key", key, write(tmp_path, "empty", b"")], capsys)
    assert code == 0 and out["op"] == "tombstone" and out["action"] == "delete"
    assert out["key"] == {"_id": OID} and out["schema"] is None


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = (FIXTURES / "debezium-mongodb/v0x-docs/read_r_initsync.payload.json").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out = run(["--topic", "t", "-"], capsys)  # no key: the document's _id stands in
    assert code == 0 and out["op"] == "r" and out["key"] == {"_id": '{"$numberLong":"1004"}'}
    assert out["values"]["first_name"] == "Anne"


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run([write(tmp_path, "bad", b'{"op": ')], capsys)
    assert code == 1 and out["error"] == "bad_json" and out["message"]
    code, out = run([str(tmp_path / "missing")], capsys)
    assert code == 2 and out["error"] == "usage"
    code, out = run(["--value-format", "avro", write(tmp_path, "x", b"\x00")], capsys)
    assert code == 2 and "registry" in out["message"]


def test_render_conventions() -> None:
    assert render({
        "d": Decimal("1.50"), "b": b"\x00\xff", "u": uuid.UUID(int=1), "n": float("nan"),
        "i": float("-inf"), "t": datetime(2024, 1, 1, tzinfo=UTC), "naive": datetime(2024, 1, 1),
        "iv": timedelta(days=1, seconds=1.5), "o": Oid(OID), "l": [1, (2,)],
        "bc": TemporalText("date", "0044-03-15 BC"),
    }) == {
        "d": "1.50", "b": "AP8=", "u": "00000000-0000-0000-0000-000000000001", "n": "NaN",
        "i": "-Infinity", "t": "2024-01-01T00:00:00+00:00", "naive": "2024-01-01T00:00:00",
        "iv": "P1DT1.5S", "o": OID, "l": [1, [2]], "bc": "0044-03-15 BC",
    }  # fmt: skip


def test_add_parser_registers_decode() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["decode", "--value-format", "avro", "--registry", "http://r", "v"])
    assert args.fn is main and args.value_format == "avro" and args.value_file == "v"


def _frame(sid: int, schema: Any, obj: Any) -> bytes:
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, sid))
    schemaless_writer(out, parse_schema(schema), obj)
    return out.getvalue()


def test_avro_message(
    schema_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = json.loads((SCHEMAS / "debezium-postgresql/envelope.avsc").read_text())
    key_schema = json.loads((SCHEMAS / "debezium-postgresql/key.avsc").read_text())
    vid = schema_registry.register("orders-value", env)
    kid = schema_registry.register("orders-key", key_schema)
    row = {"id": 7, "order_ref": str(uuid.UUID(int=7)), "amount": Decimal("12.30"),
           "placed_at": 1_700_000_000_000_001, "updated_at": "2024-01-01T10:00:00Z",
           "ship_date": 1, "attributes": '{"a": [1, 2]}', "weight": None, "note": "hi",
           "blob": None}  # fmt: skip
    source = {"version": "3.0", "connector": "postgresql", "name": "dbserver1", "ts_ms": 1000,
              "db": "shop", "schema": "inventory", "table": "orders", "lsn": 99}
    value = _frame(vid, env, {"after": row, "source": source, "op": "c"})
    key = _frame(kid, key_schema, {"id": 7})
    code, out = run(["--key-format", "avro", "--value-format", "avro", "--registry",
                     schema_registry.url, "--key", write(tmp_path, "k", key),
                     write(tmp_path, "v", value)], capsys)  # fmt: skip
    assert code == 0, out
    assert out["key"] == {"id": 7} and out["source_position"] == [99]
    assert out["values"] == {
        "id": 7, "order_ref": "00000000-0000-0000-0000-000000000007", "amount": "12.30",
        "placed_at": "2023-11-14T22:13:20.000001", "updated_at": "2024-01-01T10:00:00+00:00",
        "ship_date": "1970-01-02", "attributes": {"a": [1, 2]}, "weight": None, "note": "hi",
    }  # fmt: skip
    assert out["types"] == {
        # the types the Avro schema says (Decimal precision 10 scale 2, a double even
        # when null), as the writer creates the columns
        "id": "integer", "order_ref": "uuid", "amount": "numeric(10,2)",
        "placed_at": "timestamp without time zone", "updated_at": "timestamp with time zone",
        "ship_date": "date", "attributes": "jsonb", "weight": "double precision",
        "note": "text",
    }  # fmt: skip
    bad = write(tmp_path, "bad", value[:1] + struct.pack(">I", 4242) + value[5:])
    code, out = run(["--value-format", "avro", "--registry", schema_registry.url, bad], capsys)
    assert code == 1 and out["error"] == "unknown_schema_id"


def test_registry_password_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "hunter2-" + base64.b16encode(b"x").decode()
    with RegistryServer(username="u", password="right") as srv:
        monkeypatch.setenv("WARP__SOURCE__SCHEMA_REGISTRY_USERNAME", "u")
        monkeypatch.setenv("WARP__SOURCE__SCHEMA_REGISTRY_PASSWORD", secret)
        code, out = run(["--value-format", "avro", "--registry", srv.url,
                         write(tmp_path, "v", b"\x00\x00\x00\x00\x01\x02")], capsys)
        assert code == 1 and out["error"] == "registry_unauthorized"
        assert secret not in json.dumps(out)


def test_legacy_oplog_events_without_key_take_the_id_from_filter(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 17, item 14: no --key, a 1.x oplog update or delete: the _id is the filter's."""
    code, out = run([str(FIXTURES / "debezium-mongodb/v1x-docs/"
                             "update_u_oplog_patch_filter.payload.json")], capsys)
    assert code == 0, out
    assert (out["action"], out["key"]) == ("patch", {"_id": '{"$numberLong":"1004"}'})
    assert out["patch"]["set"] == {"first_name": "Anne Marie"}
    code, out = run([str(FIXTURES / "debezium-mongodb/v1x-docs/"
                             "delete_d_oplog_filter.payload.json")], capsys)
    assert code == 0 and (out["action"], out["key"]) == (
        "delete", {"_id": '{"$numberLong":"1004"}'})
    event = json.loads((FIXTURES / "debezium-mongodb/v1x-docs/"
                        "update_u_oplog_patch_filter.payload.json").read_text())
    event["filter"] = json.dumps({"_id": {"$oid": OID}})
    code, out = run([write(tmp_path, "v.json", json.dumps(event).encode())], capsys)
    assert code == 0 and out["key"] == {"_id": OID}
    event["filter"] = json.dumps({"x": 1})  # a filter without an _id: still no key
    code, out = run([write(tmp_path, "v.json", json.dumps(event).encode())], capsys)
    assert (code, out["error"]) == (1, "missing_key")
