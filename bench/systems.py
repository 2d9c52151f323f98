"""The systems of the benchmark (``bench/run.py``), how each is run and measured:

* **ours**: ``warp-sink run --config F --until-caught-up`` as a subprocess with default
  settings; progress sampled from ``kafka_offsets`` for the steady-state rate; its final
  state read back (:meth:`Systems.ours`, :meth:`Systems.ours_state`); also as a service for
  the latency run (:meth:`Systems.latency`) and under the profilers
  (:meth:`Systems.profile`, ``bench/profile_ours.py``);
* the two **ceilings**, one process each (``bench/ceilings.py``, :meth:`Systems.ceiling`);
* the **peers**: Quix Streams in its own venv (:func:`ensure_quix`, :meth:`Systems.quix`) and
  Kafka Connect with the Debezium JDBC sink (:meth:`Systems.connect`, ``bench/peers/``),
  timed until the marker row of every partition is in their table.

What each scenario feeds them and expects back is ``bench/scenarios.py``; the measuring of
a process itself is ``bench/measure.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from measure import BENCH, ROOT, Measured, free_port, log, run_process, spawn, steady_rate, tail

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import loadgen
from peers import connect as connect_peer

from sink.stack.local import StackInfo, create_topic

VENV_BIN = Path(sys.executable).parent
QUIX_VENV = ROOT / ".warp/bench-peers/quix-venv"
QUIX_REQS = ["quixstreams==3.28.1", "psycopg2-binary==2.9.13"]


class Systems:
    """Runs each system on the bench's stack and measures it (one system at a time)."""

    def __init__(self, args: argparse.Namespace, info: StackInfo, out: Path) -> None:
        self.args = args
        self.info = info
        self.out = out  # per-run work directory (configs, logs)
        self.run_id = time.strftime("%H%M%S")
        self.pool: asyncpg.Pool | None = None
        self.registry: Any = None
        self.avro_note: str | None = None
        self.peer_notes: dict[str, str] = {}

    async def pg(self) -> asyncpg.Pool:
        if self.pool is None:
            self.pool = await asyncpg.create_pool(self.info.pg_dsn, min_size=1, max_size=2)
        return self.pool

    async def fetch(self, sql: str, *a: Any) -> list[asyncpg.Record]:
        pool = await self.pg()
        try:
            return list(await pool.fetch(sql, *a))
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError,
                asyncpg.UndefinedColumnError):
            return []

    async def checkpoint(self) -> None:
        """Before a timed run: what the previous run left for PostgreSQL to do in the
        background is done now, untimed. Without the VACUUM, autovacuum of the table the
        previous system had just written (1.2M rows) ran during the next system's run: the
        Avro run, which follows ours on JSON, lost up to 10 % to it."""
        pool = await self.pg()
        await pool.execute("VACUUM (ANALYZE)")
        await pool.execute("CHECKPOINT")

    # ours ---------------------------------------------------------------------------

    def ours_config(self, name: str, topic: str, group: str, *, schema: str | None = None,
                    collection: str = "", avro: bool = False, log_level: str = "") -> Path:
        lines = ["source:", f'  bootstrap_servers: "{self.info.bootstrap_servers}"',
                 f'  topics: ["{topic}"]', f'  group_id: "{group}"']
        if avro:
            lines += ['  key_format: "avro"', '  value_format: "avro"',
                      f'  schema_registry_url: "{self.registry.url}"']
        lines += ["destination:", '  type: "postgresql"',
                  f'  connection_string: "{self.info.pg_dsn}"',
                  "observability:", f"  metrics_port: {free_port()}"]
        if log_level:
            lines.append(f'  log_level: "{log_level}"')
        if schema:
            lines += ["mapping:", "  overrides:",
                      f'    "{loadgen.DB}.{collection}": "{schema}.{collection}"']
        path = self.out / f"{name}.yaml"
        path.write_text("\n".join(lines) + "\n")
        return path

    async def ours(self, name: str, topic: str, group: str, events: int, *,
                   schema: str | None = None, collection: str = "",
                   avro: bool = False, workers: int = 1,
                   watch: Callable[[int], None] | None = None) -> Measured:
        cfg = self.ours_config(name, topic, group, schema=schema, collection=collection,
                               avro=avro)
        samples: list[tuple[float, int]] = []

        async def sample(now: float) -> None:
            rows = await self.fetch("SELECT coalesce(sum(next_offset), 0)::bigint AS n FROM "
                                    "cartridge_warp_metadata.kafka_offsets WHERE group_id = $1",
                                    group)
            if rows:
                samples.append((now, int(rows[0]["n"])))

        m = Measured("ours" + (" (avro)" if avro else ""), events)
        cmd = [str(VENV_BIN / "warp-sink"), "run", "--config", str(cfg), "--until-caught-up"]
        if workers != 1:
            cmd += ["--workers", str(workers)]
        m.seconds, m.exit, m.peak_rss_mb, m.cpu_s, m.note = await run_process(
            cmd, self.out / f"{name}.log", sample=sample, watch=watch)
        if m.seconds:
            m.rate = events / m.seconds
            m.steady = steady_rate(samples, events)
        return m

    async def ours_state(self, schema: str, collection: str) -> dict[str, Any]:
        has_metadata = await self.fetch(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND "
            "table_name = $2 AND column_name = 'metadata'", schema, collection)
        upgraded = ("count(*) FILTER (WHERE NOT is_deleted AND metadata->>'plan' = 'upgraded')"
                    if has_metadata else "0")
        rows = await self.fetch(
            f'SELECT count(*) FILTER (WHERE NOT is_deleted) AS live, '
            f'coalesce(sum(seq) FILTER (WHERE NOT is_deleted), 0)::bigint AS sum_seq, '
            f'{upgraded} AS upgraded FROM "{schema}"."{collection}"')
        return dict(rows[0]) if rows else {}

    # peers --------------------------------------------------------------------------

    def markers_done(self, table: str, column: str, oids: list[str]) -> Callable[
            [], Awaitable[bool]]:
        async def done() -> bool:
            rows = await self.fetch(f'SELECT count(*) AS n FROM public."{table}" '
                                    f'WHERE "{column}" = ANY($1::text[])', oids)
            return bool(rows) and rows[0]["n"] >= len(oids)
        return done

    async def peer_state(self, table: str) -> dict[str, Any]:
        cols = {r["column_name"] for r in await self.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = $1", table)}
        if not cols:
            return {}
        if "metadata_plan" in cols:
            upgraded = "count(*) FILTER (WHERE metadata_plan = 'upgraded')"
        elif "metadata" in cols:
            upgraded = "count(*) FILTER (WHERE metadata->>'plan' = 'upgraded')"
        else:
            upgraded = "0"
        rows = await self.fetch(f'SELECT count(*) AS live, coalesce(sum(seq), 0)::bigint AS '
                                f'sum_seq, {upgraded} AS upgraded FROM public."{table}"')
        state = dict(rows[0]) if rows else {}
        state["columns"] = sorted(cols)
        return state

    async def quix(self, scen: str, phase: str, topic: str, events: int,
                   markers: list[str]) -> Measured:
        table = f"peer_quix_{scen}"
        cmd = [str(QUIX_VENV / "bin/python"), str(BENCH / "peers/quix_peer.py"),
               "--bootstrap", self.info.bootstrap_servers, "--topic", topic,
               "--group", f"quix-{self.run_id}-{scen}-{phase}", "--table", table,
               "--dsn", self.info.pg_dsn]
        m = Measured("quix", events)
        m.seconds, m.exit, m.peak_rss_mb, m.cpu_s, m.note = await run_process(
            cmd, self.out / f"quix-{scen}-{phase}.log",
            done=self.markers_done(table, "_id", markers), limit_s=self.args.peer_timeout)
        if m.note:
            m.note += f" (log: {tail(self.out / f'quix-{scen}-{phase}.log', 2)})"
        if m.seconds:
            m.rate = events / m.seconds
        return m

    async def connect(self, scen: str, phase: str, topic: str, events: int,
                      markers: list[str]) -> Measured:
        table = f"peer_jdbc_{scen}"
        name = f"jdbc-{self.run_id}-{scen}-{phase}"
        work = self.out / name
        cmd = connect_peer.command(work, self.info.bootstrap_servers, name, topic, table,
                                   self.info.pg_dsn)
        rest = connect_peer.rest_url(work)

        async def failed() -> str | None:
            status = await asyncio.to_thread(http_json, f"{rest}/connectors/{name}/status")
            if not isinstance(status, dict):
                return None
            for task in status.get("tasks", []):
                if task.get("state") == "FAILED":
                    trace = task.get("trace", "").splitlines()
                    causes = [ln.strip() for ln in trace if ln.startswith("Caused by")]
                    return "task FAILED: " + (causes[-1] if causes else trace[0])[:400]
            return None

        m = Measured("connect", events)
        m.seconds, m.exit, m.peak_rss_mb, m.cpu_s, m.note = await run_process(
            cmd, self.out / f"{name}.log", done=self.markers_done(table, "id", markers),
            failed=failed, limit_s=self.args.peer_timeout)
        if m.seconds:
            m.rate = events / m.seconds
        return m

    # ceilings -----------------------------------------------------------------------

    async def ceiling(self, kind: str, argv: list[str], name: str) -> Measured:
        logf = self.out / f"{name}.log"
        cmd = [sys.executable, str(BENCH / "ceilings.py"), kind, *argv]
        m = Measured(f"ceiling {kind}")
        _, m.exit, m.peak_rss_mb, m.cpu_s, m.note = await run_process(cmd, logf)
        try:
            result = json.loads(logf.read_text().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            m.note = m.note or f"no result: {tail(logf, 2)}"
            return m
        m.events, m.seconds = result["events"], result["seconds"]
        m.rate = m.events / m.seconds
        m.state_ok = result.get("state_ok")
        m.note = ""
        return m

    # latency ------------------------------------------------------------------------

    async def latency(self) -> dict[str, Any]:
        a = self.args
        topic = f"bench.{self.run_id}.latency.dbz"
        await create_topic(self.info.bootstrap_servers, topic, loadgen.PARTITIONS)
        group = f"ours-{self.run_id}-latency"
        cfg = self.ours_config("ours-latency", topic, group)
        port = int(cfg.read_text().split("metrics_port: ")[1].split()[0])
        logf = self.out / "ours-latency.log"
        proc = spawn([str(VENV_BIN / "warp-sink"), "run", "--config", str(cfg)], logf)
        try:
            deadline = time.monotonic() + 60
            while not _ready(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    return {"error": f"sink not ready: {tail(logf, 3)}"}
                await asyncio.sleep(0.2)
            log(f"latency: producing {a.latency_rate} events/s for {a.latency_seconds} s")
            started = time.monotonic()
            sent = await loadgen.produce_at_rate(self.info.bootstrap_servers, topic,
                                                 a.latency_rate, a.latency_seconds)
            produce_s = time.monotonic() - started
            deadline = time.monotonic() + 120
            while True:
                rows = await self.fetch('SELECT count(*) AS n FROM "bench"."latency"')
                if rows and rows[0]["n"] >= sent:
                    break
                if time.monotonic() > deadline:
                    return {"error": f"only {rows[0]['n'] if rows else 0} of {sent} rows"}
                await asyncio.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        rows = await self.fetch(
            'SELECT extract(epoch FROM _cartridge_updated_at) * 1000 - produced_at AS ms '
            'FROM "bench"."latency" ORDER BY 1')
        lat = [float(r["ms"]) for r in rows]

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))]

        return {"events": sent, "rate": a.latency_rate, "produce_seconds": produce_s,
                "achieved_rate": sent / produce_s, "p50_ms": pct(0.50), "p90_ms": pct(0.90),
                "p99_ms": pct(0.99), "max_ms": lat[-1]}

    # profiles -----------------------------------------------------------------------

    async def profile(self, name: str, topic: str, collection: str, *,
                      setup: str | None = None, setup_messages: int = 0) -> dict[str, Any]:
        """Both profiles of ours on ``topic``, each into a fresh table that first gets the
        scenario's ``setup`` phase (untimed), so updates meet the rows they update."""
        out: dict[str, Any] = {}
        for mode in ("pyinstrument", "py-spy"):
            schema = f"bench_prof_{mode.replace('-', '')}"
            pool = await self.pg()
            await pool.execute(f'DROP TABLE IF EXISTS "{schema}"."{collection}"')
            if setup is not None:
                s = await self.ours(f"profile-{name}-{mode}-setup", setup,
                                    f"profile-{self.run_id}-{name}-{mode}-setup",
                                    setup_messages, schema=schema, collection=collection)
                self.check_setup(f"ours ({schema})", s)
            cfg = self.ours_config(f"profile-{name}-{mode}", topic,
                                   f"profile-{self.run_id}-{name}-{mode}",
                                   schema=schema, collection=collection,
                                   # py-spy's idle split reads the debug `batch processed` lines
                                   log_level="debug" if mode == "py-spy" else "")
            pdir = self.out / f"profile-{name}"
            cmd = [sys.executable, str(BENCH / "profile_ours.py"), "--config", str(cfg),
                   "--out", str(pdir)] + (["--py-spy"] if mode == "py-spy" else [])
            logf = self.out / f"profile-{name}-{mode}.log"
            await run_process(cmd, logf)
            try:
                out[mode] = json.loads(logf.read_text().strip().splitlines()[-1])
            except (OSError, ValueError, IndexError):
                out[mode] = {"error": tail(logf, 3)}
        tree = self.out / f"profile-{name}/pyinstrument.txt"
        if tree.is_file():
            out["tree"] = tree.read_text()
        return out


def http_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


# --- setup ------------------------------------------------------------------------------


def ensure_quix() -> str | None:
    """The Quix Streams venv (its own: quixstreams pins pydantic below ours); None when
    ready, else why not."""
    py = QUIX_VENV / "bin/python"
    probe = [str(py), "-c", "import quixstreams, psycopg2"]
    if py.is_file() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return None
    log("creating the Quix Streams venv (.warp/bench-peers/quix-venv)")
    subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", *QUIX_REQS],
                          capture_output=True, text=True, check=False, timeout=1200)
    if proc.returncode != 0:
        return f"pip install {' '.join(QUIX_REQS)} failed: {proc.stderr[-300:]}"
    return None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "machine": f"{os.cpu_count()} cores, "
           f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"}
    with contextlib.suppress(Exception):
        out["quixstreams"] = subprocess.run(
            [str(QUIX_VENV / "bin/python"), "-c", "import quixstreams;print(quixstreams."
             "__version__)"], capture_output=True, text=True, check=False).stdout.strip()
    pom = (BENCH / "peers/pom.xml").read_text()
    for prop in ("kafka.version", "debezium.version", "pgjdbc.version"):
        out[prop] = pom.split(f"<{prop}>")[1].split("<")[0]
    return out
