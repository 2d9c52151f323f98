"""Fuzzing the decoder: any bytes give a Record, a Skip or a DecodeError, nothing else."""

from __future__ import annotations

import json
import random
import time as _time
from typing import Any

from sink.decode.envelope import DecoderOptions, decode_json
from sink.errors import DecodeError
from sink.records import Record, Skip
from tests.decode.support import (
    FIXTURES,
    KEY,
    LEGACY_KEY,
    LOGICAL_FIELDS,
    OID,
    TOPIC,
    dumps,
    envelope_schema,
    mongo_event,
    pg_payload,
)

# --------------------------------------------------------------------------- fuzz


def _seeds() -> list[tuple[bytes | None, bytes]]:
    seeds: list[tuple[bytes | None, bytes]] = []
    for path in sorted(FIXTURES.rglob("*")):
        if path.is_file() and path.suffix in (".json", ".txt"):
            seeds.append(
                (KEY if "mongodb" in str(path) else dumps({"id": 1004}), path.read_bytes())
            )
    seeds += [
        (
            KEY,
            mongo_event(
                "c", after=f'{{"_id": {{"$oid": "{OID}"}},"a": [1, {{"$date": 5}}], "b": NaN}}'
            ),
        ),
        (
            KEY,
            mongo_event(
                "u",
                updateDescription={
                    "updatedFields": '{"a.b": 1}',
                    "removedFields": ["c"],
                    "truncatedArrays": [{"field": "x", "size": 1}],
                },
            ),
        ),
        (
            KEY,
            mongo_event("u", patch='{"$set": {"a": {"$numberLong": "5"}}, "$unset": {"b": true}}'),
        ),
        (
            dumps({"id": 1}),
            dumps(
                {
                    "schema": envelope_schema([(n, s) for n, s, _, _ in LOGICAL_FIELDS]),
                    "payload": pg_payload({n: r for n, _, r, _ in LOGICAL_FIELDS}),
                }
            ),
        ),
        (
            dumps({"id": OID}),
            dumps({"_id": OID, "__deleted": "false", "__db": "a", "__collection": "b"}),
        ),
    ]
    return seeds


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.35:
        return rng.choice(
            [
                None,
                True,
                False,
                rng.randint(-(2**70), 2**70),
                rng.random() * 10 ** rng.randint(-5, 300),
                "",
                rng.choice(
                    ["c", "r", "u", "d", "t", "m", "x", "$oid", "$date", "NaN", "__deleted", OID]
                ),
                "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 6))),
            ]
        )
    keys = [
        "op",
        "after",
        "before",
        "source",
        "patch",
        "updateDescription",
        "id",
        "_id",
        "schema",
        "payload",
        "$oid",
        "$date",
        "$binary",
        "$type",
        "$numberLong",
        "ts_ms",
        "db",
        "collection",
        "table",
        "lsn",
        "file",
        "pos",
        "fields",
        "type",
        "name",
        "status",
        "ddl",
        "__deleted",
    ]
    if roll < 0.6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _mutate_structure(rng: random.Random, obj: Any, depth: int = 0) -> Any:
    """Replace one random node of a parsed message by random JSON (or a JSON string of it)."""
    if isinstance(obj, dict) and obj and depth < 6:
        k = rng.choice(list(obj))
        obj[k] = (
            _mutate_structure(rng, obj[k], depth + 1) if rng.random() < 0.6 else _random_json(rng)
        )
    elif isinstance(obj, list) and obj and depth < 6:
        i = rng.randrange(len(obj))
        obj[i] = _mutate_structure(rng, obj[i], depth + 1)
    elif isinstance(obj, str) and obj[:1] in ("{", "[") and rng.random() < 0.7:
        try:
            inner = json.loads(obj)
        except ValueError:
            return _random_json(rng)
        return json.dumps(_mutate_structure(rng, inner, depth + 1))
    else:
        return _random_json(rng)
    return obj


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    choice = rng.randrange(8)
    if choice == 0 and b:
        return bytes(b[: rng.randrange(len(b))])  # truncated
    if choice == 1 and b:
        for _ in range(rng.randint(1, 8)):  # bit flips
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if choice == 2:  # invalid UTF-8 spliced in
        i = rng.randrange(len(b) + 1)
        return (
            bytes(b[:i])
            + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
            + bytes(b[i:])
        )
    if choice == 3:  # deep nesting
        n = rng.choice([150, 199, 201, 300, 1100, 5000])
        return rng.choice([b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"[" * n])
    if choice == 4:  # huge numbers
        return rng.choice(
            [
                b'{"op":"c","ts_ms":' + b"9" * rng.randint(19, 5000) + b"}",
                b'{"op":"c","source":{"ts_ms":1e308,"db":"a","collection":"b"},"after":"{}"}',
                b'{"op":"c","after":"{\\"a\\":'
                + b"1" * rng.randint(19, 400)
                + b'}","source":{"db":"a","collection":"b","ts_ms":1}}',
                b"-" + b"9" * rng.randint(1, 500),
            ]
        )
    if choice == 5:
        return json.dumps(_random_json(rng)).encode()
    try:
        obj = json.loads(data)
    except ValueError:
        return bytes(b)
    return json.dumps(_mutate_structure(rng, obj)).encode()


def test_fuzz_only_decode_errors() -> None:
    """100,000 random and mutated messages: decode_json returns or raises DecodeError only."""
    rng = random.Random(20240531)
    seeds = _seeds()
    keys: list[bytes | None] = [
        None,
        b"",
        KEY,
        LEGACY_KEY,
        dumps({"id": 1}),
        b"{",
        b"\xff",
        b"null",
        dumps({"id": [1]}),
    ]
    topics = [TOPIC] * 8 + ["t"] * 3 + ["__debezium-heartbeat.x"]
    outcomes = {"record": 0, "skip": 0, "error": 0}
    codes: dict[str, int] = {}
    started = _time.monotonic()
    for n in range(100_000):
        key, value = rng.choice(seeds)
        if rng.random() < 0.9:
            value = _mutate_bytes(rng, value)
        if rng.random() < 0.15:
            key = rng.choice(keys)
        elif rng.random() < 0.05 and key:
            key = _mutate_bytes(rng, key)
        topic = rng.choice(topics)
        try:
            result = decode_json(
                key, value, topic, DecoderOptions(topic_tables={"t": ("s", "t")}, truncate="apply")
            )
        except DecodeError as exc:
            assert exc.code != "internal", (n, key, value[:300], exc)
            outcomes["error"] += 1
            codes[exc.code] = codes.get(exc.code, 0) + 1
        else:
            assert isinstance(result, Record | Skip), result
            outcomes["record" if isinstance(result, Record) else "skip"] += 1
    elapsed = _time.monotonic() - started
    assert outcomes["record"] > 1000 and outcomes["error"] > 10000, (outcomes, codes)
    assert elapsed < 60, elapsed
