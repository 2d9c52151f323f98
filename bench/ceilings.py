"""The two ceilings of the benchmark, one process each (``bench/run.py`` runs them):

    python bench/ceilings.py pg --scenario a --scale 1 --dsn postgresql://... [--batch N]
    python bench/ceilings.py decode --topic T --bootstrap H:P [--format avro --registry URL]

``pg``: the scenario's rows written straight to PostgreSQL, no Kafka and no decoding. The
rows are built in memory from the same seeded changes the load generator writes (before the
clock starts), keys pre-loaded untimed as for the sinks. Then, per batch of ``--batch``
changes (default: the sink's default flush size), one transaction: binary ``COPY`` into a
temporary staging table and one set-based statement per kind — ``INSERT … SELECT … ON
CONFLICT (_id) DO UPDATE`` for full documents, ``UPDATE … FROM`` staging for partial updates
(``jsonb_set`` for the dotted path), ``UPDATE … SET is_deleted … WHERE _id = ANY($1)`` for
deletes — then COMMIT.
The table has our column layout (typed columns, jsonb for documents, version/updated-at/
soft-delete columns) but no ordering guard, no offsets table and no schema checks.

``decode``: consume the topic from the beginning (aiokafka ``getmany``, no group) and decode
every message with ``sink.decode.decode_json`` (or ``sink.decode.MessageDecoder`` for
Avro), no PostgreSQL, until the end offsets seen at start.

Each prints one JSON line: ``{"events": n, "seconds": s, ...}`` (the timed part only).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loadgen

from sink.config.model import DEFAULT_FLUSH_RECORDS

META_COLS = ("_cartridge_version", "is_deleted")
SAMPLE_COLS: list[tuple[str, str]] = [
    ("_id", "text"), ("name", "text"), ("age", "integer"), ("salary", "double precision"),
    ("is_active", "boolean"), ("created_at", "timestamptz"), ("metadata", "jsonb"),
    ("seq", "integer"),
]
BIG_COLS: list[tuple[str, str]] = [
    ("_id", "text"), ("name", "text"), ("email", "text"), ("age", "integer"),
    ("is_active", "boolean"), ("created_at", "timestamptz"), ("seq", "integer"),
    ("profile", "jsonb"), ("tags", "jsonb"), ("scores", "jsonb"), ("orders", "jsonb"),
    ("notes", "text"),
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _row(doc: dict[str, Any], cols: list[tuple[str, str]]) -> tuple[Any, ...]:
    out = []
    for name, pg_type in cols:
        v = doc.get(name)
        if pg_type == "jsonb" and v is not None:
            v = orjson.dumps(_jsonable(v)).decode()
        elif name == "_id":
            v = str(v)
        out.append(v)
    return tuple(out)


def _batches(plan: loadgen.Plan, cols: list[tuple[str, str]], size: int) -> list[dict[str, Any]]:
    """The timed changes as pre-built rows, grouped per flush: {upserts, patches, deletes}."""
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] = {"upserts": [], "patches": [], "deletes": [], "n": 0}
    for op in loadgen.timed_ops(plan):
        if op.kind in ("insert", "replace"):
            cur["upserts"].append(_row(op.doc or {}, cols))
        elif op.kind == "patch":
            s = op.set or {}
            cur["patches"].append((str(op.oid), s["age"], s["seq"], s["last_login"],
                                   orjson.dumps(s["metadata.plan"]).decode()))
        elif op.kind == "delete":
            cur["deletes"].append(str(op.oid))
        cur["n"] += 1  # tombstones count as messages, as they do for the sinks
        if cur["n"] >= size:
            out.append(cur)
            cur = {"upserts": [], "patches": [], "deletes": [], "n": 0}
    if cur["n"]:
        out.append(cur)
    return out


async def pg_ceiling(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    plan = loadgen.make_plan(args.scenario, args.scale, args.seed, args.partitions)
    cols = BIG_COLS if plan.scenario.shape == "big" else SAMPLE_COLS
    table = f'"{args.schema}"."{plan.scenario.collection}"'
    conn = await asyncpg.connect(args.dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE; '
                           f'CREATE SCHEMA "{args.schema}"')
        coldefs = ", ".join(f'"{n}" {t}' for n, t in cols)
        await conn.execute(
            f"CREATE TABLE {table} ({coldefs}, last_login timestamptz, "
            "_cartridge_version bigint NOT NULL DEFAULT 1, "
            "_cartridge_updated_at timestamptz NOT NULL DEFAULT now(), "
            "is_deleted boolean NOT NULL DEFAULT false, deleted_at timestamptz, "
            "PRIMARY KEY (_id))")
        await conn.execute(f"CREATE TEMP TABLE stage_up ({coldefs}) ON COMMIT DELETE ROWS")
        await conn.execute("CREATE TEMP TABLE stage_patch (_id text, age integer, seq integer, "
                           "last_login timestamptz, plan jsonb) ON COMMIT DELETE ROWS")
        names = [n for n, _ in cols]
        collist = ", ".join(f'"{n}"' for n in names)
        upsert = (f"INSERT INTO {table} AS t ({collist}) SELECT {collist} FROM stage_up "
                  f"ON CONFLICT (_id) DO UPDATE SET "
                  + ", ".join(f'"{n}" = EXCLUDED."{n}"' for n in names if n != "_id")
                  + ", _cartridge_version = t._cartridge_version + 1, "
                  "_cartridge_updated_at = now(), is_deleted = false, deleted_at = NULL")
        patch = (f"UPDATE {table} AS t SET age = s.age, seq = s.seq, last_login = s.last_login, "
                 "metadata = jsonb_set(coalesce(t.metadata, '{}'), '{plan}', s.plan), "
                 "_cartridge_version = t._cartridge_version + 1, _cartridge_updated_at = now() "
                 "FROM stage_patch s WHERE t._id = s._id")
        delete = (f"UPDATE {table} AS t SET is_deleted = true, deleted_at = now(), "
                  "_cartridge_version = t._cartridge_version + 1, _cartridge_updated_at = now() "
                  "WHERE t._id = ANY($1::text[]) AND NOT t.is_deleted")

        async def flush(b: dict[str, Any]) -> None:
            async with conn.transaction():
                if b["upserts"]:
                    await conn.copy_records_to_table("stage_up", records=b["upserts"],
                                                     columns=names)
                    await conn.execute(upsert)
                if b["patches"]:
                    await conn.copy_records_to_table("stage_patch", records=b["patches"])
                    await conn.execute(patch)
                if b["deletes"]:
                    await conn.execute(delete, b["deletes"])

        pre = [_row(op.doc or {}, cols) for op in loadgen.setup_ops(plan)]
        for i in range(0, len(pre), 5000):
            await flush({"upserts": pre[i:i + 5000], "patches": [], "deletes": []})
        batches = _batches(plan, cols, args.batch)
        await conn.execute("CHECKPOINT")
        started = time.perf_counter()
        for b in batches:
            await flush(b)
        seconds = time.perf_counter() - started
        live, sum_seq = await conn.fetchrow(
            f"SELECT count(*) FILTER (WHERE NOT is_deleted), "
            f"coalesce(sum(seq) FILTER (WHERE NOT is_deleted), 0) FROM {table}")
        await conn.execute(f'DROP SCHEMA "{args.schema}" CASCADE')
    finally:
        await conn.close()
    ex = loadgen.expected_state(plan)
    return {"events": sum(b["n"] for b in batches), "seconds": seconds,
            "batch": args.batch, "state_ok": (live, sum_seq) == (ex.live, ex.sum_seq)}


async def decode_ceiling(args: argparse.Namespace) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from sink.decode.envelope import decode_json
    from sink.errors import DecodeError

    decoder: Any = None
    if args.format == "avro":
        from sink.decode.framing import MessageDecoder
        from sink.decode.registry import SchemaRegistry

        decoder = MessageDecoder(key_format="avro", value_format="avro",
                                 registry=SchemaRegistry(args.registry))
    started = time.perf_counter()
    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None,
                                enable_auto_commit=False, isolation_level="read_committed",
                                fetch_max_bytes=52_428_800,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    n = bad = 0
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
        await admin.start()
        try:
            meta = (await admin.describe_topics([args.topic]))[0]
        finally:
            await admin.close()
        parts = [p["partition"] for p in meta.get("partitions") or ()]
        if not parts:
            raise SystemExit(f"topic {args.topic} not found")
        tps = [TopicPartition(args.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, msgs in batch.items():
                for msg in msgs:
                    try:
                        if decoder is None:
                            decode_json(msg.key, msg.value, msg.topic)
                        else:
                            await decoder.decode(msg.key, msg.value, msg.topic)
                    except DecodeError:
                        bad += 1
                    n += 1
                if msgs and msgs[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return {"events": n, "seconds": time.perf_counter() - started, "undecodable": bad}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="which", required=True)
    pg = sub.add_parser("pg")
    pg.add_argument("--scenario", required=True, choices=sorted(loadgen.SCENARIOS))
    pg.add_argument("--scale", type=float, default=1.0)
    pg.add_argument("--seed", type=int, default=42)
    pg.add_argument("--partitions", type=int, default=loadgen.PARTITIONS)
    pg.add_argument("--dsn", required=True)
    pg.add_argument("--batch", type=int, default=DEFAULT_FLUSH_RECORDS)
    pg.add_argument("--schema", default="bench_ceiling")
    dec = sub.add_parser("decode")
    dec.add_argument("--topic", required=True)
    dec.add_argument("--bootstrap", required=True)
    dec.add_argument("--format", choices=["json", "avro"], default="json")
    dec.add_argument("--registry")
    args = ap.parse_args(argv)
    fn = pg_ceiling if args.which == "pg" else decode_ceiling
    from sink.cli import tune_gc

    tune_gc()  # the collector settings `warp-sink run` uses: the ceiling gets them too
    print(orjson.dumps(asyncio.run(fn(args))).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
