"""The report of a benchmark run (``bench/run.py``): the Markdown tables on stdout, the chart
(``bench/results/<run>.png``) and, with ``--readme``, the result and profile blocks of
``bench/README.md`` between the ``bench:results`` / ``bench:profile`` markers. Works from the
results dict alone, so ``run.py --from-json`` re-renders an earlier run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hoststats import curve_table
from measure import BENCH, fmt, fmt_rate
from scenarios import TARGETS


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
    if results.get("workers_curve", {}).get("scenarios"):
        out += "\n\n" + curve_table(results["workers_curve"])
    lat = results.get("latency")
    if lat and "p50_ms" in lat:
        out += (f"\n\nLatency at {lat['rate']:,} events/s for {results['args']['latency_seconds']}"
                f" s ({lat['events']:,} events, achieved {lat['achieved_rate']:,.0f}/s): "
                f"p50 {lat['p50_ms']:.0f} ms, p90 {lat['p90_ms']:.0f} ms, p99 "
                f"{lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms (target p99 ≤ 250 ms).")
    elif lat:
        out += f"\n\nLatency: {lat.get('error')}"
    return out


def chart(results: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:  # the `bench` extra is not installed: the tables still matter
        print(f"no chart {path.name}: matplotlib is missing (pip install -e '.[bench]')")
        return

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
                       "overhead dilates the Python parts, and it cannot see into the "
                       "mypyc-compiled modules: their time is counted in the Python frame "
                       "that calls them, the decoder's under batching (`Intake.accept`); "
                       "py-spy below samples them natively):\n")
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


def report(results: dict[str, Any], stem: Path, *, readme: bool) -> int:
    """Print the tables, write ``<stem>.png`` and, with ``readme``, the README blocks."""
    text = tables(results)
    print("\n" + text)
    chart(results, stem.with_name(stem.name + ".png"))  # not with_suffix: "scale0.1"
    if readme:
        name = stem.name
        head = (f"Run of {results['started']} (scale {results['args']['scale']}, load average "
                f"before/after {results['load_before'][0]:.1f}/{results['load_after'][0]:.1f}; "
                f"chart `bench/results/{name}.png`, raw `bench/results/{name}.json`).\n\n")
        update_readme(head + text, "results")
        if results.get("profiles"):
            update_readme(profile_section(results["profiles"]), "profile")
    return 0
