"""One chaos trial: a live multi-partition Debezium MongoDB stream, the real ``warp-sink run``
process reaching Kafka and PostgreSQL only through Toxiproxy, a random schedule of network
faults combined with SIGKILLs, then the faults lifted and the tables checked against the fold.

A trial is reproducible from its seed (the workload, the batch size, the fault schedule; not
the exact instants, which depend on the machine): ``CHAOS_SEED=<seed> CHAOS_TRIALS=1``.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from sink.stack.local import create_topic
from sink.tools.events import MongoEvents
from tests.chaos.toxiproxy import Client, Proxy
from tests.support import (
    Workload,
    fold_mismatches,
    read_topic,
    sink_cmd,
    start_sink,
    stored_offsets,
    table_rows,
    topic_exists,
    unique,
    workload,
)

FAULT_SECONDS = 10.0  # the fault phase of a trial, from the sink's first applied records
PRODUCE_SECONDS = 12.0  # the stream arrives over this long, from the sink's start
RECOVER_SECONDS = 120.0  # faults lifted: a sink that has not caught up by then hangs
PARTITIONS = 3
# Log lines that show the sink met a failure and retried it (the faults reached it).
RETRY_MARKS = ("transient failure, retrying", "fetch failed, retrying", "retrying",
               "Unable connect", "Unable to update metadata", "Error sending", "Heartbeat")


@dataclass
class Env:
    """Where the sink connects (the proxies) and where the checks connect (direct)."""

    toxi: Client
    kafka: Proxy
    pg: Proxy
    proxied_bootstrap: str
    proxied_dsn: str
    bootstrap: str
    dsn: str
    workdir: Path


@dataclass
class Fault:
    kind: str
    params: dict[str, Any]
    at: float  # seconds into the trial
    held: float
    progress: int  # records applied (stored offsets) when it began
    kill: bool = False  # the sink was SIGKILLed while this fault held
    total: int = 0  # records in the stream

    @property
    def mid_stream(self) -> bool:
        return 0 < self.progress < self.total


@dataclass
class Trial:
    seed: int
    events: int
    max_records: int
    faults: list[Fault] = field(default_factory=list)
    kills: int = 0
    unexpected_exits: list[int] = field(default_factory=list)
    retries_logged: int = 0
    caught_up_after: float | None = None  # seconds from lifting the faults
    hang: bool = False
    stop_code: int | None = None  # exit code of the SIGTERM after catching up
    lost: int = 0
    double: int = 0
    wrong: int = 0
    dead_letters: int = 0
    first_mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.hang and not self.unexpected_exits and self.stop_code == 0
                and self.lost == self.double == self.wrong == self.dead_letters == 0)

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _rand_stream(rng: random.Random) -> dict[str, Any]:
    return {"stream": rng.choice(["upstream", "downstream"])}


# kind -> (proxy name, how to inject it). Upstream = sink → server, downstream = server → sink.
FAULTS: dict[str, tuple[str, Callable[[Proxy, random.Random, str], dict[str, Any]]]] = {
    # latency spikes on every chunk, both servers
    "pg_latency": ("pg", lambda p, r, n: _toxic(p, n, "latency", {
        "latency": r.randint(100, 1500), "jitter": r.randint(0, 300)}, _rand_stream(r))),
    "kafka_latency": ("kafka", lambda p, r, n: _toxic(p, n, "latency", {
        "latency": r.randint(100, 1500), "jitter": r.randint(0, 300)}, _rand_stream(r))),
    # a slow link: COPY payloads up, fetches down
    "pg_bandwidth": ("pg", lambda p, r, n: _toxic(p, n, "bandwidth", {
        "rate": r.choice([4, 16, 64])}, {"stream": "upstream"})),
    "kafka_bandwidth": ("kafka", lambda p, r, n: _toxic(p, n, "bandwidth", {
        "rate": r.choice([4, 16, 64])}, {"stream": "downstream"})),
    # the connection cut after n bytes the sink sent: mid-COPY, mid-INSERT, mid-COMMIT
    "pg_cut_copy": ("pg", lambda p, r, n: _toxic(p, n, "limit_data", {
        "bytes": r.randint(1_000, 150_000)}, {"stream": "upstream"})),
    # the connection cut after n bytes of answers: the server may have committed a
    # transaction whose COMMIT the sink never saw acknowledged
    "pg_cut_commit": ("pg", lambda p, r, n: _toxic(p, n, "limit_data", {
        "bytes": r.randint(100, 6_000)}, {"stream": "downstream"})),
    # TCP RST (new connections) or FIN (open ones) on the next data after t ms
    "pg_reset": ("pg", lambda p, r, n: _toxic(p, n, "reset_peer", {
        "timeout": r.randint(0, 400)}, _rand_stream(r))),
    "kafka_reset": ("kafka", lambda p, r, n: _toxic(p, n, "reset_peer", {
        "timeout": r.randint(0, 400)}, _rand_stream(r))),
    # fetch responses cut mid-message
    "kafka_cut": ("kafka", lambda p, r, n: _toxic(p, n, "limit_data", {
        "bytes": r.randint(500, 200_000)}, {"stream": "downstream"})),
    # black holes: the connection stays open and nothing comes back (timeout=0)
    "pg_blackhole": ("pg", lambda p, r, n: _toxic(p, n, "timeout", {"timeout": 0},
                                                  _rand_stream(r))),
    "kafka_blackhole": ("kafka", lambda p, r, n: _toxic(p, n, "timeout", {"timeout": 0},
                                                        _rand_stream(r))),
    # the server unreachable: open connections closed, new ones refused
    "pg_outage": ("pg", lambda p, r, n: _outage(p)),
    "kafka_outage": ("kafka", lambda p, r, n: _outage(p)),
    # only the SIGKILL (every fault above also comes with one, one time in four)
    "sigkill": ("", lambda p, r, n: {}),
}


def _toxic(proxy: Proxy, name: str, kind: str, attrs: dict[str, int],
           opts: dict[str, Any]) -> dict[str, Any]:
    proxy.add_toxic(kind, attrs, name=name, stream=opts["stream"])
    return {"proxy": proxy.name, "toxic": kind, **attrs, **opts}


def _outage(proxy: Proxy) -> dict[str, Any]:
    proxy.disable()
    return {"proxy": proxy.name, "outage": True}


def _lift(env: Env) -> None:
    """Every toxic removed, both proxies enabled (removing a black hole closes the
    connections it held, as the end of a real one would)."""
    env.toxi.reset()


class SinkProcess:
    """The real ``warp-sink run``, restarted after each SIGKILL; every run logs to its own
    file, and an exit the trial did not cause is recorded."""

    def __init__(self, config: Path, logdir: Path, trial: Trial) -> None:
        self.config, self.logdir, self.trial = config, logdir, trial
        self.proc: asyncio.subprocess.Process | None = None
        self.runs = 0

    async def start(self) -> None:
        self.runs += 1
        self.proc = await start_sink(self.config, log=self.logdir / f"run{self.runs}.log")

    async def check_alive(self) -> None:
        """A sink that exited on its own under a transient fault is a finding; it is
        started again so the trial goes on."""
        if self.proc is not None and self.proc.returncode is not None:
            self.trial.unexpected_exits.append(self.proc.returncode)
            await self.start()

    async def kill(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self.trial.kills += 1
        await self.start()

    async def ensure_gone(self) -> None:
        """No sink outlives its trial, also when the trial itself fails."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def until_up(self, within: float = 60) -> None:
        """Until the current process has its partitions (and so its signal handlers): one
        restarted just before the stream was done must not get SIGTERM while Python is
        still importing, which would end it with the signal's default action."""
        deadline = time.monotonic() + within
        log = self.logdir / f"run{self.runs}.log"
        while time.monotonic() < deadline and self.proc is not None \
                and self.proc.returncode is None:
            if b"partitions assigned" in log.read_bytes():
                return
            await asyncio.sleep(0.1)

    async def stop(self, within: float) -> int | None:
        """SIGTERM and wait; None if it did not exit in time (then SIGKILLed)."""
        assert self.proc is not None
        if self.proc.returncode is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
            return None

    def retries_logged(self) -> int:
        n = 0
        for log in self.logdir.glob("run*.log"):
            for line in log.read_text(errors="replace").splitlines():
                n += any(mark in line for mark in RETRY_MARKS)
        return n


def chaos_config(path: Path, env: Env, *, topic: str, group: str, max_records: int) -> Path:
    """Timeouts short enough that a black hole is noticed within the trial (the defaults,
    60 s per command, would too, only slower); retries forever, as in production."""
    path.write_text(f"""
source:
  bootstrap_servers: "{env.proxied_bootstrap}"
  topics: ["{topic}"]
  group_id: "{group}"
  auto_offset_reset: "earliest"
  session_timeout_ms: 6000
destination:
  connection_string: "{env.proxied_dsn}"
  connection_timeout: 5
  command_timeout: 5
batch:
  max_records: {max_records}
  max_age_ms: 50
errors:
  retry_initial_backoff_seconds: 0.1
  retry_max_backoff_seconds: 2
shutdown_timeout: 20
observability:
  metrics_port: 0
  log_format: json
""", encoding="utf-8")
    return path


async def _produce_live(bootstrap: str, topic: str, events: list[tuple[bytes, bytes | None]],
                        seconds: float) -> None:
    """The stream arrives over ``seconds`` (direct, not through the proxy), so faults land
    while the sink is working, not after it caught up."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        chunks = 20
        step = max(1, len(events) // chunks)
        for i in range(0, len(events), step):
            futures = [await producer.send(topic, key=k, value=v) for k, v in events[i:i + step]]
            await asyncio.gather(*futures)
            await asyncio.sleep(seconds / chunks)
    finally:
        await producer.stop()


async def _progress(dsn: str, group: str) -> int:
    return sum((await stored_offsets(dsn, group)).values())


async def run_trial(env: Env, seed: int) -> Trial:
    rng = random.Random(seed)
    topic = f"chaos-{unique('t')}"
    db, group = unique("chaos"), unique("chaosg")
    await create_topic(env.bootstrap, topic, PARTITIONS)
    w = workload(MongoEvents(db, "users"), rng.choice([2000, 3000, 4000]), 400, seed=seed)
    trial = Trial(seed, len(w.events), rng.choice([50, 200, 1000]))
    logdir = env.workdir / f"trial-{seed}"
    logdir.mkdir(parents=True, exist_ok=True)
    cfg = chaos_config(logdir / "sink.yaml", env, topic=topic, group=group,
                       max_records=trial.max_records)
    sink = SinkProcess(cfg, logdir, trial)
    try:
        return await _run(env, trial, sink, rng, w, (topic, db, group), cfg)
    finally:
        await sink.ensure_gone()


async def _run(env: Env, trial: Trial, sink: SinkProcess, rng: random.Random, w: Workload,
               names: tuple[str, str, str], cfg: Path) -> Trial:
    seed, (topic, db, group) = trial.seed, names
    await sink.start()
    started = time.monotonic()
    producing = asyncio.create_task(_produce_live(env.bootstrap, topic, w.events,
                                                  PRODUCE_SECONDS))
    try:
        # Faults start once the sink is applying, and the stream keeps arriving while
        # they hold: they land mid-stream, not on an idle or a finished sink.
        while await _progress(env.dsn, group) == 0:
            await sink.check_alive()
            if time.monotonic() - started > RECOVER_SECONDS:
                raise AssertionError(f"seed {seed}: the sink applied nothing without faults")
            await asyncio.sleep(0.05)
        await asyncio.sleep(rng.uniform(0, 0.5))
        await _fault_phase(env, sink, trial, rng, time.monotonic(), group)
    finally:
        _lift(env)
        await producing
    lifted = time.monotonic()
    done = len(w.events)
    while await _progress(env.dsn, group) < done:
        await sink.check_alive()
        if time.monotonic() - lifted > RECOVER_SECONDS:
            trial.hang = True
            break
        await asyncio.sleep(0.1)
    else:
        trial.caught_up_after = round(time.monotonic() - lifted, 2)
    if not trial.hang:
        await sink.until_up()
    trial.stop_code = await sink.stop(within=35)
    if trial.hang:  # let a fresh process finish, so the fold still tells what was lost
        await _finish_clean(cfg)
    trial.retries_logged = sink.retries_logged()
    bad = fold_mismatches(await table_rows(env.dsn, db, "users"), w.fold)
    trial.lost = sum(kind == "lost" for kind, _, _ in bad)
    trial.double = sum(kind == "double" for kind, _, _ in bad)
    trial.wrong = sum(kind == "wrong" for kind, _, _ in bad)
    trial.first_mismatches = [repr(b)[:400] for b in bad[:3]]
    dlq = f"{group}.dlq"
    if await topic_exists(env.bootstrap, dlq):
        trial.dead_letters = len(await read_topic(env.bootstrap, dlq))
    if trial.ok:  # keep the database small over 50 trials; failures are kept to look at
        await _drop_schema(env.dsn, db)
    return trial


async def _fault_phase(env: Env, sink: SinkProcess, trial: Trial, rng: random.Random,
                       started: float, group: str) -> None:
    kinds = sorted(FAULTS)
    step = 0
    while time.monotonic() - started < FAULT_SECONDS:
        step += 1
        kind = rng.choice(kinds)
        proxy_name, inject = FAULTS[kind]
        proxy = env.pg if proxy_name == "pg" else env.kafka
        held = round(rng.uniform(0.3, 2.5), 2)
        kill = kind == "sigkill" or rng.random() < 0.2
        fault = Fault(kind, {}, round(time.monotonic() - started, 2), held,
                      await _progress(env.dsn, group), kill, trial.events)
        fault.params = inject(proxy, rng, f"f{step}")
        trial.faults.append(fault)
        kill_at = rng.uniform(0, held)
        await asyncio.sleep(kill_at)
        if kill:
            await sink.kill()  # also under the fault: the restart meets it at start-up
        await asyncio.sleep(held - kill_at)
        _lift(env)
        await sink.check_alive()
        await asyncio.sleep(rng.uniform(0, 0.4))


async def _finish_clean(cfg: Path) -> None:
    proc = await asyncio.create_subprocess_exec(*sink_cmd(cfg, "--until-caught-up"),
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        await asyncio.wait_for(proc.wait(), 240)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def _drop_schema(dsn: str, db: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{db}" CASCADE')
    finally:
        await conn.close()


def summary(trials: list[Trial]) -> str:
    per_kind: dict[str, int] = {}
    for t in trials:
        for f in t.faults:
            per_kind[f.kind] = per_kind.get(f.kind, 0) + 1
    kills = sum(t.kills for t in trials)
    faults = [f for t in trials for f in t.faults]
    lines = [
        f"chaos: {len(trials)} trials, {len(faults)} faults "
        f"({sum(f.mid_stream for f in faults)} begun mid-stream), "
        f"{kills} SIGKILLs, {sum(t.events for t in trials)} events",
        "faults per kind: " + ", ".join(f"{k} {v}" for k, v in sorted(per_kind.items())),
        f"lost {sum(t.lost for t in trials)}, double-applied {sum(t.double for t in trials)}, "
        f"wrong values {sum(t.wrong for t in trials)}, "
        f"dead letters {sum(t.dead_letters for t in trials)}, "
        f"hangs {sum(t.hang for t in trials)}, "
        f"unexpected exits {sum(len(t.unexpected_exits) for t in trials)}, "
        f"unclean stops {sum(t.stop_code != 0 for t in trials)}",
        f"retried failures logged by the sink: {sum(t.retries_logged for t in trials)}; "
        f"slowest recovery after the faults were lifted: "
        f"{max((t.caught_up_after or 0) for t in trials):.1f} s",
    ]
    for t in trials:
        if not t.ok:
            lines.append(f"FAILED trial seed={t.seed}: " + json.dumps(t.record(), default=str))
    return "\n".join(lines)


