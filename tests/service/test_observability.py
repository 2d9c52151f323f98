"""Observability: the Prometheus families (the seed's names and labels, exactly), the HTTP
endpoints ``/metrics``, ``/healthz``, ``/readyz``, and structured logging (JSON off a
terminal, console on one).

The integration test runs the real service (``sink.service.Sink``) on the test loop against
the real Kafka and PostgreSQL, scrapes its HTTP server over TCP, and compares the counters
with what landed in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from sink import logs
from sink.config import load_settings
from sink.metrics import HealthServer, Metrics
from sink.tools.events import MongoEvents, Oid
from tests.support import http_get, produce, unique

# name -> (type, labels of its samples): the seed's five families first, then the sink's own.
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "cartridge_warp_records_processed_total": ("counter", ("schema", "table", "operation")),
    "cartridge_warp_batch_processing_duration_seconds": ("histogram", ("schema", "table")),
    "cartridge_warp_connection_pool_active_connections": ("gauge", ("database",)),
    "cartridge_warp_connection_pool_idle_connections": ("gauge", ("database",)),
    "cartridge_warp_errors_total": ("counter", ("schema", "table", "error_type")),
    "cartridge_warp_consumer_lag": ("gauge", ("topic", "partition")),
    "cartridge_warp_dlq_records_total": ("counter", ("topic", "error_code")),
    "cartridge_warp_buffered_bytes": ("gauge", ()),
    "cartridge_warp_seconds_since_last_commit": ("gauge", ()),
    "cartridge_warp_schema_changes_total": ("counter", ("schema", "table", "change_type")),
    "cartridge_warp_overflow_values_total": ("counter", ("schema", "table", "column")),
    "cartridge_warp_connection_pool_size": ("gauge", ("database",)),
    "cartridge_warp_ready": ("gauge", ()),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])




def type_lines(text: str) -> dict[str, str]:
    return {parts[2]: parts[3] for line in text.splitlines()
            if (parts := line.split()) and line.startswith("# TYPE ")}


def samples(text: str) -> list[Any]:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def value(text: str, name: str, **labels: str) -> float | None:
    for s in samples(text):
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


def assert_families(text: str) -> None:
    """Every family is declared with exactly its type, and every sample has exactly its labels."""
    types = type_lines(text)
    for name, (kind, labels) in FAMILIES.items():
        assert types.get(name) == kind, (name, types.get(name))
        for s in samples(text):
            if s.name == name or (kind == "histogram" and s.name.startswith(name + "_")):
                extra = {"le"} if s.name.endswith("_bucket") else set()
                assert set(s.labels) == set(labels) | extra, (s.name, s.labels)
    assert not [n for n in types if n.endswith("_created")], "no *_created series"


# --- metrics and endpoints, no servers ------------------------------------------------------


def test_metric_families_have_the_seed_names_and_labels() -> None:
    m = Metrics()
    m.records_processed.labels("ecommerce", "users", "insert").inc(3)
    m.batch_duration.labels("ecommerce", "users").observe(0.2)
    m.pool("warehouse", 4, 3, 1)
    m.errors.labels("ecommerce", "users", "connection").inc()
    m.lag.labels("t", "0").set(7)
    m.dlq_records.labels("t", "bad_json").inc()
    m.schema_changes.labels("ecommerce", "users", "add_column").inc()
    m.overflow.labels("ecommerce", "users", "age").inc()
    m.buffered_bytes.set(10)
    text = m.render().decode()
    assert_families(text)
    assert value(text, "cartridge_warp_records_processed_total", schema="ecommerce",
                 table="users", operation="insert") == 3
    assert value(text, "cartridge_warp_connection_pool_active_connections",
                 database="warehouse") == 1
    assert value(text, "cartridge_warp_connection_pool_idle_connections",
                 database="warehouse") == 3
    assert value(text, "cartridge_warp_seconds_since_last_commit") is not None


def test_render_hooks_run_before_each_scrape() -> None:
    m = Metrics()
    m.on_render.append(lambda: m.pool("db", 2, 2, 0))
    m.on_render.append(lambda: 1 / 0)  # a failing hook does not break the scrape
    assert value(m.render().decode(), "cartridge_warp_connection_pool_size", database="db") == 2


async def test_health_server_routes() -> None:
    state = {"alive": True, "ready": (False, "waiting for a partition assignment")}
    server = HealthServer(Metrics(), lambda: bool(state["alive"]),
                          lambda: state["ready"])  # type: ignore[arg-type,return-value]
    await server.start("127.0.0.1", 0)
    try:
        port = server.port
        assert await http_get(port, "/healthz") == (200, "ok\n")
        assert await http_get(port, "/readyz") == (503, "waiting for a partition assignment\n")
        status, text = await http_get(port, "/metrics")
        assert status == 200 and value(text, "cartridge_warp_ready") == 0
        state["ready"] = (True, "ready: 1 partitions")
        assert await http_get(port, "/readyz?verbose=1") == (200, "ready: 1 partitions\n")
        assert value((await http_get(port, "/metrics"))[1], "cartridge_warp_ready") == 1
        state["alive"] = False
        assert (await http_get(port, "/healthz"))[0] == 503
        assert (await http_get(port, "/nope"))[0] == 404
        assert await http_get(port, "/metrics", "HEAD") == (200, "")
        assert (await http_get(port, "/metrics", "POST"))[0] == 405
    finally:
        await server.stop()


# --- logging -------------------------------------------------------------------------------


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    logs.clear_secrets()


def _emit() -> None:
    log = structlog.get_logger("sink.test")
    log.debug("hidden at info")
    log.info("Batch processed successfully", schema="ecommerce", table="users", records=1000,
             duration=2.5, operations={"insert": 800, "update": 150, "delete": 50})
    logging.getLogger("aiokafka.conn").warning("Unable to connect to %s", "node 1")


def test_json_lines_off_a_terminal(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure("auto", "info", out)
    _emit()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    batch, foreign = lines
    assert batch["event"] == "Batch processed successfully" and batch["level"] == "info"
    assert {k: batch[k] for k in ("schema", "table", "records", "duration", "operations")} == {
        "schema": "ecommerce", "table": "users", "records": 1000, "duration": 2.5,
        "operations": {"insert": 800, "update": 150, "delete": 50}}
    assert batch["timestamp"].endswith("Z")
    # standard-library loggers come out as JSON lines too
    assert foreign["event"] == "Unable to connect to node 1"
    assert (foreign["level"], foreign["logger"]) == ("warning", "aiokafka.conn")


def test_console_on_a_terminal(restore_logging: None) -> None:
    out = FakeTTY()
    logs.configure("auto", "info", out)
    _emit()
    text = out.getvalue()
    assert "Batch processed successfully" in text and "\x1b[" in text  # coloured
    assert not text.lstrip().startswith("{")
    assert "hidden at info" not in text


def test_format_and_level_are_configurable(restore_logging: None) -> None:
    out = FakeTTY()
    logs.configure("json", "debug", out)  # json even on a terminal
    _emit()
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events[0] == "hidden at info"
    out2 = io.StringIO()
    logs.configure("console", "warning", out2)  # console off a terminal: no colours
    _emit()
    text = out2.getvalue()
    assert "Batch processed" not in text and "Unable to connect" in text
    assert "\x1b[" not in text and not text.startswith("{")


def test_secrets_are_scrubbed_from_log_lines(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure("json", "info", out)
    logs.register_secrets("Canary-Pw-42")
    log = structlog.get_logger("x")
    log.info("connecting", dsn="postgresql://u:Canary-Pw-42@h/db", note="pw Canary-Pw-42",
             sasl_password="Canary-Pw-42",
             nested={"password": "other-pw", "list": ["Canary-Pw-42"]})
    try:
        raise RuntimeError("auth failed for postgresql://u:Canary-Pw-42@h/db")
    except RuntimeError:
        log.exception("failed")
    logging.getLogger("asyncpg").error("password=Canary-Pw-42 rejected")
    text = out.getvalue()
    assert "Canary-Pw-42" not in text and "other-pw" not in text
    assert "postgresql://u:***@h/db" in text
    assert len([json.loads(line) for line in text.splitlines()]) == 3


def test_settings_drive_the_configuration(tmp_path: Path, restore_logging: None) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("source:\n  topics: [t]\ndestination:\n  connection_string: "
                    "postgresql://u@h/db\nobservability:\n  log_format: CONSOLE\n"
                    "  log_level: WARNING\n", encoding="utf-8")
    obs = load_settings(path).observability
    out = io.StringIO()
    logs.configure(obs.log_format, obs.log_level, out)
    _emit()
    assert "Batch processed" not in out.getvalue() and "Unable to connect" in out.getvalue()


# --- the service, on real servers -------------------------------------------------------------


def _config(tmp_path: Path, stack: Any, topic: str, group: str, port: int) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"""
source:
  bootstrap_servers: "{stack.bootstrap_servers}"
  topics: ["{topic}"]
  group_id: "{group}"
destination:
  connection_string: "{stack.pg_dsn}"
  min_connections: 1
  max_connections: 3
batch:
  max_records: 5
  max_age_ms: 50
observability:
  metrics_port: {port}
  metrics_host: "127.0.0.1"
""", encoding="utf-8")
    return path


async def _wait_for(predicate: Any, what: str, within: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _stop(sink: Any, task: asyncio.Task[int]) -> int:
    """Stop the in-process service, wait for its run() (its result), and take its signal
    handlers off the test's loop."""
    sink.stop()
    try:
        return await asyncio.wait_for(task, 60)
    finally:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@pytest.mark.integration
async def test_service_metrics_and_probes(stack: Any, topic_factory: Any, tmp_path: Path) -> None:
    from sink.service.sink import Sink

    topic = await topic_factory(partitions=1)
    db, group, port = unique("obs"), unique("g"), free_port()
    ev = MongoEvents(db, "users")
    keys = [Oid(f"{i:024x}") for i in range(1, 31)]
    inserts = [ev.insert({"_id": k, "name": f"n{i}", "age": i}) for i, k in enumerate(keys)]
    await produce(stack.bootstrap_servers, topic, [*inserts, (b"{}", b"\xff not json")])

    settings = load_settings(_config(tmp_path, stack, topic, group, port))
    logs.clear_secrets()
    sink = Sink(settings)
    lags: list[float | None] = []
    after_commit = sink.commits.on_committed
    assert after_commit is not None

    def recording(offsets: Any) -> None:  # the lag gauge after every Kafka commit
        after_commit(offsets)
        lags.append(sink.metrics.registry.get_sample_value(
            "cartridge_warp_consumer_lag", {"topic": topic, "partition": "0"}))

    sink.commits.on_committed = recording
    # Hold the consumer's start (so the group's assignment) until the probe has been seen
    # answering 503 with PostgreSQL connected.
    gate = asyncio.Event()
    start_consumer = sink._start_consumer

    async def gated_start() -> None:
        await gate.wait()
        await start_consumer()

    sink._start_consumer = gated_start  # type: ignore[method-assign]
    task = asyncio.create_task(sink.run())
    try:
        async def waiting() -> tuple[int, str] | None:
            if task.done():
                task.result()
            try:
                got = await http_get(port, "/readyz")
            except OSError:
                return None
            assert got[0] == 503, got
            return got if "assignment" in got[1] else None  # PostgreSQL is connected

        _, reason = await _wait_for(waiting, "/readyz waiting for the assignment")
        assert reason == "waiting for a partition assignment\n"
        assert (await http_get(port, "/healthz"))[0] == 200
        assert value((await http_get(port, "/metrics"))[1], "cartridge_warp_ready") == 0
        gate.set()

        async def ready() -> bool:
            return await http_get(port, "/readyz") == (200, "ready: 1 partitions\n")

        await _wait_for(ready, "/readyz 200 after the assignment")
        assert sink.assignment and sink.owner is not None and sink.owner.ever_assigned

        async def counted(insert: int, update: int = 0, delete: int = 0) -> str | None:
            status, text = await http_get(port, "/metrics")
            got = [value(text, "cartridge_warp_records_processed_total", schema=db,
                         table="users", operation=op) or 0 for op in ("insert", "update",
                                                                       "delete")]
            lag = value(text, "cartridge_warp_consumer_lag", topic=topic, partition="0")
            buffered = value(text, "cartridge_warp_buffered_bytes")
            done = status == 200 and got == [insert, update, delete] and lag == buffered == 0
            return text if done else None

        await _wait_for(lambda: counted(30), "30 inserts counted, lag 0, nothing buffered")
        assert lags and lags[0] is not None and lags[0] > 0, lags  # it was behind...
        assert lags[-1] == 0  # ...and caught up

        updates = [ev.update(k, {"age": 100 + i}) for i, k in enumerate(keys[:12])]
        deletes = [ev.delete(k) for k in keys[20:25]]
        await produce(stack.bootstrap_servers, topic, updates + deletes)
        text = await _wait_for(lambda: counted(30, 12, 5), "updates and deletes counted")

        conn = await asyncpg.connect(stack.pg_dsn)
        try:
            row = await conn.fetchrow(
                f'SELECT count(*) AS n, sum("_cartridge_version") AS versions, '
                f'count(*) FILTER (WHERE is_deleted) AS deleted FROM "{db}".users')
        finally:
            await conn.close()
        assert row is not None
        assert (row["n"], row["versions"], row["deleted"]) == (30, 30 + 12 + 5, 5)

        assert_families(text)
        database = stack.pg_dsn.rsplit("/", 1)[-1]
        assert (value(text, "cartridge_warp_connection_pool_size", database=database) or 0) >= 1
        assert value(text, "cartridge_warp_connection_pool_idle_connections",
                     database=database) is not None
        assert value(text, "cartridge_warp_connection_pool_active_connections",
                     database=database) is not None
        assert value(text, "cartridge_warp_batch_processing_duration_seconds_count",
                     schema=db, table="users") >= 1  # type: ignore[operator]
        assert value(text, "cartridge_warp_dlq_records_total", topic=topic) == 1
        errors = [s for s in samples(text) if s.name == "cartridge_warp_errors_total"]
        assert sum(s.value for s in errors) == 1 and errors[0].labels["error_type"], errors
        assert value(text, "cartridge_warp_buffered_bytes") == 0
        assert value(text, "cartridge_warp_ready") == 1
        since = value(text, "cartridge_warp_seconds_since_last_commit")
        assert since is not None and 0 <= since < 30
        assert (await http_get(port, "/healthz"))[0] == 200
        assert await http_get(port, "/readyz") == (200, "ready: 1 partitions\n")
    finally:
        assert await _stop(sink, task) == 0
    with pytest.raises(OSError):
        await http_get(port, "/healthz")  # the server stops with the service


@pytest.mark.integration
async def test_readyz_stays_503_while_the_assignment_is_set_up(
    stack: Any, topic_factory: Any, tmp_path: Path
) -> None:
    from sink.service.sink import Sink

    topic = await topic_factory(partitions=1)
    port = free_port()
    settings = load_settings(_config(tmp_path, stack, topic, unique("g"), port))
    logs.clear_secrets()
    sink = Sink(settings)
    hold = asyncio.Event()
    loading = asyncio.Event()
    load_offsets = sink.pg.load_offsets

    async def slow_load_offsets(*args: Any, **kwargs: Any) -> Any:
        loading.set()
        await hold.wait()
        return await load_offsets(*args, **kwargs)

    sink.pg.load_offsets = slow_load_offsets  # type: ignore[method-assign]
    task = asyncio.create_task(sink.run())
    try:
        await asyncio.wait_for(loading.wait(), 60)
        during = await http_get(port, "/readyz")
        hold.set()

        async def ready() -> bool:
            return await http_get(port, "/readyz") == (200, "ready: 1 partitions\n")

        await _wait_for(ready, "/readyz 200 after the assignment")
        assert during[0] == 503, during
    finally:
        hold.set()
        await _stop(sink, task)


@pytest.mark.integration
async def test_records_fetched_while_the_assignment_is_set_up_are_not_lost(
    stack: Any, topic_factory: Any, tmp_path: Path
) -> None:
    from sink.service.sink import Sink

    topic = await topic_factory(partitions=1)
    db, port = unique("obs"), free_port()
    ev = MongoEvents(db, "users")
    await produce(stack.bootstrap_servers, topic,
                  [ev.insert({"_id": Oid(f"{i:024x}"), "n": i}) for i in range(1, 11)])
    settings = load_settings(_config(tmp_path, stack, topic, unique("g"), port))
    logs.clear_secrets()
    sink = Sink(settings)
    load_offsets = sink.pg.load_offsets

    async def slow_load_offsets(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(2)  # PostgreSQL slow to answer while the fetcher runs
        return await load_offsets(*args, **kwargs)

    sink.pg.load_offsets = slow_load_offsets  # type: ignore[method-assign]
    task = asyncio.create_task(sink.run())
    try:
        async def applied() -> bool:
            got = sink.metrics.registry.get_sample_value(
                "cartridge_warp_records_processed_total",
                {"schema": db, "table": "users", "operation": "insert"})
            return got == 10

        await _wait_for(applied, "the 10 inserts applied", within=8)
    finally:
        await _stop(sink, task)
