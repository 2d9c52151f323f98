"""The ``--workers N`` scaling curve of the benchmark (``bench/run.py --workers-curve``).

For each scenario already run (its topics are reused: the same data for every N) and each
N: ``warp-sink run --workers N --until-caught-up`` into its own schema ``bench_wN`` and its
own consumer group (scenarios with a setup phase load it first, untimed, with one worker),
timed as ``ours`` is; meanwhile ``bench/hoststats.py`` follows the host's busy share, the
CPU of ours' parent and workers, of the postmaster and its backends and of the broker's
JVM, and the peak RSS of each of ours' processes. Each point gets the name of what bounds
it (:func:`hoststats.name_limit`); the final state of every table is checked as in the
scenarios.
"""

from __future__ import annotations

import os
import time
from typing import Any

import hoststats
import loadgen
from measure import fmt, fmt_rate, log
from scenarios import Bench

POLL_S = 0.25  # /proc is scanned this often while a worker group runs


def parse_curve(text: str, partitions: int = loadgen.PARTITIONS) -> list[int]:
    """``1,2,4`` → [1, 2, 4]; ``none``/empty → []; ``auto`` → 1, 2, 4, … up to the
    machine's cores and the topic's partitions (at least 1, 2)."""
    text = text.strip().lower()
    if text in ("", "none", "off"):
        return []
    if text == "auto":
        top = max(2, min(os.cpu_count() or 1, partitions))
        ns, n = [], 1
        while n <= top:
            ns.append(n)
            n *= 2
        return ns if ns[-1] == top else [*ns, top]
    ns = sorted({int(v) for v in text.split(",") if v.strip()})
    if not ns or ns[0] < 1:
        raise ValueError(f"--workers-curve: worker counts must be 1 or more, got {text!r}")
    return ns


async def run_curve(bench: Bench, scenario: dict[str, Any], counts: list[int],
                    pids: dict[str, int]) -> list[dict[str, Any]]:
    """The points of one scenario's curve. ``pids``: the postmaster's and the broker
    JVM's."""
    name = scenario["scenario"]
    plan = loadgen.SCENARIOS[name]
    ex = loadgen.Expected(**scenario["expected"])
    timed, setup = scenario["topics"], scenario.get("setup_topics")
    points = []
    for n in counts:
        schema = f"bench_w{n}"
        pool = await bench.pg()
        await pool.execute(f'DROP TABLE IF EXISTS "{schema}"."{plan.collection}"')
        group = f"ours-{bench.run_id}-{name}-w{n}"
        if setup is not None:
            s = await bench.ours(f"ours-{name}-w{n}-setup", setup["dbz"], group + "-setup",
                                 ex.setup_messages, schema=schema, collection=plan.collection)
            bench.check_setup(f"ours ({schema})", s)
        await bench.checkpoint()
        usage = hoststats.Usage()
        for key in ("postgres", "broker"):
            usage.add(key, pids.get(key) or 0)
        next_poll = 0.0

        def watch(pid: int, usage: hoststats.Usage = usage) -> None:
            nonlocal next_poll
            if "ours" not in usage.groups:
                usage.add("ours", pid, rss=True)
            now = time.perf_counter()
            if now >= next_poll:
                next_poll = now + POLL_S
                usage.poll()

        log(f"  workers curve, scenario {name}: --workers {n}")
        usage.begin(time.perf_counter())
        m = await bench.ours(f"ours-{name}-w{n}", timed["dbz"], group, ex.messages,
                             schema=schema, collection=plan.collection, workers=n,
                             watch=watch)
        point: dict[str, Any] = {"workers": n, **usage.end(time.perf_counter(), m.cpu_s)}
        m.state = await bench.ours_state(schema, plan.collection)
        m.state_ok = bench.state_ok(m.state, ex)
        point |= {"rate": m.rate, "steady": m.steady, "seconds": m.seconds,
                  "exit": m.exit, "note": m.note, "state_ok": m.state_ok, "state": m.state,
                  "parent_peak_rss_mb": m.peak_rss_mb}
        point["limit"] = hoststats.name_limit(point, loadgen.PARTITIONS)
        points.append(point)
        host = point.get("host_busy")
        log(f"    {fmt_rate(m.rate)} ev/s in {fmt(m.seconds)} s, steady {fmt_rate(m.steady)},"
            f" host {'?' if host is None else f'{host:.0%}'} busy, state ok: {m.state_ok}; "
            f"limit: {point['limit']} {m.note}")
    return points


async def workers_curve(bench: Bench, scenarios: list[dict[str, Any]], counts: list[int],
                        pids: dict[str, int], which: tuple[str, ...] = ("a", "b")
                        ) -> dict[str, Any]:
    """The ``workers_curve`` section of the results: the curve of each scenario in
    ``which`` that was run."""
    out: dict[str, Any] = {"counts": counts, "cores": os.cpu_count(),
                           "partitions": loadgen.PARTITIONS, "load_before": os.getloadavg(),
                           "scenarios": {}}
    for r in scenarios:
        if r["scenario"] in which:
            out["scenarios"][r["scenario"]] = await run_curve(bench, r, counts, pids)
    out["load_after"] = os.getloadavg()
    return out
