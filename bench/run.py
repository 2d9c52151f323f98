"""End-to-end benchmark: our sink against two ceilings and two peers, on the same data.

    python bench/run.py [--scale 1.0] [--scenarios a,b,c,d,e] [--peers quix,connect]
                        [--avro] [--no-latency] [--no-profile] [--readme] [--reuse-stack]
                        [--workers-curve auto|none|1,2,4]

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

Then the ``--workers N`` curve (``bench/workers_curve.py``: ours with 1, 2, ... workers on
scenarios a and b's data, host/PostgreSQL/broker CPU from /proc, the limit named), the
latency run (2,000 events/s for 30 s while our sink runs as a service) and the profiles of
scenarios a and c (``bench/profile_ours.py``). Output: tables on stdout,
``bench/results/<date>[-scaleX].json`` and ``.png``, and with ``--readme`` the tables in
``bench/README.md`` between the ``bench:results`` markers.

The code, by role: ``bench/scenarios.py`` (what each scenario produces and expects, the
final-state checks), ``bench/systems.py`` (ours, the ceilings and the peers: how each is run
and measured; the latency run and the profiles), ``bench/measure.py`` (one process: wall time,
CPU, peak RSS, steady rate) and ``bench/reporting.py`` (tables, chart, README blocks). This
file is the command line and the order of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import loadgen  # noqa: E402
from measure import log  # noqa: E402
from peers import connect as connect_peer  # noqa: E402
from reporting import report  # noqa: E402
from scenarios import Bench  # noqa: E402
from systems import ensure_quix, versions  # noqa: E402
from workers_curve import parse_curve, workers_curve  # noqa: E402

from sink.config.model import DEFAULT_FLUSH_RECORDS  # noqa: E402
from sink.stack.local import LocalStack  # noqa: E402


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
        if args.workers_curve:
            # The broker's pid can read 0 right after a start (the JVM not yet in /proc).
            pids = {"postgres": info.pg_pid, "broker": info.kafka_pid or stack.kafka.pid() or 0}
            results["workers_curve"] = await workers_curve(
                bench, results["scenarios"], args.workers_curve, pids,
                tuple(args.workers_curve_scenarios))
        if args.latency:
            results["latency"] = await bench.latency()
            log(f"latency: {results['latency']}")
        if args.profile:
            results["profiles"] = {}
            for r in results["scenarios"]:
                if r["scenario"] in ("a", "c", "d"):
                    log(f"profiling ours on scenario {r['scenario']}")
                    plan = loadgen.SCENARIOS[r["scenario"]]
                    results["profiles"][r["scenario"]] = await bench.profile(
                        r["scenario"], r["topics"]["dbz"], plan.collection,
                        setup=(r.get("setup_topics") or {}).get("dbz"),
                        setup_messages=r["expected"]["setup_messages"])
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every scenario's size (0.05 while developing)")
    ap.add_argument("--scenarios", default="a,b,c,d,e", type=lambda s: s.split(","))
    ap.add_argument("--peers", default="quix,connect",
                    type=lambda s: [p for p in s.split(",") if p and p != "none"],
                    help="quix,connect; none (or empty) runs no peer")
    ap.add_argument("--workers-curve", default="auto", metavar="N,N,...",
                    help="after the scenarios, run ours with --workers N for each N on the "
                    "same data (auto: 1, 2, ... up to the cores and partitions; none: skip)")
    ap.add_argument("--workers-curve-scenarios", default="a,b",
                    type=lambda s: [x for x in s.split(",") if x],
                    help="which of the run scenarios get a workers curve")
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
    try:
        args.workers_curve = parse_curve(args.workers_curve)
    except ValueError as exc:
        ap.error(str(exc))
    unknown = [p for p in args.peers if p not in ("quix", "connect")]
    if unknown:
        ap.error(f"unknown peers {unknown}; choose from quix, connect or none")
    bad = [s for s in args.scenarios if s not in loadgen.SCENARIOS]
    if bad:
        ap.error(f"unknown scenarios {bad}; choose from {sorted(loadgen.SCENARIOS)}")
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
