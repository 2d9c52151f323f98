"""End-to-end benchmark: our sink against two ceilings and two peers, on the same data.

    python bench/run.py [--scale 1.0] [--scenarios a,b,c,d,e] [--peers quix,connect]
                        [--avro] [--no-latency] [--no-profile] [--readme] [--reuse-stack]

``make bench`` runs it at full scale with ``--avro --readme``. It starts its own local
stack in ``.warp/bench-stack`` (purged first unless ``--reuse-stack``), never anyone
else's servers. Per scenario (see ``bench/loadgen.py``):

1. the load generator writes the setup phase (keys that the timed phase updates or
   deletes) and the timed phase to Kafka: the Debezium topic, the plain-JSON copy for Quix,
   the schema-wrapped copy for Kafka Connect, the Avro copy with ``--avro``;
2. every system loads the setup phase, untimed, into its own table;
3. timed, one system at a time on the otherwise idle stack:
   * **ours**: ``warp-sink run --config F --until-caught-up`` as a subprocess with default
     settings (metrics on a free port); wall time from spawn to exit; CPU seconds from
     ``wait4``'s rusage; peak RSS = the process's ``VmHWM`` (polled every 20 ms);
     steady-state rate from ``kafka_offsets`` sampled every 0.5 s (slope between 10 % and
     90 % of the messages);
   * **ceiling pg** and **ceiling decode** (``bench/ceilings.py``);
   * **quix** and **connect** peers (``bench/peers/``): wall time from spawn until the
     marker row of every partition is visible in their table, then SIGTERM;
4. every table's final state is checked against the expected one (live rows, ``sum(seq)``,
   and for partial updates the nested ``metadata.plan``); a peer whose state is wrong gets
   no ratio, the reason is reported.

Then the latency run (2,000 events/s for 30 s while our sink runs as a service) and the
profiles of scenarios a and c (``bench/profile_ours.py``). Output: tables on stdout,
``bench/results/<date>[-scaleX].json`` and ``.png``, and with ``--readme`` the tables in
``bench/README.md`` between the ``bench:results`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import loadgen  # noqa: E402
from peers import connect as connect_peer  # noqa: E402

from sink.config.model import DEFAULT_FLUSH_RECORDS  # noqa: E402
from sink.stack.local import LocalStack, StackInfo, create_topic  # noqa: E402

VENV_BIN = Path(sys.executable).parent
QUIX_VENV = ROOT / ".warp/bench-peers/quix-venv"
QUIX_REQS = ["quixstreams==3.28.1", "psycopg2-binary==2.9.13"]
TARGETS = {"a": 30_000, "b": 20_000, "c": 5_000, "d": 10_000, "e": 20_000}
OURS_SCHEMA = loadgen.DB


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- measuring a process -----------------------------------------------------------------


@dataclass
class Measured:
    system: str
    events: int = 0
    seconds: float | None = None
    rate: float | None = None
    steady: float | None = None
    peak_rss_mb: float | None = None
    cpu_s: float | None = None
    state_ok: bool | None = None
    state: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    exit: int | None = None


def spawn(cmd: list[str], logfile: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session, output appended to ``logfile``."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                                start_new_session=True)


def peak_rss_kb(pid: int) -> int:
    """``VmHWM`` of a live process: the peak RSS of its current image. (``wait4``'s
    ``ru_maxrss`` cannot be used: Linux carries the forking parent's high-water mark
    across ``exec`` into the child's.)"""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def reap(pid: int, *, block: bool) -> tuple[int, int, Any]:
    """``os.wait4``: (pid or 0 while running, status, rusage of the child)."""
    return os.wait4(pid, 0 if block else os.WNOHANG)


async def run_process(
    cmd: list[str], logfile: Path, *, done: Callable[[], Awaitable[bool]] | None = None,
    failed: Callable[[], Awaitable[str | None]] | None = None,
    sample: Callable[[float], Awaitable[None]] | None = None, limit_s: float = 3600,
    env: dict[str, str] | None = None,
) -> tuple[float | None, int | None, float | None, float | None, str]:
    """Spawn ``cmd``; return (seconds, exit code, peak RSS MB, CPU s, note).

    Without ``done``: seconds = spawn → exit. With ``done``: seconds = spawn → ``done()``
    true, then SIGTERM and reap (rusage covers the whole life)."""
    t0 = time.perf_counter()
    proc = spawn(cmd, logfile, env)
    seconds: float | None = None
    note = ""
    stop_at: float | None = None  # when we sent SIGTERM
    next_sample = next_check = 0.0
    hwm = 0
    try:
        while True:
            hwm = max(hwm, peak_rss_kb(proc.pid))
            pid, status, rusage = reap(proc.pid, block=False)
            now = time.perf_counter() - t0
            if pid:
                code = os.waitstatus_to_exitcode(status)
                if stop_at is None and done is None:
                    seconds = now
                    if code != 0:
                        note, seconds = f"exit {code}: {tail(logfile, 1)}", None
                elif stop_at is None:
                    note = f"exited (code {code}) before it was done: {tail(logfile, 1)}"
                break
            if stop_at is not None:
                if now - stop_at > 60:
                    proc.kill()
                await asyncio.sleep(0.1)
                continue
            if sample is not None and now >= next_sample:
                next_sample = now + 0.5
                await sample(now)
            if now >= next_check:
                next_check = now + 0.2
                if done is not None and await done():
                    seconds = time.perf_counter() - t0
                elif failed is not None and (why := await failed()):
                    note = why
                elif now > limit_s:
                    note = f"no result within {limit_s:.0f} s"
                if seconds is not None or note:
                    stop_at = now
                    proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.02)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        reap(proc.pid, block=True)
        raise
    rss = hwm / 1024 if hwm else None
    cpu = rusage.ru_utime + rusage.ru_stime
    return seconds, code, rss, cpu, note


def tail(path: Path, n: int = 5) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip()[:300] for line in lines[-n:])


def steady_rate(samples: list[tuple[float, int]], total: int) -> float | None:
    """Least-squares slope of progress between 10 % and 90 % of ``total``."""
    pts = [(t, n) for t, n in samples if 0.1 * total <= n <= 0.9 * total]
    if len(pts) < 3:
        return None
    mt = sum(t for t, _ in pts) / len(pts)
    mn = sum(n for _, n in pts) / len(pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    return sum((t - mt) * (n - mn) for t, n in pts) / den if den else None


# --- the bench --------------------------------------------------------------------------


class Bench:
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

    # ours ---------------------------------------------------------------------------

    def ours_config(self, name: str, topic: str, group: str, *, schema: str | None = None,
                    collection: str = "", avro: bool = False) -> Path:
        lines = ["source:", f'  bootstrap_servers: "{self.info.bootstrap_servers}"',
                 f'  topics: ["{topic}"]', f'  group_id: "{group}"']
        if avro:
            lines += ['  key_format: "avro"', '  value_format: "avro"',
                      f'  schema_registry_url: "{self.registry.url}"']
        lines += ["destination:", '  type: "postgresql"',
                  f'  connection_string: "{self.info.pg_dsn}"',
                  "observability:", f"  metrics_port: {free_port()}"]
        if schema:
            lines += ["mapping:", "  overrides:",
                      f'    "{loadgen.DB}.{collection}": "{schema}.{collection}"']
        path = self.out / f"{name}.yaml"
        path.write_text("\n".join(lines) + "\n")
        return path

    async def ours(self, name: str, topic: str, group: str, events: int, *,
                   schema: str | None = None, collection: str = "",
                   avro: bool = False) -> Measured:
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
        m.seconds, m.exit, m.peak_rss_mb, m.cpu_s, m.note = await run_process(
            cmd, self.out / f"{name}.log", sample=sample)
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

    # one scenario -------------------------------------------------------------------

    async def scenario(self, name: str) -> dict[str, Any]:
        a = self.args
        plan = loadgen.make_plan(name, a.scale, a.seed)
        sc = plan.scenario
        copies = []
        if "quix" in a.peers:
            copies.append("plain")
        if "connect" in a.peers:
            copies.append("dbzs")
        if a.avro and self.registry is not None:
            copies.append("avro")
        await self.drop_tables(name, sc.collection)
        log(f"scenario {name} ({sc.title}): loading {plan.n_preload} setup + "
            f"{plan.n_changes} timed changes, copies {copies}")
        loaded = await loadgen.load(self.info.bootstrap_servers, plan, self.run_id,
                                    copies=copies, registry=self.registry)
        ex = loaded.expected
        log(f"  loaded in {loaded.seconds:.1f} s: {ex.messages} timed messages, expected "
            f"{ex.live} live rows")
        setup, timed = loaded.setup, loaded.timed
        res: dict[str, Any] = {"scenario": name, "title": sc.title, "plan": asdict(plan)
                               | {"scenario": name}, "expected": asdict(ex), "systems": {}}
        m1, m2 = loadgen.markers(plan, 1), loadgen.markers(plan, 2)
        avro = "avro" in loaded.copies
        # --- setup phases, untimed
        if setup is not None:
            log("  setup phase (untimed): ours" + (", ours (avro)" if avro else ""))
            s = await self.ours(f"ours-{name}-setup", setup.dbz, f"ours-{self.run_id}-{name}"
                                "-setup", ex.setup_messages)
            self.check_setup("ours", s)
            if avro:
                s = await self.ours(f"ours-avro-{name}-setup", setup.avro,
                                    f"ours-avro-{self.run_id}-{name}-setup",
                                    ex.setup_messages, schema="bench_avro",
                                    collection=sc.collection, avro=True)
                self.check_setup("ours (avro)", s)
            if "quix" in a.peers:
                log("  setup phase (untimed): quix")
                self.check_setup("quix", await self.quix(name, "setup", setup.plain,
                                                         ex.setup_messages, m1))
            if "connect" in a.peers:
                log("  setup phase (untimed): connect")
                self.check_setup("connect", await self.connect(name, "setup", setup.dbzs,
                                                               ex.setup_messages, m1))
        # --- timed
        systems: dict[str, Measured] = {}
        await self.checkpoint()
        log("  timed: ours")
        m = await self.ours(f"ours-{name}-timed", timed.dbz, f"ours-{self.run_id}-{name}-timed",
                            ex.messages)
        m.state = await self.ours_state(OURS_SCHEMA, sc.collection)
        m.state_ok = self.state_ok(m.state, ex)
        systems["ours"] = m
        log(f"    {fmt_rate(m.rate)} ev/s in {fmt(m.seconds)} s, steady {fmt_rate(m.steady)}, "
            f"RSS {fmt(m.peak_rss_mb)} MB, CPU {fmt(m.cpu_s)} s, state ok: {m.state_ok} "
            f"{m.note}")
        if avro:
            await self.checkpoint()
            log("  timed: ours (avro)")
            m = await self.ours(f"ours-avro-{name}-timed", timed.avro,
                                f"ours-avro-{self.run_id}-{name}-timed", ex.messages,
                                schema="bench_avro", collection=sc.collection, avro=True)
            m.state = await self.ours_state("bench_avro", sc.collection)
            m.state_ok = self.state_ok(m.state, ex)
            systems["ours (avro)"] = m
            log(f"    {fmt_rate(m.rate)} ev/s, state ok: {m.state_ok} {m.note}")
        await self.checkpoint()
        log("  timed: ceiling pg")
        systems["ceiling pg"] = await self.ceiling(
            "pg", ["--scenario", name, "--scale", str(a.scale), "--seed", str(a.seed),
                   "--dsn", self.info.pg_dsn, "--batch", str(a.batch)], f"ceiling-pg-{name}")
        log(f"    {fmt_rate(systems['ceiling pg'].rate)} ev/s {systems['ceiling pg'].note}")
        log("  timed: ceiling decode")
        systems["ceiling decode"] = await self.ceiling(
            "decode", ["--topic", timed.dbz, "--bootstrap", self.info.bootstrap_servers],
            f"ceiling-decode-{name}")
        log(f"    {fmt_rate(systems['ceiling decode'].rate)} ev/s "
            f"{systems['ceiling decode'].note}")
        if avro:
            c = await self.ceiling(
                "decode", ["--topic", timed.avro, "--bootstrap", self.info.bootstrap_servers,
                           "--format", "avro", "--registry", self.registry.url],
                f"ceiling-decode-avro-{name}")
            c.system = "ceiling decode (avro)"
            systems["ceiling decode (avro)"] = c
            log(f"    avro decode: {fmt_rate(c.rate)} ev/s {c.note}")
        if "quix" in a.peers:
            await self.checkpoint()
            log("  timed: quix")
            m = await self.quix(name, "timed", timed.plain, ex.messages, m2)
            m.state = await self.peer_state(f"peer_quix_{name}")
            m.state_ok, why = self.peer_ok(m, ex, "quix")
            m.note = "; ".join(x for x in (m.note, why) if x)
            systems["quix"] = m
            log(f"    {fmt_rate(m.rate)} ev/s, state ok: {m.state_ok} {m.note}")
        if "connect" in a.peers:
            await self.checkpoint()
            log("  timed: connect")
            m = await self.connect(name, "timed", timed.dbzs, ex.messages, m2)
            m.state = await self.peer_state(f"peer_jdbc_{name}")
            m.state_ok, why = self.peer_ok(m, ex, "connect")
            m.note = "; ".join(x for x in (m.note, why) if x)
            systems["connect"] = m
            log(f"    {fmt_rate(m.rate)} ev/s, state ok: {m.state_ok} {m.note}")
        res["systems"] = {k: asdict(v) for k, v in systems.items()}
        res["avro_note"] = loaded.avro_note
        res["topics"] = asdict(timed)
        return res

    async def drop_tables(self, name: str, collection: str) -> None:
        """Every table this scenario writes, from an earlier run on a reused stack."""
        pool = await self.pg()
        for schema in (OURS_SCHEMA, "bench_avro", "bench_prof_pyinstrument", "bench_prof_pyspy"):
            await pool.execute(f'DROP TABLE IF EXISTS "{schema}"."{collection}"')
        for table in (f"peer_quix_{name}", f"peer_jdbc_{name}"):
            await pool.execute(f'DROP TABLE IF EXISTS public."{table}"')

    def check_setup(self, who: str, m: Measured) -> None:
        if m.seconds is None:
            log(f"    setup of {who} did not complete: {m.note}")
        else:
            log(f"    {who}: {m.seconds:.1f} s")

    @staticmethod
    def state_ok(state: dict[str, Any], ex: loadgen.Expected) -> bool:
        return bool(state) and (state.get("live"), state.get("sum_seq"),
                                state.get("upgraded")) == (ex.live, ex.sum_seq, ex.upgraded)

    def peer_ok(self, m: Measured, ex: loadgen.Expected, peer: str) -> tuple[bool, str]:
        st = m.state
        if m.seconds is None:
            return False, ""
        if not st:
            return False, "no table"
        why = []
        if st.get("live") != ex.live:
            why.append(f"{st.get('live')} rows, expected {ex.live}"
                       + (" (deletes not applied)" if st.get("live", 0) > ex.live
                          and ex.live < ex.messages else ""))
        if st.get("sum_seq") != ex.sum_seq:
            why.append("sum(seq) differs from the expected final state")
        if st.get("upgraded") != ex.upgraded:
            col = "metadata.plan" in st.get("columns", [])
            why.append(f"nested metadata.plan set on {st.get('upgraded')} rows, expected "
                       f"{ex.upgraded}" + (" (the dotted path became a column named "
                                           "\"metadata.plan\")" if col else ""))
        return not why, "; ".join(why)

    async def checkpoint(self) -> None:
        pool = await self.pg()
        await pool.execute("CHECKPOINT")

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

    async def profile(self, name: str, topic: str, collection: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mode in ("pyinstrument", "py-spy"):
            cfg = self.ours_config(f"profile-{name}-{mode}", topic,
                                   f"profile-{self.run_id}-{name}-{mode}",
                                   schema=f"bench_prof_{mode.replace('-', '')}",
                                   collection=collection)
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


# --- reporting --------------------------------------------------------------------------


def fmt(v: float | None, nd: int = 1) -> str:
    return "—" if v is None else f"{v:,.{nd}f}"


def fmt_rate(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return "—" if not a or not b else f"{a / b:.2f}x"


def tables(results: dict[str, Any]) -> str:
    """The Markdown tables of one run."""
    lines = []
    lines.append("| scenario | ours events/s (steady) | target | ceiling pg | ceiling decode | "
                 "ours ÷ lower ceiling | ours ÷ Quix | ours ÷ Connect | peak RSS | CPU s |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    notes: list[str] = []
    for r in results["scenarios"]:
        s = r["systems"]
        ours = s["ours"]
        ceil = [s[k]["rate"] for k in ("ceiling pg", "ceiling decode") if s.get(k, {})
                .get("rate")]
        low = min(ceil) if ceil else None

        def peer(key: str, r: dict[str, Any] = r, ours: dict[str, Any] = ours) -> str:
            p = r["systems"].get(key)
            if p is None:
                return "not run"
            if not p["state_ok"]:
                mark = f"[{len(notes) + 1}]"
                notes.append(f"{mark} {r['scenario']}, {key}: "
                             f"{fmt_rate(p['rate'])} events/s measured, not comparable: "
                             f"{p['note'] or 'wrong final state'}")
                return f"n/a {mark}"
            return f"{ratio(ours['rate'], p['rate'])} ({fmt_rate(p['rate'])}/s)"

        ok = "" if ours["state_ok"] else " (state WRONG)"
        lines.append(
            f"| {r['scenario']}: {r['title']} | {fmt_rate(ours['rate'])} "
            f"({fmt_rate(ours['steady'])}){ok} | {TARGETS.get(r['scenario'], 0):,} | "
            f"{fmt_rate(s['ceiling pg']['rate'])} | {fmt_rate(s['ceiling decode']['rate'])} | "
            f"{ratio(ours['rate'], low)} | {peer('quix')} | {peer('connect')} | "
            f"{fmt(ours['peak_rss_mb'], 0)} MB | {fmt(ours['cpu_s'])} |")
    out = "\n".join(lines)
    if notes:
        out += "\n\n" + "\n".join(f"- {n}" for n in notes)
    avro_rows = [r for r in results["scenarios"] if "ours (avro)" in r["systems"]]
    if avro_rows:
        out += ("\n\nAvro (Confluent wire format, same changes):\n\n| scenario | ours (avro) "
                "events/s | ceiling decode (avro) | ours (json) |\n|---|---|---|---|\n")
        out += "\n".join(
            f"| {r['scenario']} | {fmt_rate(r['systems']['ours (avro)']['rate'])}"
            f"{'' if r['systems']['ours (avro)']['state_ok'] else ' (state WRONG)'} | "
            f"{fmt_rate(r['systems'].get('ceiling decode (avro)', {}).get('rate'))} | "
            f"{fmt_rate(r['systems']['ours']['rate'])} |" for r in avro_rows)
    elif results.get("avro_note"):
        out += f"\n\nAvro: {results['avro_note']}"
    peers = ["\n\nPeers, measured (events/s, peak RSS, CPU s):\n",
             "| scenario | Quix Streams | Kafka Connect + Debezium JDBC |", "|---|---|---|"]
    for r in results["scenarios"]:
        cells = []
        for key in ("quix", "connect"):
            p = r["systems"].get(key)
            cells.append("not run" if p is None else
                         f"{fmt_rate(p['rate'])}, {fmt(p['peak_rss_mb'], 0)} MB, "
                         f"{fmt(p['cpu_s'])} s" + ("" if p["state_ok"] else " — state wrong"))
        peers.append(f"| {r['scenario']} | {cells[0]} | {cells[1]} |")
    out += "\n".join(peers)
    lat = results.get("latency")
    if lat and "p50_ms" in lat:
        out += (f"\n\nLatency at {lat['rate']:,} events/s for {results['args']['latency_seconds']}"
                f" s ({lat['events']:,} events, achieved {lat['achieved_rate']:,.0f}/s): "
                f"p50 {lat['p50_ms']:.0f} ms, p90 {lat['p90_ms']:.0f} ms, p99 "
                f"{lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms (target p99 ≤ 500 ms).")
    elif lat:
        out += f"\n\nLatency: {lat.get('error')}"
    return out


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    systems = [("ours", "#1f77b4"), ("ours (avro)", "#9ecae1"), ("ceiling pg", "#d9d9d9"),
               ("ceiling decode", "#969696"), ("quix", "#ff7f0e"), ("connect", "#2ca02c")]
    scen = results["scenarios"]
    fig, ax = plt.subplots(figsize=(12.5, 5.4), dpi=110)
    width = 0.13
    handles: list[Any] = []
    for i, (key, color) in enumerate(systems):
        handles.append(Patch(facecolor=color, edgecolor="black", linewidth=0.4, label=key))
        for j, r in enumerate(scen):
            m = r["systems"].get(key)
            x = j + (i - (len(systems) - 1) / 2) * width
            if m is None:
                continue
            if not m.get("rate"):
                ax.text(x, 0.02, "failed", rotation=90, ha="center", va="bottom", fontsize=7,
                        color=color, transform=ax.get_xaxis_transform())
                continue
            ax.bar([x], [m["rate"]], width, color=color, edgecolor="black", linewidth=0.4,
                   hatch="" if m.get("state_ok") in (True, None) else "//")
            if key.startswith("ours"):
                ax.text(x, m["rate"] * 1.04, f"{m['rate'] / 1000:.1f}k", ha="center",
                        va="bottom", fontsize=6.5)
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//",
                         label="final state wrong"))
    ax.set_xticks(range(len(scen)))
    ax.set_xticklabels([f"{r['scenario']}: {r['title']}" for r in scen], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("events/s (log scale)")
    ax.set_title(f"cartridge-warp sink vs ceilings and peers — {results['date']} "
                 f"(scale {results['args']['scale']})", fontsize=10)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def profile_section(profiles: dict[str, Any]) -> str:
    out = []
    for name, prof in profiles.items():
        py = prof.get("pyinstrument", {})
        cats = py.get("categories_s", {})
        total = sum(cats.values()) or 1.0
        out.append(f"#### Scenario {name}\n")
        if cats:
            out.append(f"pyinstrument (wall {py.get('wall_s', 0):.1f} s, 1 ms interval; its "
                       "overhead dilates the Python parts):\n")
            out.append("| where | seconds | share |\n|---|---|---|")
            out += [f"| {k} | {v:.2f} | {v / total:.0%} |" for k, v in cats.items()]
        spy = prof.get("py-spy", {}).get("py_spy", {})
        if spy.get("shares"):
            out.append(f"\npy-spy (separate run, wall {spy['wall_s']:.1f} s, 250 Hz, main thread, "
                       f"idle included; `apply` took {spy['apply_wall_s']:.1f} s of wall time):\n")
            out.append("| where | share of wall time |\n|---|---|")
            out += [f"| {k} | {v:.0%} |" for k, v in spy["shares"].items()]
        tree = prof.get("tree", "")
        if tree:
            top = "\n".join(tree.splitlines()[:45])
            out.append(f"\nTop of the pyinstrument tree:\n\n```\n{top}\n```\n")
    return "\n".join(out)


def update_readme(text: str, marker: str) -> None:
    readme = BENCH / "README.md"
    body = readme.read_text() if readme.is_file() else ""
    start, end = f"<!-- bench:{marker}:start -->", f"<!-- bench:{marker}:end -->"
    block = f"{start}\n{text}\n{end}"
    if start in body and end in body:
        body = body[:body.index(start)] + block + body[body.index(end) + len(end):]
    else:
        body = body.rstrip() + f"\n\n{block}\n"
    readme.write_text(body)


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


async def amain(args: argparse.Namespace) -> int:
    root = args.stack_dir
    stack = LocalStack(root)
    if not args.reuse_stack:
        log(f"fresh local stack in {root}")
        stack.down(purge=True)
    info = stack.up()
    log(f"stack: kafka {info.bootstrap_servers}, postgres 127.0.0.1:{info.pg_port}")
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    tag = date + ("" if args.scale == 1.0 else f"-scale{args.scale:g}")
    out = ROOT / ".warp/bench-runs" / f"{tag}-{time.strftime('%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, info, out)
    if "quix" in args.peers and (why := ensure_quix()):
        log(f"Quix peer not run: {why}")
        bench.peer_notes["quix"] = why
        args.peers = [p for p in args.peers if p != "quix"]
    if "connect" in args.peers:
        try:
            await asyncio.to_thread(connect_peer.classpath)
        except connect_peer.ConnectUnavailable as exc:
            log(f"Kafka Connect peer not run: {exc}")
            bench.peer_notes["connect"] = str(exc)
            args.peers = [p for p in args.peers if p != "connect"]
    if args.avro:
        bench.avro_note = loadgen.avro_available()
        if bench.avro_note is None:
            from tests.schema_registry_server import RegistryServer

            bench.registry = RegistryServer()
        else:
            log(bench.avro_note)
    results: dict[str, Any] = {
        "date": date, "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: v for k, v in vars(args).items()}, "versions": versions(),
        "load_before": os.getloadavg(), "stack": {"kafka": info.bootstrap_servers},
        "avro_note": bench.avro_note, "peer_notes": bench.peer_notes, "scenarios": [],
        "workdir": str(out),
    }
    try:
        for name in args.scenarios:
            results["scenarios"].append(await bench.scenario(name))
        if args.latency:
            results["latency"] = await bench.latency()
            log(f"latency: {results['latency']}")
        if args.profile:
            results["profiles"] = {}
            for r in results["scenarios"]:
                if r["scenario"] in ("a", "c"):
                    log(f"profiling ours on scenario {r['scenario']}")
                    plan = loadgen.SCENARIOS[r["scenario"]]
                    results["profiles"][r["scenario"]] = await bench.profile(
                        r["scenario"], r["topics"]["dbz"], plan.collection)
    finally:
        if bench.pool is not None:
            await bench.pool.close()
        if bench.registry is not None:
            bench.registry.close()
    results["load_after"] = os.getloadavg()
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    resdir = BENCH / "results"
    resdir.mkdir(exist_ok=True)
    (resdir / f"{tag}.json").write_text(json.dumps(results, indent=1, default=str))
    report(results, resdir / tag, readme=args.readme)
    log(f"wrote bench/results/{tag}.json and .png; logs in {out}")
    if not args.keep_stack:
        stack.down()
        shutil.rmtree(root / "kafka" / "data", ignore_errors=True)
    return 0


def report(results: dict[str, Any], stem: Path, *, readme: bool) -> int:
    """Print the tables, write ``<stem>.png`` and, with ``readme``, the README blocks."""
    text = tables(results)
    print("\n" + text)
    chart(results, stem.with_suffix(".png"))
    if readme:
        name = stem.name
        head = (f"Run of {results['started']} (scale {results['args']['scale']}, load average "
                f"before/after {results['load_before'][0]:.1f}/{results['load_after'][0]:.1f}; "
                f"chart `bench/results/{name}.png`, raw `bench/results/{name}.json`).\n\n")
        update_readme(head + text, "results")
        if results.get("profiles"):
            update_readme(profile_section(results["profiles"]), "profile")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every scenario's size (0.05 while developing)")
    ap.add_argument("--scenarios", default="a,b,c,d,e", type=lambda s: s.split(","))
    ap.add_argument("--peers", default="quix,connect",
                    type=lambda s: [p for p in s.split(",") if p])
    ap.add_argument("--avro", action="store_true", help="also run ours on an Avro copy")
    ap.add_argument("--no-latency", dest="latency", action="store_false")
    ap.add_argument("--no-profile", dest="profile", action="store_false")
    ap.add_argument("--latency-rate", type=int, default=2000)
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=DEFAULT_FLUSH_RECORDS,
                    help="ceiling pg rows per transaction (the sink's default flush size)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--peer-timeout", type=float, default=900.0)
    ap.add_argument("--stack-dir", type=lambda s: Path(s).resolve(),
                    default=ROOT / ".warp/bench-stack")
    ap.add_argument("--reuse-stack", action="store_true",
                    help="keep the stack's data from an earlier run (faster while developing)")
    ap.add_argument("--keep-stack", action="store_true", help="leave the stack running")
    ap.add_argument("--readme", action="store_true",
                    help="write the tables and profiles into bench/README.md")
    ap.add_argument("--from-json", type=Path, metavar="RESULTS",
                    help="only render tables, chart (and with --readme the README blocks) "
                    "from an earlier run's bench/results/*.json")
    args = ap.parse_args(argv)
    if args.from_json:
        return report(json.loads(args.from_json.read_text()), args.from_json.with_suffix(""),
                      readme=args.readme)
    bad = [s for s in args.scenarios if s not in loadgen.SCENARIOS]
    if bad:
        ap.error(f"unknown scenarios {bad}; choose from {sorted(loadgen.SCENARIOS)}")
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
