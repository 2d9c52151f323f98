"""Heartbeats, malformed messages, and the schema wrapper detected per message."""

from __future__ import annotations

import pytest

from sink.records import Skip
from tests.decode.support import (
    decode,
    dumps,
    error,
    pg_payload,
    record,
)

# --------------------------------------------------------------------------- framing and non-data


def test_heartbeats() -> None:
    hb = dumps({"ts_ms": 1700000000000})
    assert decode(
        hb, dumps({"serverName": "dbserver1"}), topic="__debezium-heartbeat.dbserver1"
    ) == Skip("heartbeat")
    assert decode(hb, None, topic="anything") == Skip("heartbeat")
    framed = dumps(
        {
            "schema": {
                "type": "struct",
                "name": "io.debezium.connector.common.Heartbeat",
                "fields": [{"field": "ts_ms", "type": "int64"}],
            },
            "payload": {"ts_ms": 1},
        }
    )
    assert decode(framed, None, topic="routed") == Skip("heartbeat")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"not json", "bad_json"),
        (b"\xff\xfe{}", "bad_utf8"),
        (b'{"op": "c", "after": "\xc3\x28"}', "bad_utf8"),
        (b"[1, 2]", "bad_envelope"),
        (b'"text"', "bad_envelope"),
        (b'{"op": 5, "source": {}}', "unknown_op"),
        (b'{"op": "z", "source": {}}', "unknown_op"),
        (b'{"op": "c", "source": 5}', "bad_envelope"),
        (
            b'{"op": "c", "source": {"connector": "postgresql", "schema": "s", "table": "t",'
            b' "ts_ms": "x"}}',
            "bad_envelope",
        ),
        (b'{"after": {"a": 1}, "source": {"db": "x"}}', "missing_op"),
        (b"[" * 5000 + b"]" * 5000, "too_deep"),
        (b'{"op": "c", "ts_ms": 1e999}', "bad_json"),
        (
            b'{"op": "c", "source": {"schema": "s", "table": "t",'
            b' "ts_ms": 99999999999999999999999}}',
            "number_out_of_range",
        ),
    ],
)
def test_malformed_messages(value: bytes, code: str) -> None:
    assert error(value, dumps({"id": 1})) == code


def test_schema_wrapper_is_detected_per_message() -> None:
    payload = pg_payload({"id": 1})
    a = record(dumps(payload), dumps({"id": 1}))
    b = record(
        dumps({"schema": None, "payload": payload}), dumps({"schema": None, "payload": {"id": 1}})
    )
    assert a.values == b.values == {"id": 1}
    assert a.key == b.key == {"id": 1}
    assert a.size == len(dumps(payload)) + len(dumps({"id": 1}))
