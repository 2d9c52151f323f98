"""Profile our sink on one topic: where the wall time of ``warp-sink run --until-caught-up``
goes.

    python bench/profile_ours.py --config ours.yaml --out DIR [--py-spy]

Two views, one run each (``bench/run.py`` makes both, each on a fresh table):

* pyinstrument (default): the service run exactly as ``warp-sink run --until-caught-up``
  runs it (``Sink(settings, until_caught_up=True).run()`` on a fresh event loop) under
  ``pyinstrument.Profiler(interval=0.001)``: the call tree, with the loop's idle time in
  ``EpollSelector.select``. Its overhead dilates Python code (roughly +30 %), so the idle
  share comes out too small; use it for *which Python code* costs what.
  Writes ``DIR/pyinstrument.txt``, ``DIR/pyinstrument.html`` and ``DIR/breakdown.json``
  (seconds per category, see :func:`categorise`).
* ``--py-spy``: ``warp-sink run --until-caught-up`` sampled from outside at 250 Hz (idle
  included; the main thread only), low overhead: the *shares* of wall time. The idle share is
  split with the service's own ``batch processed`` log lines (their ``duration`` is the wall
  time of each ``PostgreSQLDestinationConnector.apply``): the time ``apply`` was in flight
  minus its CPU samples is an upper bound of the idle time spent waiting for PostgreSQL (the
  service applies one flush in a task while it fetches and decodes the next, so part of that
  time overlaps decoding); the rest of the idle time is waiting for Kafka. Writes ``DIR/py-spy.txt``
  (collapsed stacks), ``DIR/py-spy-sink.log`` and ``DIR/py-spy-breakdown.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Categories: (name, function name or "*", file path fragment).
RULES: list[tuple[str, str, str]] = [
    ("decode", "*", "sink/decode"),
    ("decode", "*", "sink/extjson"),
    ("decode", "*", "sink/jsontext"),
    ("decode", "*", "sink/framing"),
    ("batching (reduce per key)", "*", "sink/reduce"),
    ("SQL build + row encoding (sink)", "*", "sink/writer"),
    ("SQL build + row encoding (sink)", "*", "sink/statements"),
    ("SQL build + row encoding (sink)", "*", "sink/pgtypes"),
    ("SQL build + row encoding (sink)", "*", "sink/catalog"),
    ("SQL build + row encoding (sink)", "*", "sink/metadata"),
    ("asyncpg (bind/COPY encode, protocol)", "*", "asyncpg/"),
    ("Kafka fetch + record parsing (aiokafka)", "*", "aiokafka/"),
    ("batching (buffers, flush bookkeeping)", "*", "sink/service"),
    ("SQL build + row encoding (sink)", "*", "sink/postgres"),
    ("logging + metrics", "*", "structlog/"),
    ("logging + metrics", "*", "prometheus_client/"),
    ("logging + metrics", "*", "sink/logs"),
    ("logging + metrics", "*", "sink/metrics"),
    ("idle (waiting in epoll)", "select", "selectors"),
    ("idle (waiting in epoll)", "poll", "selectors"),
    ("event loop (asyncio)", "*", "asyncio/"),
    ("event loop (asyncio)", "*", "selectors"),
    ("startup (imports, config)", "*", "importlib"),
    ("startup (imports, config)", "*", "sink/config"),
    ("startup (imports, config)", "*", "pydantic"),
    ("startup (imports, config)", "*", "yaml/"),
    ("startup (imports, config)", "*", "re/_"),
]
# The mypyc-compiled modules (setup.py's COMPILED) run as C: py-spy sees them only with
# --native, as frames named CPyDef_<module>___<function> in sink/_hot__mypyc*.so.
_WRITER_MODULES = frozenset({"dates", "jsonb", "plan", "reduce", "rows", "schema_types", "types"})
_NATIVE_PREFIXES = ("CPyDef_", "CPyPy_", "CPyL_")


def _compiled_category(func: str) -> str | None:
    for prefix in _NATIVE_PREFIXES:
        if func.startswith(prefix):
            module = func[len(prefix):].split("___", 1)[0]
            return "SQL build + row encoding (sink)" if module in _WRITER_MODULES else "decode"
    return None


def _decode_call() -> str:
    """``file:line`` of the call into the decoder in `Intake.accept`: native frames under
    it (orjson, and compiled code whose frames the unwinder loses there) are decoding."""
    import inspect

    from sink.service.intake import Intake

    lines, first = inspect.getsourcelines(Intake.accept)
    for i, line in enumerate(lines):
        if "decode_cached(" in line:
            return f"sink/service/intake.py:{first + i}"
    return "-"


_DECODE_CALL = _decode_call()


def categorise(stack: list[tuple[str, str]]) -> str:
    """``stack``: (function, file) from the root to the innermost frame; the innermost frame
    that some rule matches decides (a compiled frame by its module, see above)."""
    for func, path in reversed(stack):
        if func == "gc_collect_main":
            return "garbage collector (cyclic)"
        if path.endswith(_DECODE_CALL):
            return "decode"
        if "_mypyc" in path:
            found = _compiled_category(func)
            if found is not None:
                return found
        for name, want, fragment in RULES:
            if fragment in path and (want == "*" or func == want or func.endswith("." + want)):
                return name
    return "other"


def _walk_pyinstrument(frame: Any, stack: list[tuple[str, str]], out: Counter[str]) -> None:
    ident = frame.identifier
    if ident in ("[await]", "[self]", "[out-of-context]"):
        out[categorise(stack)] += frame.time
        return
    here = [*stack, (frame.function or "", frame.file_path or "")]
    children = frame.children
    child_time = sum(c.time for c in children)
    if frame.time - child_time > 1e-9:
        out[categorise(here)] += frame.time - child_time
    for child in children:
        _walk_pyinstrument(child, here, out)


async def _run_profiled(config: str, out: Path) -> dict[str, Any]:
    from pyinstrument import Profiler

    from sink.config import load_settings
    from sink.logs import configure
    from sink.service.sink import Sink

    settings = load_settings(config)
    configure(settings.observability.log_format, settings.observability.log_level)
    sink = Sink(settings, until_caught_up=True)
    profiler = Profiler(interval=0.001, async_mode="disabled")
    started = time.perf_counter()
    profiler.start()
    try:
        code = await sink.run()
    finally:
        session = profiler.stop()
    wall = time.perf_counter() - started
    (out / "pyinstrument.txt").write_text(profiler.output_text(unicode=False, color=False))
    (out / "pyinstrument.html").write_text(profiler.output_html())
    cats: Counter[str] = Counter()
    root = session.root_frame()
    if root is not None:
        _walk_pyinstrument(root, [], cats)
    result = {"exit": code, "wall_s": wall,
              "categories_s": dict(sorted(cats.items(), key=lambda kv: -kv[1]))}
    (out / "breakdown.json").write_text(json.dumps(result, indent=2))
    return result


def py_spy_breakdown(raw: Path, wall: float, apply_wall: float) -> dict[str, Any]:
    """Shares of the main thread's wall time per category, from py-spy's collapsed stacks
    (``thread (tid): name;func (file:line);...  n``); idle split with ``apply_wall`` (the
    summed wall time of ``apply``, from the service's log)."""
    cats: Counter[str] = Counter()
    total = in_apply_cpu = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        thread, _, stack_text = stack_text.partition(";")
        if not thread.endswith(": MainThread"):
            continue  # the metrics server's and the executor's threads: idle, not ours
        stack = []
        for part in stack_text.split(";"):
            func, _, where = part.partition(" (")
            stack.append((func.strip(), where.rstrip(")")))
        n = int(count)
        cat = categorise(stack)
        cats[cat] += n
        total += n
        if cat != "idle (waiting in epoll)" and any(
                f.endswith("PostgreSQLDestinationConnector.apply") for f, _ in stack):
            in_apply_cpu += n
    if not total:
        return {"error": "no samples"}
    shares = {k: v / total for k, v in cats.items()}
    idle = shares.pop("idle (waiting in epoll)", 0.0)
    pg_wait = min(idle, max(0.0, apply_wall / wall - in_apply_cpu / total)) if wall else 0.0
    shares["idle while a flush is in flight (upper bound of the PostgreSQL wait)"] = pg_wait
    shares["idle otherwise (waiting for Kafka)"] = idle - pg_wait
    ordered = dict(sorted(((k, round(v, 4)) for k, v in shares.items()), key=lambda kv: -kv[1]))
    return {"wall_s": round(wall, 2), "apply_wall_s": round(apply_wall, 2),
            "apply_cpu_share": round(in_apply_cpu / total, 4), "samples": total,
            "shares": ordered}


def apply_seconds(log: Path) -> float:
    """Sum of ``duration`` of the service's ``batch processed`` JSON log lines."""
    total = 0.0
    for line in log.read_text(errors="replace").splitlines():
        if '"batch processed"' not in line:
            continue
        try:
            total += float(json.loads(line).get("duration", 0.0))
        except (ValueError, AttributeError):
            continue
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--py-spy", action="store_true",
                    help="sample a second run with py-spy instead of pyinstrument")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.py_spy:
        raw = args.out / "py-spy.txt"
        sink_log = args.out / "py-spy-sink.log"
        cmd = [str(Path(sys.executable).with_name("py-spy")), "record", "--idle", "--threads",
               "--native", "-r", "250", "-f", "raw", "-o", str(raw), "--", sys.executable, "-m",
               "sink.cli", "run", "--config", args.config, "--until-caught-up"]
        started = time.perf_counter()
        with sink_log.open("wb") as out:
            subprocess.run(cmd, check=True, cwd=ROOT, stdout=out, stderr=out)
        wall = time.perf_counter() - started
        result = py_spy_breakdown(raw, wall, apply_seconds(sink_log))
        (args.out / "py-spy-breakdown.json").write_text(json.dumps(result, indent=2))
        print(json.dumps({"py_spy": result}))
        return 0
    print(json.dumps(asyncio.run(_run_profiled(args.config, args.out))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
