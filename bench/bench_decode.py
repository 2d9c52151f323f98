"""Decode throughput per core: Kafka message bytes → ``Record``, single-threaded.

    python bench/bench_decode.py [--events 20000] [--rounds 5] [--profile CASE]

Cases (each a stream of distinct MongoDB Debezium 3.x change events, ``op=c``, key + value):

* ``avro-seed`` — the seed's sample document (``_id`` ObjectId, name, age, salary,
  is_active, created_at, metadata {plan, features[]}) in the Confluent wire format, key and
  value Avro, schemas already in the registry client's cache (the steady state): the
  synchronous ``MessageDecoder.decode_cached`` path the consumer loop uses.
* ``json-seed`` — the same events as JsonConverter JSON (schemas off), ``decode_json``.
* ``json-2k`` — a ~2 KB nested document with arrays (sub-documents, arrays of
  sub-documents, ints/longs/doubles/dates/decimals/ObjectIds), JsonConverter JSON.
* ``avro-2k`` — the same ~2 KB document, Avro wire format (for comparison).
* ``avro-relational`` — a PostgreSQL row with logical types (Decimal bytes, MicroTimestamp,
  ZonedTimestamp, Uuid, Json, Date), Avro wire format.

Each round decodes every event once; the figure is the best round (the machine is shared),
as events per second of wall-clock time and of process CPU time. ``--profile CASE`` prints a
cProfile of one run of that case instead.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import struct
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from fastavro import parse_schema, schemaless_writer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sink.decode.envelope import DecoderOptions, decode_json  # noqa: E402
from sink.decode.framing import MessageDecoder  # noqa: E402
from sink.decode.registry import SchemaRegistry  # noqa: E402
from sink.records import Record  # noqa: E402
from sink.tools.events import MongoEvents, Oid  # noqa: E402

Message = tuple[bytes, bytes]
MONGO_KEY = json.loads((ROOT / "schemas/debezium-mongodb/key.avsc").read_text())
MONGO_ENV = json.loads((ROOT / "schemas/debezium-mongodb/envelope.avsc").read_text())
PG_KEY = json.loads((ROOT / "schemas/debezium-postgresql/key.avsc").read_text())
PG_ENV = json.loads((ROOT / "schemas/debezium-postgresql/envelope.avsc").read_text())
PLANS = ("free", "pro", "team", "enterprise")
FEATURES = ("analytics", "api_access", "sso", "audit", "export", "webhooks")


def seed_doc(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "_id": Oid(f"{i:024x}"), "name": f"User {rng.randrange(10**6)}",
        "age": rng.randrange(18, 90), "salary": round(rng.uniform(20_000, 200_000), 2),
        "is_active": rng.random() < 0.8,
        "created_at": datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
        + timedelta(seconds=rng.randrange(10**7)),
        "metadata": {"plan": rng.choice(PLANS), "features": rng.sample(FEATURES, 2)},
    }  # fmt: skip


def big_doc(rng: random.Random, i: int) -> dict[str, Any]:
    """About 2 KB of extended JSON: nested documents and arrays of several BSON types."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    return {
        "_id": Oid(f"{i:024x}"), "sku": f"SKU-{i:08d}", "title": f"Product {rng.random():.6f}",
        "price": Decimal(f"{rng.randrange(100, 99999)}.{rng.randrange(100):02d}"),
        "stock": rng.randrange(10**6), "views": 2**40 + rng.randrange(10**9),
        "rating": rng.random() * 5, "active": True,
        "created": base + timedelta(seconds=rng.randrange(10**7)),
        "owner": Oid(f"{rng.getrandbits(96):024x}"),
        "tags": [f"tag{rng.randrange(100)}" for _ in range(8)],
        "dims": {"w": rng.random(), "h": rng.random(), "d": rng.random(), "unit": "cm"},
        "variants": [
            {"color": rng.choice(["red", "green", "blue"]), "size": rng.choice("SML"),
             "qty": rng.randrange(100), "price": rng.random() * 100,
             "barcodes": [str(rng.randrange(10**12)) for _ in range(2)]}
            for _ in range(6)
        ],
        "reviews": [
            {"user": Oid(f"{rng.getrandbits(96):024x}"), "stars": rng.randrange(1, 6),
             "text": "good " * rng.randrange(3, 8),
             "at": base + timedelta(seconds=rng.randrange(10**7))}
            for _ in range(5)
        ],
        "history": [{"at": base + timedelta(days=d), "price": rng.random() * 100}
                    for d in range(4)],
        "attributes": {f"attr_{k}": rng.choice([k, f"v{k}", k * 1.5, None])
                       for k in range(10)},
    }  # fmt: skip


def frame(sid: int, parsed: Any, obj: Any) -> bytes:
    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, sid))
    schemaless_writer(out, parsed, obj)
    return out.getvalue()


def mongo_json(make: Callable[[random.Random, int], dict[str, Any]], n: int) -> list[Message]:
    rng = random.Random(7)
    ev = MongoEvents("shop", "products", prefix="dbserver1")
    return [ev.insert(make(rng, i)) for i in range(n)]


def to_avro(events: list[Message]) -> list[Message]:
    key_schema, env_schema = parse_schema(MONGO_KEY), parse_schema(MONGO_ENV)
    return [(frame(1, key_schema, orjson.loads(k)), frame(2, env_schema, orjson.loads(v)))
            for k, v in events]


def relational_avro(n: int) -> list[Message]:
    rng = random.Random(11)
    key_schema, env_schema = parse_schema(PG_KEY), parse_schema(PG_ENV)
    out = []
    for i in range(n):
        row = {"id": i, "order_ref": str(uuid.UUID(int=rng.getrandbits(128))),
               "amount": Decimal(rng.randrange(10**7)).scaleb(-2),
               "placed_at": 1_700_000_000_000_000 + rng.randrange(10**12),
               "updated_at": "2024-03-01T12:00:00.123456Z", "ship_date": 19_000 + i % 1000,
               "attributes": json.dumps({"gift": i % 2 == 0, "tags": ["a", "b"]}),
               "weight": rng.random() * 10, "note": f"order {i}"}  # fmt: skip
        source = {"version": "3.0.0.Final", "connector": "postgresql", "name": "dbserver1",
                  "ts_ms": 1_700_000_000_000 + i, "db": "shop", "schema": "inventory",
                  "table": "orders", "lsn": 10_000 + i, "txId": i}  # fmt: skip
        value = {"before": None, "after": row, "source": source, "op": "c", "ts_ms": 1}
        out.append((frame(3, key_schema, {"id": i}), frame(4, env_schema, value)))
    return out


def avro_decoder() -> MessageDecoder:
    registry = SchemaRegistry("http://registry.invalid:8081")  # never contacted: all cached
    for sid, schema in ((1, MONGO_KEY), (2, MONGO_ENV), (3, PG_KEY), (4, PG_ENV)):
        registry.add(sid, schema)
    return MessageDecoder(DecoderOptions(), "avro", "avro", registry)


def run_case(name: str, events: list[Message], rounds: int) -> dict[str, Any]:
    topic = "dbserver1.shop.products"
    if name.startswith("avro"):
        decode: Callable[[bytes, bytes, str], Any] = avro_decoder().decode_cached
    else:
        options = DecoderOptions()

        def decode(k: bytes, v: bytes, t: str) -> Any:
            return decode_json(k, v, t, options)

    for k, v in events[:200]:  # warm up, and check every event decodes to a Record
        assert isinstance(decode(k, v, topic), Record)
    best_wall = best_cpu = float("inf")
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        for k, v in events:
            decode(k, v, topic)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    n = len(events)
    size = sum(len(k) + len(v) for k, v in events) / n
    return {"case": name, "events": n, "avg_bytes": round(size),
            "events_per_s_wall": round(n / best_wall), "events_per_s_cpu": round(n / best_cpu),
            "us_per_event": round(best_wall / n * 1e6, 2)}  # fmt: skip


def build(name: str, n: int) -> list[Message]:
    if name == "avro-seed":
        return to_avro(mongo_json(seed_doc, n))
    if name == "json-seed":
        return mongo_json(seed_doc, n)
    if name == "json-2k":
        return mongo_json(big_doc, n)
    if name == "avro-2k":
        return to_avro(mongo_json(big_doc, n))
    if name == "avro-relational":
        return relational_avro(n)
    raise SystemExit(f"unknown case {name}")


CASES = ("avro-seed", "json-seed", "json-2k", "avro-2k", "avro-relational")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--profile", metavar="CASE", help="cProfile one case instead")
    ap.add_argument("--json", action="store_true", help="print results as JSON lines")
    args = ap.parse_args()
    if args.profile:
        events = build(args.profile, args.events)
        prof = cProfile.Profile()
        prof.enable()
        run_case(args.profile, events, 1)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return 0
    print(f"python {sys.version.split()[0]}, {args.events} events per case, best of "
          f"{args.rounds} rounds", file=sys.stderr)
    for name in args.cases.split(","):
        res = run_case(name, build(name, args.events), args.rounds)
        if args.json:
            print(json.dumps(res))
        else:
            print(f"{res['case']:<16} {res['avg_bytes']:>5} B/event  "
                  f"{res['events_per_s_wall']:>8,} events/s (wall)  "
                  f"{res['events_per_s_cpu']:>8,} events/s (cpu)  "
                  f"{res['us_per_event']:>6} µs/event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
