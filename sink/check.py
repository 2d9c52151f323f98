"""``warp-sink check``: can this configuration run? One line per check, OK or the
exact problem and a hint; exit 0 only when every check passes."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Awaitable, Callable

import asyncpg

from . import kafka
from .config import Settings, mask_dsn
from .logs import scrub

Check = tuple[str, Callable[[], Awaitable[str]]]


async def _kafka(settings: Settings) -> str:
    src = settings.source
    client = kafka.consumer(src, max_poll_records=1)
    try:
        await asyncio.wait_for(client.start(), timeout=20)
        topics = await client.topics()
    finally:
        await client.stop()
    if src.topic_pattern:
        found = sorted(t for t in topics if re.fullmatch(src.topic_pattern, t))
        if not found:
            raise RuntimeError(f"no topic matches {src.topic_pattern!r} "
                               "(hint: is the Debezium connector running?)")
        return f"{len(found)} topics match the pattern"
    missing = sorted(set(src.topics) - set(topics))
    if missing:
        raise RuntimeError(f"topics not found: {', '.join(missing)} (hint: check source.topics)")
    return f"{len(src.topics)} topics found"


async def _postgres(settings: Settings) -> str:
    d = settings.destination
    conn = await asyncpg.connect(d.connection_string.get_secret_value(),
                                 timeout=d.connection_timeout)
    try:
        version = await conn.fetchval("SHOW server_version")
        can_create = await conn.fetchval(
            "SELECT has_database_privilege(current_user, current_database(), 'CREATE')")
        if not can_create:
            raise RuntimeError("the user may not create schemas in this database "
                               "(hint: GRANT CREATE ON DATABASE ... TO the sink's user)")
        major = int(str(version).split(".")[0])
        if d.upsert_mode == "merge" and major < 15:
            raise RuntimeError(f"upsert_mode merge needs PostgreSQL 15+, server is {version}")
    finally:
        await conn.close()
    return f"PostgreSQL {version}, may create schemas"


async def _registry(settings: Settings) -> str:
    url = settings.source.schema_registry_url
    if not url:
        return "not configured (json formats)"

    def get() -> int:
        req = urllib.request.Request(url.rstrip("/") + "/subjects")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)

    status = await asyncio.to_thread(get)
    return f"answers (HTTP {status})"


async def run_checks(settings: Settings) -> int:
    checks: list[Check] = [
        (f"kafka {settings.source.bootstrap_servers}", lambda: _kafka(settings)),
        ("schema registry", lambda: _registry(settings)),
        (f"postgresql {mask_dsn(settings.destination.connection_string.get_secret_value())}",
         lambda: _postgres(settings)),
    ]
    failed = 0
    for name, fn in checks:
        try:
            print(f"OK    {name}: {await fn()}")
        except Exception as exc:
            failed += 1
            print(f"FAIL  {name}: {scrub(str(exc) or type(exc).__name__)}")
    return 1 if failed else 0
