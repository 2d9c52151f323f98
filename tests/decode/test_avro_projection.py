"""The Avro reader steps over the ``source`` fields no decoder reads, and that loses nothing.

Two sides of one promise (``UNREAD_SOURCE_FIELDS``, ``compile_reader(drop_source=...)``):
the reader returns exactly fastavro's value minus those fields, whatever their types; and
every decoder gives the same ``Record`` (or the same error) for an event without them as
for the event with them, over the real Debezium fixtures and generated events. A decoder
that starts reading one of them fails the second test."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastavro import parse_schema
from hypothesis import HealthCheck, given, settings

from sink.decode.avro_reader import compile_reader
from sink.decode.common import UNREAD_SOURCE_FIELDS
from sink.decode.envelope import DecoderOptions, decode_json
from sink.errors import DecodeError
from sink.records import Record
from sink.tools.events import MongoEvents, Oid
from tests.decode.support import FIXTURES
from tests.decode.test_avro_reader import encode, fastavro_read, same, schema_and_value

DROP = UNREAD_SOURCE_FIELDS


def _envelope(source_fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": "Envelope", "namespace": "x", "fields": [
        {"name": "op", "type": "string"},
        {"name": "source", "type": {"type": "record", "name": "Source", "fields": source_fields}},
        {"name": "ts_ms", "type": ["null", "long"], "default": None},
    ]}  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema_and_value())
def test_dropped_fields_of_any_type_are_stepped_over(case: tuple[Any, Any]) -> None:
    """A dropped field of any type (unions, records, arrays, logical types...) between two
    kept ones: the rest reads as fastavro reads it, the end position is the same."""
    inner, value = case
    schema = _envelope([{"name": "db", "type": "string"}, {"name": "version", "type": inner},
                        {"name": "ord", "type": "long"}])  # fmt: skip
    parsed = parse_schema(schema)
    datum = {"op": "c", "source": {"db": "shop", "version": value, "ord": 7}, "ts_ms": 5}
    data = encode(parsed, datum)
    try:
        expected, end = fastavro_read(data, parsed)
    except ValueError:
        return  # not a datum fastavro accepts (test_avro_reader covers the refusal)
    reader = compile_reader(parsed, DROP)
    assert reader is not None
    got, got_end = reader(data, 0)
    del expected["source"]["version"]
    assert same(got, expected) and got_end == end == len(data)


def test_a_debezium_source_keeps_what_the_decoders_read() -> None:
    fields = [{"name": n, "type": ["null", "string"], "default": None}
              for n in ("version", "connector", "name", "snapshot", "db", "schema", "table",
                        "collection", "gtid", "query", "file")]  # fmt: skip
    fields += [{"name": n, "type": ["null", "long"], "default": None}
               for n in ("ts_ms", "ts_us", "ts_ns", "lsn", "txId", "ord", "pos", "row")]
    parsed = parse_schema(_envelope(fields))
    source = {f["name"]: f"v-{f['name']}" if "string" in f["type"] else 11 for f in fields}
    data = encode(parsed, {"op": "u", "source": source, "ts_ms": None})
    reader = compile_reader(parsed, DROP)
    assert reader is not None
    got, _ = reader(data, 0)
    assert got["source"] == {k: v for k, v in source.items() if k not in DROP}
    assert {"connector", "db", "schema", "table", "collection", "file", "ts_ms", "lsn", "ord",
            "pos", "row"} <= set(got["source"])  # fmt: skip
    # A dropped string's length is still checked against the bytes.
    with pytest.raises(ValueError, match="past the end"):
        reader(data[:data.index(b"v-version") + 3], 0)


def test_only_the_envelopes_source_is_projected() -> None:
    """A ``source`` record deeper in the value, or a field named like a dropped one
    elsewhere, is read whole: only the envelope's own source is the Debezium one."""
    schema = _envelope([{"name": "db", "type": "string"}, {"name": "name", "type": "string"}])
    inner = {"type": "record", "name": "Inner", "fields": [{"name": "version", "type": "int"}]}
    row = {"type": "record", "name": "Row", "fields": [{"name": "name", "type": "string"},
                                                       {"name": "source", "type": inner}]}
    schema["fields"].append({"name": "after", "type": row})
    parsed = parse_schema(schema)
    datum = {"op": "c", "source": {"db": "d", "name": "n"}, "ts_ms": 1,
             "after": {"name": "Ada", "source": {"version": 3}}}
    reader = compile_reader(parsed, DROP)
    assert reader is not None
    got, _ = reader(encode(parsed, datum), 0)
    assert got["source"] == {"db": "d"}
    assert got["after"] == {"name": "Ada", "source": {"version": 3}}


def _events() -> list[tuple[str, bytes | None, bytes]]:
    """(topic, key, value) of the real fixtures that carry a source, and generated ones."""
    out: list[tuple[str, bytes | None, bytes]] = []
    for path in sorted(FIXTURES.rglob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        for value in doc if isinstance(doc, list) else [doc]:
            if isinstance(value, dict):
                out.append(("dbserver1.inventory.customers", None, json.dumps(value).encode()))
    ev = MongoEvents("shop", "products", prefix="dbserver1")
    oid = Oid(7)
    out += [("dbserver1.shop.products", *ev.insert({"_id": oid, "n": 1})),
            ("dbserver1.shop.products", *ev.update(oid, {"n": 2}, ["m"])),
            ("dbserver1.shop.products", *ev.delete(oid))]
    return out


def _strip(value: bytes) -> bytes | None:
    doc = json.loads(value)
    payload = doc.get("payload") if isinstance(doc.get("payload"), dict) else doc
    source = payload.get("source") if isinstance(payload, dict) else None
    if not isinstance(source, dict) or not DROP & set(source):
        return None
    stripped = copy.deepcopy(doc)
    target = stripped.get("payload") if stripped is not doc and "payload" in stripped else stripped
    if not isinstance(target.get("source"), dict):
        target = stripped["payload"]
    target["source"] = {k: v for k, v in target["source"].items() if k not in DROP}
    return json.dumps(stripped).encode()


def _outcome(key: bytes | None, value: bytes, topic: str) -> Any:
    try:
        return decode_json(key, value, topic, DecoderOptions())
    except DecodeError as exc:
        return ("error", exc.code)


def test_no_decoder_reads_a_dropped_field() -> None:
    compared = 0
    for topic, key, value in _events():
        stripped = _strip(value)
        if stripped is None:
            continue
        compared += 1
        full, without = _outcome(key, value, topic), _outcome(key, stripped, topic)
        if isinstance(full, Record) and isinstance(without, Record):
            full.size = without.size = 0  # the stripped message is shorter
        assert full == without, (topic, value[:200])
    assert compared >= 20  # the fixtures' envelopes and the generated events were compared
