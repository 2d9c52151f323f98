"""Where the CPU went during one timed run (``bench/workers_curve.py``): the host's busy
share from ``/proc/stat``, the CPU of a process tree (ours' parent and its workers, the
postmaster and its backends, the broker's JVM) from ``/proc/<pid>/stat``, peak RSS per
process, and the rule that names what bounds a point of the ``--workers`` curve.

Pure parsing and arithmetic are separate from the reading of ``/proc`` so the unit tests
(``tests/tools/test_bench_workers.py``) feed them text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")
BUSY_HOST = 0.9  # above this share of every core, the machine itself is the limit
FULL_CORE = 0.85  # a single-threaded process this busy cannot go faster
# Above this share of the machine used by processes outside the bench, a point measures
# the other jobs more than the sink: the limit says so.
OTHERS_LOUD = 0.25


# --- parsing ---------------------------------------------------------------------------


def host_times(stat: str) -> tuple[int, int]:
    """(busy, total) jiffies from the aggregate ``cpu`` line of ``/proc/stat``. idle and
    iowait are not busy; guest time is already inside user/nice, so it is left out of the
    total (counting it twice would understate the busy share)."""
    for line in stat.splitlines():
        if line.startswith("cpu "):
            vals = [int(v) for v in line.split()[1:]]
            total = sum(vals[:8])  # user nice system idle iowait irq softirq steal
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
            return total - idle, total
    raise ValueError("no aggregate cpu line in /proc/stat")


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Share of all cores busy between two :func:`host_times` readings."""
    dt = after[1] - before[1]
    return None if dt <= 0 else (after[0] - before[0]) / dt


def proc_stat(text: str) -> tuple[int, int, int]:
    """(ppid, own ticks, reaped children's ticks) from one ``/proc/<pid>/stat``. The
    command name may hold spaces and parentheses, so fields are counted after the last
    ``)``."""
    rest = text[text.rindex(")") + 2:].split()
    # rest[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return ppid, utime + stime, cutime + cstime


def peak_rss_kb(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def descendants(root: int, ppids: dict[int, int]) -> set[int]:
    """``root`` and every process below it, from a pid → ppid map."""
    children: dict[int, list[int]] = {}
    for pid, ppid in ppids.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in out or (pid not in ppids and pid != root):
            continue
        out.add(pid)
        todo.extend(children.get(pid, ()))
    return out & set(ppids)


# --- reading /proc ---------------------------------------------------------------------


def read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:  # the process exited between listing and reading
        return None


def snapshot() -> dict[int, tuple[int, int, int]]:
    """Every process: pid → :func:`proc_stat`."""
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (text := read(f"/proc/{entry.name}/stat")):
            out[int(entry.name)] = proc_stat(text)
    return out


@dataclass
class Group:
    """One tree of processes followed through a run. Its CPU is the tree's own plus reaped
    children's ticks at the end minus at the start, so backends and workers that came and
    went in between are counted (each dead one in its reaping parent's ``cutime``)."""

    name: str
    root: int
    rss: bool = False  # follow each process's peak RSS (ours only: it is polled often)
    start: dict[int, int] = field(default_factory=dict)
    last: dict[int, int] = field(default_factory=dict)  # pid → own ticks when last seen
    peak_kb: dict[int, int] = field(default_factory=dict)
    ticks: int = 0

    def total(self, snap: dict[int, tuple[int, int, int]]) -> int:
        pids = descendants(self.root, {p: s[0] for p, s in snap.items()})
        return sum(snap[p][1] + snap[p][2] for p in pids)

    def poll(self, snap: dict[int, tuple[int, int, int]]) -> None:
        for pid in descendants(self.root, {p: s[0] for p, s in snap.items()}):
            self.last[pid] = snap[pid][1]
            if self.rss and (status := read(f"/proc/{pid}/status")):
                self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), peak_rss_kb(status))


class Usage:
    """Host and per-group CPU between :meth:`begin` and :meth:`end`; :meth:`poll` in
    between keeps per-process figures of processes that exit before the end."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self.host0 = self.host1 = (0, 0)
        self.t0 = self.t1 = 0.0
        self.base: dict[str, int] = {}

    def add(self, name: str, root: int, *, rss: bool = False) -> None:
        if root:
            self.groups[name] = Group(name, root, rss)

    def begin(self, now: float) -> None:
        snap = snapshot()
        self.t0, self.host0 = now, host_times(read("/proc/stat") or "")
        for name, g in self.groups.items():
            self.base[name] = g.total(snap)
            tree = descendants(g.root, {p: s[0] for p, s in snap.items()})
            g.start = {p: snap[p][1] for p in tree}
            g.poll(snap)

    def poll(self) -> None:
        snap = snapshot()
        for g in self.groups.values():
            g.poll(snap)

    def end(self, now: float, ours_cpu_s: float | None = None) -> dict[str, Any]:
        """The run's figures; ``ours_cpu_s`` (``wait4``'s, exact, covering workers the
        parent reaped) replaces ours' tree reading, whose root is gone by then."""
        snap = snapshot()
        self.t1, self.host1 = now, host_times(read("/proc/stat") or "")
        wall = self.t1 - self.t0
        cores = os.cpu_count() or 1
        out: dict[str, Any] = {"wall_s": wall, "cores": cores,
                               "host_busy": busy_share(self.host0, self.host1)}
        for name, g in self.groups.items():
            cpu = (g.total(snap) - self.base.get(name, 0)) / TICK
            if name == "ours" and ours_cpu_s is not None:
                cpu = ours_cpu_s
            per = {str(p): (t - g.start.get(p, 0)) / TICK for p, t in g.last.items()}
            out[name] = {"cpu_s": cpu, "share": cpu / (wall * cores) if wall > 0 else None,
                         "cores_used": cpu / wall if wall > 0 else None,
                         "busiest_process_cores": max(per.values()) / wall
                         if per and wall > 0 else None}
            if g.rss:
                out[name]["processes"] = {p: {"cpu_s": per.get(p),
                                              "peak_rss_mb": kb / 1024}
                                          for p, kb in ((str(q), k) for q, k in
                                                        g.peak_kb.items())}
                out[name]["peak_rss_mb_sum"] = sum(g.peak_kb.values()) / 1024
        return out


# --- naming the limit ------------------------------------------------------------------


def name_limit(point: dict[str, Any], partitions: int) -> str:
    """What stops this point of the curve from going faster, from its CPU figures:

    1. more workers than partitions: the extra ones get nothing to read;
    2. the host ≥ 90 % busy: the machine's cores (whoever uses them, shares listed;
       "taken by other processes" when more than a quarter of it is outside the bench);
    3. one process of a group at ≥ 0.85 of a core: that single-threaded process
       (ours: a worker's Python thread; PostgreSQL: one backend);
    4. the broker's JVM using ≥ 0.85 of a core (it is multi-threaded, so the group total);
    5. otherwise nothing is CPU-bound: the time goes to waiting (commits, fetches)."""
    n = point["workers"]
    cores = point.get("cores") or 1
    host = point.get("host_busy")
    ours, pg, broker = (point.get(k) or {} for k in ("ours", "postgres", "broker"))

    def pct(g: dict[str, Any]) -> str:
        return "?" if g.get("share") is None else f"{g['share']:.0%}"

    if n > partitions:
        return f"the topic's {partitions} partitions ({n - partitions} workers idle)"
    if host is not None and host >= BUSY_HOST:
        known = sum(g.get("share") or 0 for g in (ours, pg, broker))
        others = max(0.0, host - known)
        shares = (f"host {host:.0%} busy: ours {pct(ours)}, PostgreSQL {pct(pg)}, "
                  f"broker {pct(broker)}, other processes {others:.0%}")
        if others > OTHERS_LOUD:
            return f"the machine's {cores} cores, taken by other processes ({shares})"
        return f"the machine's {cores} cores ({shares})"

    if (ours.get("busiest_process_cores") or 0) >= FULL_CORE:
        return "ours: a worker's Python thread at a full core (more workers would help)"
    if (pg.get("busiest_process_cores") or 0) >= FULL_CORE:
        return "PostgreSQL: one backend at a full core"
    if (broker.get("cores_used") or 0) >= FULL_CORE:
        return f"the broker ({broker['cores_used']:.1f} cores)"
    return "not CPU: waiting on PostgreSQL commits or broker fetches"


def curve_table(curve: dict[str, Any]) -> str:
    """The Markdown table of a ``workers_curve`` result."""
    out = []
    for scen, points in curve.get("scenarios", {}).items():
        out.append(f"`--workers N`, scenario {scen} (same data per N, own table each):\n")
        out.append("| N | events/s (steady) | speed-up (steady) | host CPU | PostgreSQL CPU "
                   "| broker CPU | ours CPU s | peak RSS (sum) | limit |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        one = next((p for p in points if p["workers"] == 1), {})
        base, base_steady = one.get("rate"), one.get("steady")
        for p in points:
            if not p.get("rate"):
                out.append(f"| {p['workers']} | failed: {p.get('note', '')} | | | | | | | |")
                continue
            speed = f"{p['rate'] / base:.2f}x" if base else "—"
            if base_steady and p.get("steady"):  # start-up and group joins left out
                speed += f" ({p['steady'] / base_steady:.2f}x)"
            steady = f" ({p['steady']:,.0f})" if p.get("steady") else ""
            ok = "" if p.get("state_ok", True) else " (state WRONG)"

            def share(key: str, p: dict[str, Any] = p) -> str:
                v = (p.get(key) or {}).get("share")
                return "—" if v is None else f"{v:.0%}"

            host = "—" if p.get("host_busy") is None else f"{p['host_busy']:.0%}"
            rss = (p.get("ours") or {}).get("peak_rss_mb_sum")
            cpu = (p.get("ours") or {}).get("cpu_s")
            out.append(
                f"| {p['workers']} | {p['rate']:,.0f}{steady}{ok} | {speed} | {host} | "
                f"{share('postgres')} | {share('broker')} | "
                f"{'—' if cpu is None else f'{cpu:.1f}'} | "
                f"{'—' if rss is None else f'{rss:.0f} MB'} | {p.get('limit', '')} |")
        out.append("")
    out.append("CPU columns: share of all the machine's cores during the run (wall time x "
               "cores), from /proc; speed-up against N = 1, of the wall-time rate (start-up "
               "included) and of the steady rate.")
    return "\n".join(out)
