"""Prometheus metrics (the seed's names, exactly) and the HTTP endpoints
``/metrics``, ``/healthz`` (the loop is alive) and ``/readyz`` (connected and assigned).

Label values are schema, table, topic, partition, operation and error codes only:
never a DSN, a password or a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# No ``*_created`` series next to every counter: nothing here reads them, and they would
# double the series count per label set.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The sink's metric families. Counters are declared without ``_total``; the text
    exposition names their ``# TYPE`` line and samples ``<name>_total`` (the seed's names).

    ``on_render`` holds callables run before each scrape (e.g. to read the pool's sizes
    now rather than at the last flush)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.records_processed = Counter(
            "cartridge_warp_records_processed", "Records applied to PostgreSQL.",
            ["schema", "table", "operation"], registry=r,
        )
        self.batch_duration = Histogram(
            "cartridge_warp_batch_processing_duration_seconds",
            "Time to apply one flush unit, per table.", ["schema", "table"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.pool_active = Gauge(
            "cartridge_warp_connection_pool_active_connections", "Pool connections in use.",
            ["database"], registry=r,
        )
        self.pool_idle = Gauge(
            "cartridge_warp_connection_pool_idle_connections", "Idle pool connections.",
            ["database"], registry=r,
        )
        self.pool_size = Gauge(
            "cartridge_warp_connection_pool_size", "Pool connections open.", ["database"],
            registry=r,
        )
        self.errors = Counter(
            "cartridge_warp_errors", "Errors by kind.", ["schema", "table", "error_type"],
            registry=r,
        )
        self.lag = Gauge(
            "cartridge_warp_consumer_lag", "Messages behind the partition's end.",
            ["topic", "partition"], registry=r,
        )
        self.dlq_records = Counter(
            "cartridge_warp_dlq_records", "Records sent to the dead-letter topic.",
            ["topic", "error_code"], registry=r,
        )
        self.buffered_bytes = Gauge(
            "cartridge_warp_buffered_bytes", "Bytes of messages buffered, not yet applied.",
            registry=r,
        )
        self.since_commit = Gauge(
            "cartridge_warp_seconds_since_last_commit", "Seconds since the last commit.",
            registry=r,
        )
        self.schema_changes = Counter(
            "cartridge_warp_schema_changes", "DDL applied by the sink.",
            ["schema", "table", "change_type"], registry=r,
        )
        self.overflow = Counter(
            "cartridge_warp_overflow_values", "Values kept in _cartridge_overflow (narrowing).",
            ["schema", "table", "column"], registry=r,
        )
        self.skipped = Counter(
            "cartridge_warp_skipped_records", "Messages with no row change (heartbeats...).",
            ["reason"], registry=r,
        )
        self.ready = Gauge("cartridge_warp_ready", "1 when ready.", registry=r)
        self.last_commit = time.monotonic()
        self.on_render: list[Callable[[], None]] = []

    def committed(self) -> None:
        self.last_commit = time.monotonic()

    def pool(self, database: str, size: int, idle: int, active: int) -> None:
        self.pool_size.labels(database).set(size)
        self.pool_idle.labels(database).set(idle)
        self.pool_active.labels(database).set(active)

    def render(self) -> bytes:
        for hook in self.on_render:
            with contextlib.suppress(Exception):  # a scrape must not fail because of a hook
                hook()
        self.since_commit.set(time.monotonic() - self.last_commit)
        return bytes(generate_latest(self.registry))


class HealthServer:
    """A minimal HTTP/1.0 server on the event loop: no extra dependency, no thread."""

    def __init__(
        self, metrics: Metrics, alive: Callable[[], bool], ready: Callable[[], tuple[bool, str]]
    ) -> None:
        self.metrics = metrics
        self.alive = alive
        self.ready = ready
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b""):
                pass
            parts = line.decode("latin-1").split()
            method = parts[0] if parts else "GET"
            path = parts[1].split("?", 1)[0] if len(parts) > 1 else "/"
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            else:
                status, ctype, body = self._route(path)
            head = (
                f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def _route(self, path: str) -> tuple[str, str, bytes]:
        if path == "/metrics":
            self.metrics.ready.set(1 if self.ready()[0] else 0)
            return "200 OK", CONTENT_TYPE_LATEST, self.metrics.render()
        if path == "/healthz":
            ok = self.alive()
            return ("200 OK" if ok else "503 Service Unavailable"), "text/plain", (
                b"ok\n" if ok else b"event loop stalled\n")
        if path == "/readyz":
            ok, why = self.ready()
            self.metrics.ready.set(1 if ok else 0)
            return ("200 OK" if ok else "503 Service Unavailable"), "text/plain", (
                why + "\n").encode()
        return "404 Not Found", "text/plain", b"not found\n"
