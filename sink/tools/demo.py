"""``warp-sink demo``: the local stack, a few hundred realistic Debezium MongoDB events
(users with nested profiles, orders with item arrays, updates and deletes), the sink
run until caught up, and the resulting rows printed."""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from sink.config import load_settings
from sink.logs import configure
from sink.tools.events import MongoEvents, Oid


def _oid(rng: random.Random) -> Oid:
    return Oid(f"{rng.getrandbits(96):024x}")


def demo_events(n: int, seed: int = 7) -> list[tuple[str, bytes, bytes | None]]:
    """About ``n`` events for shop.users and shop.orders: inserts, full and partial
    updates, deletes followed by tombstones."""
    rng = random.Random(seed)
    start = int(time.time() * 1000)
    users_ev = MongoEvents("shop", "users", start_ms=start)
    orders_ev = MongoEvents("shop", "orders", start_ms=start)
    out: list[tuple[str, bytes, bytes | None]] = []
    users: list[dict[str, Any]] = []
    plans = ["free", "pro", "enterprise"]
    n_users = max(10, n // 4)
    for i in range(n_users):
        doc = {
            "_id": _oid(rng), "name": f"User {i}", "email": f"user{i}@example.com",
            "age": rng.randint(18, 80), "salary": round(rng.uniform(30_000, 150_000), 2),
            "is_active": rng.random() > 0.2,
            "created_at": datetime(2024, 1, 1, tzinfo=UTC)
            + timedelta(minutes=rng.randint(0, 10**6)),
            "profile": {"plan": rng.choice(plans), "address": {"city": rng.choice(
                ["Oslo", "Lisbon", "Austin", "Osaka"]), "zip": f"{rng.randint(1000, 9999)}"},
                "features": rng.sample(["analytics", "api_access", "sso", "exports"], 2)},
        }
        users.append(doc)
        out.append((users_ev.topic, *users_ev.insert(doc)))
    for i in range(max(10, n // 4)):
        user = rng.choice(users)
        items = [{"sku": f"SKU-{rng.randint(1, 500)}", "qty": rng.randint(1, 5),
                  "price": Decimal(f"{rng.randint(100, 9999)}.{rng.randint(0, 99):02d}")}
                 for _ in range(rng.randint(1, 4))]
        order = {"_id": 10_000 + i, "user_id": user["_id"], "status": "placed",
                 "items": items, "placed_at": datetime.now(UTC)}
        out.append((orders_ev.topic, *orders_ev.insert(order)))
        if rng.random() < 0.5:
            out.append((orders_ev.topic, *orders_ev.update(order["_id"], {"status": "shipped"})))
    for _ in range(max(5, n // 4)):
        user = rng.choice(users)
        if rng.random() < 0.5:
            user["profile"]["plan"] = rng.choice(plans)
            out.append((users_ev.topic, *users_ev.update(
                user["_id"], {"profile.plan": user["profile"]["plan"], "last_login":
                              datetime.now(UTC)})))
        else:
            user["age"] += 1
            out.append((users_ev.topic, *users_ev.replace(user)))
    for user in rng.sample(users, max(2, n_users // 10)):
        out.append((users_ev.topic, *users_ev.delete(user["_id"])))
        out.append((users_ev.topic, *users_ev.tombstone(user["_id"])))
    return out


async def _produce(bootstrap: str, events: list[tuple[str, bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for topic, key, value in events:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def _show(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for table, cols in (("users", "_id, name, age, profile->>'plan' AS plan, is_deleted, "
                                      "_cartridge_version AS version"),
                            ("orders", "_id, user_id, status, jsonb_array_length(items) AS "
                                       "items, _cartridge_version AS version")):
            total = await conn.fetchval(f"SELECT count(*) FROM shop.{table}")
            deleted = await conn.fetchval(
                f"SELECT count(*) FROM shop.{table} WHERE is_deleted")
            print(f"\nshop.{table}: {total} rows ({deleted} soft-deleted); first 8:")
            rows = await conn.fetch(
                f"SELECT {cols} FROM shop.{table} ORDER BY _cartridge_version DESC, _id LIMIT 8"
            )
            if rows:
                keys = list(rows[0].keys())
                print("  " + " | ".join(keys))
                for r in rows:
                    print("  " + " | ".join(str(r[k]) for k in keys))
    finally:
        await conn.close()


def run_demo(directory: str | None, *, events: int = 400) -> int:
    from sink.service import Sink
    from sink.stack import LocalStack, create_topic

    configure("console" if not directory else "auto", "warning")
    root = Path(directory or os.environ.get("WARP_STACK_DIR") or ".warp/stack")
    info = LocalStack(root).up()
    print(f"stack: kafka {info.bootstrap_servers}, postgres {info.pg_dsn.split('@')[-1]}")
    batch = demo_events(events)
    for topic in sorted({t for t, _, _ in batch}):
        asyncio.run(create_topic(info.bootstrap_servers, topic, 3))
    asyncio.run(_produce(info.bootstrap_servers, batch))
    print(f"produced {len(batch)} Debezium MongoDB events to "
          f"{', '.join(sorted({t for t, _, _ in batch}))}")
    cfg = root / "demo-config.yaml"
    cfg.write_text(
        "source:\n"
        f"  bootstrap_servers: \"{info.bootstrap_servers}\"\n"
        "  topic_pattern: \"mongo\\\\.shop\\\\..*\"\n"
        "  group_id: \"warp-demo\"\n"
        "destination:\n"
        "  type: \"postgresql\"\n"
        f"  connection_string: \"{info.pg_dsn}\"\n"
        "observability:\n  metrics_port: 0\n  log_level: warning\n",
        encoding="utf-8",
    )
    settings = load_settings(cfg)
    started = time.monotonic()
    code = asyncio.run(Sink(settings, until_caught_up=True).run())
    print(f"sink caught up in {time.monotonic() - started:.1f}s (exit {code})")
    asyncio.run(_show(info.pg_dsn))
    print(f"\nthe stack keeps running: `warp-sink stack env --dir {root}` for its addresses,"
          f" `warp-sink stack down --dir {root}` to stop it")
    return code
