"""Load generator: realistic Debezium MongoDB change events written to a real Kafka.

    python bench/loadgen.py --scenario a --scale 0.05 [--bootstrap HOST:PORT] [--avro]

Without ``--bootstrap`` the bench's own local stack (``.warp/bench-stack``) is started.
Every scenario writes, in one pass over the same deterministic (seeded) changes:

* ``<base>.dbz``     Debezium 3.x MongoDB envelopes, JsonConverter *without* schemas, as
                     :class:`sink.tools.events.MongoEvents` builds them (what our sink reads);
* ``<base>.dbzs``    the same envelopes and keys with JsonConverter's ``schema`` wrapper
                     (Kafka Connect's default; the JDBC sink and the SMT need a Connect
                     schema) — only with ``--connect-copy`` (``bench/run.py`` asks for it
                     when the Kafka Connect peer runs);
* ``<base>.plain``   the document as plain JSON (ObjectId as hex, dates as ISO-8601 text;
                     a partial update as ``{_id, <updatedFields>}``; a delete as a null
                     value) for the Quix Streams peer;
* ``<base>.avro``    with ``--avro``: the envelopes in the Confluent wire format (Avro,
                     ``schemas/debezium-mongodb/*.avsc``) — needs ``sink/decode/framing.py`` and
                     ``tests/schema_registry_server.py``, skipped with a message otherwise.

Scenarios (``--scale`` multiplies every count; the defaults are sized so that our sink runs
for at least ~20 s per scenario on the 2-core reference machine):

    a  inserts of the seed's sample document (_id ObjectId, name, age, salary, is_active,
       created_at, metadata {plan, features[]}; plus ``seq``)
    b  50% inserts of new keys, 50% full-document updates (op=u with ``after``) of keys
       pre-loaded in an untimed setup phase
    c  inserts of ~2 KB nested documents with arrays
    d  change-streams partial updates (``updateDescription`` only: top-level fields and a
       dotted path ``metadata.plan``) of pre-loaded keys
    e  45% inserts, 45% full updates, 10% deletes of pre-loaded keys, each delete followed
       by its tombstone

Each key is updated or deleted at most once per scenario (no batch can fold two changes of
one key into one row write). Every document carries ``seq`` (the event's number; markers 0):
the final state is checked with ``count(*)`` and ``sum(seq)`` over live rows. The last
message of every partition of every topic is a *marker* insert, so a peer that keeps no
offsets in PostgreSQL is done once its marker rows are visible (partition order).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sink.tools.events import _ENVELOPE_SCHEMA, MongoEvents, Oid  # noqa: E402

DB = "bench"
PARTITIONS = 4
PLANS = ("free", "pro", "team", "enterprise")
FEATURES = ("analytics", "api_access", "sso", "audit", "export", "webhooks", "sla")
CITIES = ("Oslo", "Lisbon", "Austin", "Osaka", "Nairobi", "Lima", "Porto", "Quebec")
WORDS = ("alpha", "bravo", "delta", "ember", "fjord", "grove", "harbor", "island", "jade",
         "kite", "lumen", "meadow", "nova", "orbit", "pine", "quartz", "river", "summit")
BASE_TIME = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    collection: str
    events: int  # timed change events at scale 1 (tombstones not counted)
    shape: str  # "sample" | "big"
    insert: float = 1.0  # shares of the timed change events
    replace: float = 0.0
    patch: float = 0.0
    delete: float = 0.0


SCENARIOS: dict[str, Scenario] = {
    "a": Scenario("a", "inserts, sample document", "users_a", 1_200_000, "sample"),
    "b": Scenario("b", "50% full-document updates", "users_b", 1_200_000, "sample",
                  insert=0.5, replace=0.5),
    "c": Scenario("c", "~2 KB nested documents", "docs_c", 300_000, "big"),
    "d": Scenario("d", "partial updates (updateDescription)", "users_d", 600_000, "sample",
                  insert=0.0, patch=1.0),
    "e": Scenario("e", "10% deletes + tombstones", "users_e", 1_000_000, "sample",
                  insert=0.45, replace=0.45, delete=0.10),
}


@dataclass(slots=True)
class Op:
    """One logical change. ``kind``: insert | replace | patch | delete | tombstone."""

    kind: str
    oid: Oid
    partition: int
    seq: int
    doc: dict[str, Any] | None = None
    set: dict[str, Any] | None = None


@dataclass
class Plan:
    scenario: Scenario
    scale: float
    seed: int
    partitions: int
    n_insert: int
    n_replace: int
    n_patch: int
    n_delete: int

    @property
    def n_preload(self) -> int:
        return self.n_replace + self.n_patch + self.n_delete

    @property
    def n_changes(self) -> int:
        return self.n_insert + self.n_replace + self.n_patch + self.n_delete


def make_plan(name: str, scale: float = 1.0, seed: int = 42,
              partitions: int = PARTITIONS) -> Plan:
    sc = SCENARIOS[name]
    n = max(40, int(sc.events * scale))
    n_replace, n_patch, n_delete = (int(n * sc.replace), int(n * sc.patch), int(n * sc.delete))
    return Plan(sc, scale, seed, partitions, n - n_replace - n_patch - n_delete, n_replace,
                n_patch, n_delete)


# --- documents -------------------------------------------------------------------------


def oid_for(tag: int, phase: int, i: int) -> Oid:
    """Deterministic 24-hex ObjectIds: 4 bytes 'time', 1 byte scenario, 1 byte phase, 6 count."""
    return Oid(f"{0x65A4F0C0 + i // 1000:08x}{tag:02x}{phase:02x}{i:012x}")


def marker_oid(tag: int, phase: int, partition: int, partitions: int) -> Oid:
    """A marker ObjectId that hashes to ``partition``."""
    i = 0
    while True:
        oid = Oid(f"ffffffff{tag:02x}{phase:02x}{i:012x}")
        if partition_of(oid, partitions) == partition:
            return oid
        i += 1


def partition_of(oid: str, partitions: int) -> int:
    return zlib.crc32(oid.encode()) % partitions


def sample_doc(rng: random.Random, oid: Oid, seq: int) -> dict[str, Any]:
    """The seed's sample document (+ ``seq``)."""
    return {
        "_id": oid,
        "name": f"User {rng.randrange(10**6)}",
        "age": rng.randrange(18, 90),
        "salary": round(rng.uniform(20_000, 200_000), 2),
        "is_active": rng.random() < 0.8,
        "created_at": BASE_TIME + timedelta(seconds=rng.randrange(10**7)),
        "metadata": {"plan": rng.choice(PLANS),
                     "features": rng.sample(FEATURES, rng.randrange(1, 4))},
        "seq": seq,
    }


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def big_doc(rng: random.Random, oid: Oid, seq: int) -> dict[str, Any]:
    """A ~2 KB (as Debezium's extended JSON) nested document with arrays."""
    when = BASE_TIME + timedelta(seconds=rng.randrange(10**7))
    return {
        "_id": oid,
        "name": f"Customer {rng.randrange(10**6)}",
        "email": f"c{rng.randrange(10**8)}@example.com",
        "age": rng.randrange(18, 90),
        "is_active": rng.random() < 0.8,
        "created_at": when,
        "seq": seq,
        "profile": {
            "bio": _words(rng, 24),
            "address": {"street": f"{rng.randrange(1, 999)} {rng.choice(WORDS)} street",
                        "city": rng.choice(CITIES), "zip": f"{rng.randrange(10000, 99999)}",
                        "geo": {"lat": round(rng.uniform(-60, 60), 5),
                                "lon": round(rng.uniform(-170, 170), 5)}},
            "preferences": {"newsletter": rng.random() < 0.5, "theme": rng.choice(
                ("dark", "light")), "language": rng.choice(("en", "pt", "ja", "no"))},
        },
        "tags": rng.sample(WORDS, 6),
        "scores": [rng.randrange(0, 1000) for _ in range(12)],
        "orders": [
            {"sku": f"SKU-{rng.randrange(10**5):05d}", "qty": rng.randrange(1, 9),
             "price": round(rng.uniform(1, 500), 2), "status": rng.choice(
                 ("placed", "shipped", "delivered")),
             "placed_at": when + timedelta(hours=rng.randrange(1, 5000)),
             "items": [{"name": rng.choice(WORDS), "qty": rng.randrange(1, 4)}
                       for _ in range(2)]}
            for _ in range(5)
        ],
        "notes": _words(rng, 20),
    }


def patch_fields(rng: random.Random, seq: int) -> dict[str, Any]:
    """A change-streams ``updatedFields``: top-level fields and one dotted path."""
    return {"age": rng.randrange(18, 90), "seq": seq, "metadata.plan": "upgraded",
            "last_login": BASE_TIME + timedelta(seconds=rng.randrange(10**7))}


# --- the changes -----------------------------------------------------------------------


def _tag(plan: Plan) -> int:
    return ord(plan.scenario.name)


def _doc(plan: Plan, rng: random.Random, oid: Oid, seq: int) -> dict[str, Any]:
    return (big_doc if plan.scenario.shape == "big" else sample_doc)(rng, oid, seq)


def setup_ops(plan: Plan) -> Iterator[Op]:
    """The untimed phase: inserts of the keys the timed phase updates or deletes, then one
    marker per partition (nothing when the scenario pre-loads no key)."""
    if not plan.n_preload:
        return
    rng = random.Random(plan.seed * 7919 + 1)
    for i in range(plan.n_preload):
        oid = oid_for(_tag(plan), 1, i)
        yield Op("insert", oid, partition_of(oid, plan.partitions), 0, _doc(plan, rng, oid, 0))
    yield from _markers(plan, 1, rng)


def timed_ops(plan: Plan) -> Iterator[Op]:
    """The timed phase (shuffled kinds; each pre-loaded key changed at most once), then one
    marker per partition. Seqs are 1.. in order."""
    rng = random.Random(plan.seed * 7919 + 2)
    kinds = (["insert"] * plan.n_insert + ["replace"] * plan.n_replace
             + ["patch"] * plan.n_patch + ["delete"] * plan.n_delete)
    rng.shuffle(kinds)
    existing = list(range(plan.n_preload))
    rng.shuffle(existing)
    new = 0
    seq = 0
    for kind in kinds:
        seq += 1
        if kind == "insert":
            oid = oid_for(_tag(plan), 2, new)
            new += 1
            yield Op(kind, oid, partition_of(oid, plan.partitions), seq,
                     _doc(plan, rng, oid, seq))
            continue
        oid = oid_for(_tag(plan), 1, existing.pop())
        part = partition_of(oid, plan.partitions)
        if kind == "replace":
            yield Op(kind, oid, part, seq, _doc(plan, rng, oid, seq))
        elif kind == "patch":
            yield Op(kind, oid, part, seq, set=patch_fields(rng, seq))
        else:
            yield Op("delete", oid, part, seq)
            yield Op("tombstone", oid, part, seq)
    yield from _markers(plan, 2, rng)


def _markers(plan: Plan, phase: int, rng: random.Random) -> Iterator[Op]:
    for p in range(plan.partitions):
        oid = marker_oid(_tag(plan), phase, p, plan.partitions)
        yield Op("insert", oid, p, 0, _doc(plan, rng, oid, 0))


def markers(plan: Plan, phase: int) -> list[Oid]:
    return [marker_oid(_tag(plan), phase, p, plan.partitions) for p in range(plan.partitions)]


@dataclass
class Expected:
    """The final state of the table after setup + timed phases."""

    live: int = 0
    sum_seq: int = 0
    upgraded: int = 0  # rows whose metadata.plan was set by a partial update
    messages: int = 0  # timed messages (tombstones and markers included)
    setup_messages: int = 0


def expected_state(plan: Plan) -> Expected:
    ex = Expected()
    live: dict[str, int] = {}
    upgraded: set[str] = set()
    for op in setup_ops(plan):
        ex.setup_messages += 1
        live[op.oid] = op.seq
    for op in timed_ops(plan):
        ex.messages += 1
        if op.kind in ("insert", "replace"):
            live[op.oid] = op.seq
            upgraded.discard(op.oid)
        elif op.kind == "patch":
            live[op.oid] = op.seq
            upgraded.add(op.oid)
        else:
            live.pop(op.oid, None)
            upgraded.discard(op.oid)
    ex.live, ex.sum_seq, ex.upgraded = len(live), sum(live.values()), len(upgraded)
    return ex


# --- encodings -------------------------------------------------------------------------

_KEY_SCHEMA_PREFIX = b'{"schema":{"type":"struct","name":"bench.Key","optional":false,' \
                     b'"fields":[{"field":"id","type":"string","optional":false}]},"payload":'
_VALUE_SCHEMA_PREFIX = b'{"schema":' + orjson.dumps(_ENVELOPE_SCHEMA) + b',"payload":'


def plain(value: Any) -> Any:
    """A document as plain JSON values (ObjectId hex, ISO-8601 dates)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if isinstance(value, Oid) else value


class Encoder:
    """One op → the messages of every copy, from one ``MongoEvents`` (same positions)."""

    def __init__(self, collection: str, *, start_ms: int = 1_700_000_000_000,
                 avro: AvroCodec | None = None) -> None:
        self.ev = MongoEvents(DB, collection, start_ms=start_ms)
        self.avro = avro

    def debezium(self, op: Op) -> tuple[bytes, bytes | None]:
        ev = self.ev
        if op.kind == "insert":
            return ev.insert(op.doc or {})
        if op.kind == "replace":
            return ev.replace(op.doc or {})
        if op.kind == "patch":
            return ev.update(op.oid, op.set or {})
        if op.kind == "delete":
            return ev.delete(op.oid)
        return ev.tombstone(op.oid)

    @staticmethod
    def with_schemas(key: bytes, value: bytes | None) -> tuple[bytes, bytes | None]:
        return (_KEY_SCHEMA_PREFIX + key + b"}",
                None if value is None else _VALUE_SCHEMA_PREFIX + value + b"}")

    @staticmethod
    def plain(op: Op) -> tuple[bytes, bytes | None]:
        key = str(op.oid).encode()
        if op.kind in ("insert", "replace"):
            return key, orjson.dumps(plain(op.doc))
        if op.kind == "patch":
            return key, orjson.dumps({"_id": str(op.oid), **plain(op.set)})
        return key, None


class AvroCodec:
    """Confluent wire format for the Debezium MongoDB key/envelope (``--avro``)."""

    def __init__(self, registry: Any, topic: str) -> None:
        from fastavro import parse_schema, schemaless_writer

        self._write = schemaless_writer
        key_text = (ROOT / "schemas/debezium-mongodb/key.avsc").read_text()
        value_text = (ROOT / "schemas/debezium-mongodb/envelope.avsc").read_text()
        self.key_schema = parse_schema(json.loads(key_text))
        self.value_schema = parse_schema(json.loads(value_text))
        self.key_id = registry.register(f"{topic}-key", key_text)
        self.value_id = registry.register(f"{topic}-value", value_text)

    def _frame(self, schema_id: int, schema: Any, datum: Any) -> bytes:
        out = BytesIO()
        out.write(b"\x00" + schema_id.to_bytes(4, "big"))
        self._write(out, schema, datum)
        return out.getvalue()

    def encode(self, key: bytes, value: bytes | None) -> tuple[bytes, bytes | None]:
        k = self._frame(self.key_id, self.key_schema, orjson.loads(key))
        if value is None:
            return k, None
        payload = orjson.loads(value)
        src = payload["source"]
        src.setdefault("ts_us", None)
        src.setdefault("ts_ns", None)
        return k, self._frame(self.value_id, self.value_schema, payload)


def avro_available() -> str | None:
    """None when the Avro path can run, else why not."""
    missing = [p for p in ("sink/decode/framing.py", "tests/schema_registry_server.py")
               if not (ROOT / p).is_file()]
    if missing:
        return f"Avro skipped: {', '.join(missing)} not present yet"
    return None


# --- producing -------------------------------------------------------------------------


class BatchProducer:
    """aiokafka producer driven with explicit per-partition batches (fast in Python)."""

    def __init__(self, bootstrap: str) -> None:
        from aiokafka import AIOKafkaProducer

        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                         max_batch_size=512 * 1024, linger_ms=5,
                                         max_request_size=4 * 1024 * 1024)
        self.batches: dict[tuple[str, int], Any] = {}
        self.pending: list[asyncio.Future[Any]] = []
        self.count = 0

    async def start(self) -> None:
        await self.producer.start()

    async def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                  timestamp_ms: int | None = None) -> None:
        self.count += 1
        tp = (topic, partition)
        batch = self.batches.get(tp)
        if batch is None:
            batch = self.batches[tp] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
            await self._send(tp, batch)
            batch = self.batches[tp] = self.producer.create_batch()
            if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
                raise RuntimeError(f"message of {len(value or b'')} bytes exceeds a batch")

    async def _send(self, tp: tuple[str, int], batch: Any) -> None:
        batch.close()
        self.pending.append(await self.producer.send_batch(batch, tp[0], partition=tp[1]))
        if len(self.pending) >= 64:
            await asyncio.gather(*self.pending)
            self.pending.clear()

    async def flush(self) -> None:
        for tp, batch in list(self.batches.items()):
            if batch.record_count():
                await self._send(tp, batch)
        self.batches.clear()
        await asyncio.gather(*self.pending)
        self.pending.clear()

    async def stop(self) -> None:
        await self.flush()
        await self.producer.stop()


@dataclass
class Topics:
    base: str
    dbz: str = ""
    dbzs: str = ""
    plain: str = ""
    avro: str = ""

    def __post_init__(self) -> None:
        self.dbz, self.dbzs, self.plain, self.avro = (
            f"{self.base}.dbz", f"{self.base}.dbzs", f"{self.base}.plain", f"{self.base}.avro")


@dataclass
class Loaded:
    """What :func:`load` wrote: the manifest ``bench/run.py`` works from."""

    scenario: str
    collection: str
    scale: float
    partitions: int
    setup: Topics | None
    timed: Topics
    expected: Expected
    copies: list[str] = field(default_factory=list)
    seconds: float = 0.0
    avro_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def _write(producer: BatchProducer, enc: Encoder, ops: Iterator[Op], topics: Topics,
                 copies: list[str]) -> int:
    n = 0
    for op in ops:
        key, value = enc.debezium(op)
        await producer.add(topics.dbz, op.partition, key, value)
        if "dbzs" in copies:
            await producer.add(topics.dbzs, op.partition, *enc.with_schemas(key, value))
        if "plain" in copies:
            await producer.add(topics.plain, op.partition, *enc.plain(op))
        if "avro" in copies and enc.avro is not None:
            await producer.add(topics.avro, op.partition, *enc.avro.encode(key, value))
        n += 1
    await producer.flush()
    return n


async def load(bootstrap: str, plan: Plan, run_id: str, *, copies: list[str],
               registry: Any = None) -> Loaded:
    """Create the topics and write the setup and timed phases of ``plan``."""
    from sink.stack.local import create_topic

    sc = plan.scenario
    started = time.monotonic()
    base = f"bench.{run_id}.{sc.name}"
    setup = Topics(f"{base}.setup") if plan.n_preload else None
    timed = Topics(f"{base}.timed")
    avro_note = None
    if "avro" in copies:
        avro_note = avro_available() or (None if registry is not None
                                         else "Avro skipped: no schema registry given")
        if avro_note:
            copies = [c for c in copies if c != "avro"]
    for topics in (setup, timed):
        if topics is None:
            continue
        for copy in ("dbz", *copies):
            await create_topic(bootstrap, getattr(topics, copy), plan.partitions)
    producer = BatchProducer(bootstrap)
    await producer.start()
    try:
        avro = AvroCodec(registry, timed.avro) if "avro" in copies else None
        enc = Encoder(sc.collection, avro=avro)  # one clock: timed positions follow setup's
        if setup is not None:
            await _write(producer, enc, setup_ops(plan), setup, copies)
        await _write(producer, enc, timed_ops(plan), timed, copies)
    finally:
        await producer.stop()
    return Loaded(sc.name, sc.collection, plan.scale, plan.partitions, setup, timed,
                  expected_state(plan), copies, time.monotonic() - started, avro_note)


# --- latency load ----------------------------------------------------------------------


async def produce_at_rate(bootstrap: str, topic: str, rate: int, seconds: float,
                          partitions: int = PARTITIONS, seed: int = 9) -> int:
    """Inserts of the sample document (+ ``produced_at``, epoch ms) at ``rate`` events/s,
    in 10 ms ticks, for ``seconds``; returns how many were sent."""
    from aiokafka import AIOKafkaProducer

    rng = random.Random(seed)
    ev = MongoEvents(DB, "latency", start_ms=int(time.time() * 1000))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    sent = 0
    try:
        t0 = time.monotonic()
        tick = 0.01
        n_ticks = int(seconds / tick)
        for k in range(n_ticks):
            due = int(rate * (k + 1) * tick) - sent
            for _ in range(due):
                oid = oid_for(ord("L"), 2, sent)
                now_ms = int(time.time() * 1000)
                doc = {**sample_doc(rng, oid, sent + 1), "produced_at": now_ms}
                key, value = ev.insert(doc)
                await producer.send(topic, key=key, value=value,
                                    partition=partition_of(oid, partitions),
                                    timestamp_ms=now_ms)
                sent += 1
            delay = t0 + (k + 1) * tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), action="append",
                    help="scenario (repeatable; default all)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--partitions", type=int, default=PARTITIONS)
    ap.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the bench stack)")
    ap.add_argument("--run-id", default=time.strftime("%Y%m%d%H%M%S"))
    ap.add_argument("--connect-copy", action="store_true",
                    help="also write the schema-wrapped copy for Kafka Connect")
    ap.add_argument("--no-plain", action="store_true", help="skip the plain-JSON copy")
    ap.add_argument("--avro", action="store_true", help="also write the Avro copy")
    ap.add_argument("--show", type=int, default=0, metavar="N",
                    help="print the first N timed messages of the first scenario and exit")
    args = ap.parse_args(argv)
    names = args.scenario or sorted(SCENARIOS)
    if args.show:
        plan = make_plan(names[0], args.scale, args.seed, args.partitions)
        enc = Encoder(plan.scenario.collection)
        for i, op in enumerate(timed_ops(plan)):
            if i >= args.show:
                break
            key, value = enc.debezium(op)
            print(f"[{op.kind} p{op.partition}] key={key.decode()}\n  value="
                  f"{value.decode() if value else None}\n  plain={enc.plain(op)[1]!r}")
        return 0
    bootstrap = args.bootstrap
    if bootstrap is None:
        from sink.stack.local import LocalStack

        bootstrap = LocalStack(ROOT / ".warp/bench-stack").up().bootstrap_servers
    copies = ([] if args.no_plain else ["plain"]) + (["dbzs"] if args.connect_copy else [])
    registry = None
    if args.avro:
        note = avro_available()
        if note:
            print(note, file=sys.stderr)
        else:
            from tests.schema_registry_server import RegistryServer

            registry = RegistryServer()
            copies.append("avro")
    for name in names:
        plan = make_plan(name, args.scale, args.seed, args.partitions)
        loaded = asyncio.run(load(bootstrap, plan, args.run_id, copies=copies,
                                  registry=registry))
        print(json.dumps(loaded.to_json()))
    if registry is not None:
        registry.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
