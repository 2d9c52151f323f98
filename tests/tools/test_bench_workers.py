"""The ``--workers N`` curve of the benchmark (``bench/hoststats.py``,
``bench/workers_curve.py``): /proc readings turned into CPU shares, the rule naming what
bounds a point, the table in the report, and the command line. No Kafka, no PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests import paths

sys.path.insert(0, str(paths.ROOT / "bench"))

import hoststats
import reporting
import run
import workers_curve

STAT_BEFORE = """cpu  1000 20 300 5000 100 10 10 0 0 0
cpu0 500 10 150 2500 50 5 5 0 0 0
cpu1 500 10 150 2500 50 5 5 0 0 0
intr 12345
"""
# +300 user, +50 system, +10 irq busy; +100 idle, +40 iowait idle; guest (+7) inside user.
STAT_AFTER = """cpu  1300 20 350 5100 140 20 10 0 7 0
cpu0 650 10 175 2550 70 10 5 0 7 0
"""


def test_host_busy_share_counts_iowait_as_idle_and_guest_once() -> None:
    before, after = hoststats.host_times(STAT_BEFORE), hoststats.host_times(STAT_AFTER)
    assert before == (1000 + 20 + 300 + 10 + 10, 6440)
    assert hoststats.busy_share(before, after) == pytest.approx(360 / 500)
    assert hoststats.busy_share(after, after) is None
    with pytest.raises(ValueError):
        hoststats.host_times("cpu0 1 2 3 4\n")


def test_proc_stat_reads_fields_after_a_command_name_with_spaces_and_parens() -> None:
    fields = ["S", "42"] + ["0"] * 9 + ["700", "50", "30", "20"] + ["0"] * 30
    text = "4321 (python (x) y) " + " ".join(fields)
    assert hoststats.proc_stat(text) == (42, 750, 50)
    assert hoststats.peak_rss_kb("Name:\tpy\nVmHWM:\t  123456 kB\nVmRSS:\t1 kB\n") == 123456


def test_a_tree_counts_processes_that_exited_through_their_reaping_parent() -> None:
    ppids = {1: 0, 100: 1, 101: 100, 102: 100, 103: 101, 200: 1}
    assert hoststats.descendants(100, ppids) == {100, 101, 102, 103}
    assert hoststats.descendants(999, ppids) == set()
    group = hoststats.Group("postgres", 100)
    # A backend (101) ran 50 ticks and exited between the readings: its ticks moved into
    # the postmaster's reaped-children count, so only the 32 ticks of the run remain.
    start = {100: (1, 10, 0), 101: (100, 50, 0), 200: (1, 999, 0)}
    end = {100: (1, 12, 80), 102: (100, 5, 0), 200: (1, 2000, 0)}
    assert group.total(end) - group.total(start) == 12 + 80 + 5 - 10 - 50


def test_usage_follows_real_processes_under_a_parent_on_this_machine() -> None:
    spin = "import time\nt=time.process_time()\nwhile time.process_time()-t<0.4: pass"
    parent = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "{spin}"; sleep 0.3'])
    try:
        usage = hoststats.Usage()
        usage.add("ours", parent.pid, rss=True)
        usage.begin(time.perf_counter())
        deadline = time.monotonic() + 10
        while parent.poll() is None and time.monotonic() < deadline:
            usage.poll()
            time.sleep(0.05)
        # The parent is reaped by now, so its tree reads empty: ours' CPU comes from wait4.
        out = usage.end(time.perf_counter(), ours_cpu_s=0.41)
    finally:
        parent.kill()
        parent.wait()
    ours = out["ours"]
    assert ours["cpu_s"] == 0.41
    # The spinning child was seen while it ran: its CPU and RSS are per process.
    child = [p for p in ours["processes"] if int(p) != parent.pid]
    assert child, ours
    assert max(ours["processes"][p]["cpu_s"] for p in child) >= 0.2
    assert max(ours["processes"][p]["peak_rss_mb"] for p in child) > 1
    assert ours["peak_rss_mb_sum"] >= max(ours["processes"][p]["peak_rss_mb"] for p in child)
    assert out["host_busy"] is not None and 0 < out["host_busy"] <= 1
    assert out["wall_s"] >= 0.4


def point(workers: int, host: float | None, *, ours: float = 0.5, ours_max: float = 0.5,
          pg: float = 0.1, pg_max: float = 0.1, broker: float = 0.1) -> dict[str, Any]:
    return {"workers": workers, "cores": 2, "host_busy": host,
            "ours": {"share": ours / 2, "busiest_process_cores": ours_max},
            "postgres": {"share": pg / 2, "busiest_process_cores": pg_max},
            "broker": {"share": broker / 2, "cores_used": broker}}


def test_the_limit_is_named_from_the_cpu_figures() -> None:
    name = hoststats.name_limit
    assert name(point(6, 0.99), 4) == "the topic's 4 partitions (2 workers idle)"
    assert name(point(5, 0.99), 4) == "the topic's 4 partitions (1 workers idle)"
    assert name(point(4, 0.5), 4).startswith("not CPU")
    busy = name(point(2, 0.98, ours=1.3, pg=0.4, broker=0.2), 4)
    assert busy == ("the machine's 2 cores (host 98% busy: ours 65%, PostgreSQL 20%, "
                    "broker 10%, other processes 3%)")
    # A loaded machine: the point says the cores went to someone else.
    assert name(point(1, 1.0, ours=0.5, pg=0.1, broker=0.06), 4) == (
        "the machine's 2 cores, taken by other processes (host 100% busy: ours 25%, "
        "PostgreSQL 5%, broker 3%, other processes 67%)")
    assert name(point(1, 0.6, ours_max=0.95), 4).startswith("ours: a worker's Python thread")
    assert name(point(1, 0.6, pg_max=0.9), 4) == "PostgreSQL: one backend at a full core"
    assert name(point(1, 0.6, broker=0.9), 4) == "the broker (0.9 cores)"
    assert name(point(2, 0.5), 4) == "not CPU: waiting on PostgreSQL commits or broker fetches"
    assert name(point(2, None, ours_max=0.95), 4).startswith("ours:")


def test_the_curve_table_shows_speed_up_shares_and_limits() -> None:
    p1 = point(1, 0.62, ours_max=0.97) | {"rate": 40_000.0, "steady": 45_000.0,
                                         "state_ok": True, "limit": "ours: one thread"}
    p1["ours"] |= {"cpu_s": 20.5, "peak_rss_mb_sum": 150.0}
    p2 = point(2, 0.98, pg=0.6) | {"rate": 52_000.0, "steady": 72_000.0, "state_ok": False,
                                  "limit": "the machine's 2 cores"}
    p4 = {"workers": 4, "rate": None, "note": "exit 1: boom"}
    text = hoststats.curve_table({"scenarios": {"a": [p1, p2, p4]}})
    rows = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert rows[0].startswith("| N | events/s (steady) | speed-up (steady) | host CPU | "
                              "PostgreSQL CPU")
    assert rows[1] == ("| 1 | 40,000 (45,000) | 1.00x (1.00x) | 62% | 5% | 5% | 20.5 | 150 MB | "
                       "ours: one thread |")
    assert rows[2] == ("| 2 | 52,000 (72,000) (state WRONG) | 1.30x (1.60x) | 98% | 30% | 5% "
                       "| — | — | the machine's 2 cores |")
    assert rows[3] == "| 4 | failed: exit 1: boom | | | | | | | |"
    # Without a run of one worker there is nothing to compare with.
    alone = hoststats.curve_table({"scenarios": {"a": [p2, p4]}})
    assert "| 2 | 52,000 (72,000) (state WRONG) | — | 98% |" in alone
    # The report (stdout and the README block) carries the table when the run had a curve.
    results = {"scenarios": [], "workers_curve": {"scenarios": {"a": [p1]}}}
    assert rows[1] in reporting.tables(results)
    assert "--workers N" not in reporting.tables({"scenarios": []})


def test_worker_counts_on_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    parse = workers_curve.parse_curve
    assert parse("2,1,2") == [1, 2]
    assert parse("none") == parse("") == []
    monkeypatch.setattr(workers_curve.os, "cpu_count", lambda: 2)
    assert parse("auto") == [1, 2]
    monkeypatch.setattr(workers_curve.os, "cpu_count", lambda: 3)
    assert parse("auto") == [1, 2, 3]
    monkeypatch.setattr(workers_curve.os, "cpu_count", lambda: 16)
    assert parse("auto", partitions=4) == [1, 2, 4]
    with pytest.raises(ValueError, match="1 or more"):
        parse("0,2")
    for argv in (["--workers-curve", "0"], ["--peers", "bogus"]):
        with pytest.raises(SystemExit) as exc:
            run.main(argv)
        assert exc.value.code == 2


def test_the_chart_of_a_scaled_run_keeps_its_scale_in_the_name(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drawn: list[Path] = []
    monkeypatch.setattr(reporting, "chart", lambda _results, path: drawn.append(path))
    reporting.report({"scenarios": []}, tmp_path / "2026-12-04-scale0.1", readme=False)
    assert drawn == [tmp_path / "2026-12-04-scale0.1.png"]
