"""``warp-sink``: the command line. Exit codes: 0 success, 2 bad config or usage,
1 runtime failure — each with a one-line reason on stderr."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from collections.abc import Callable
from typing import NoReturn

from sink.config import effective_config
from sink.errors import ConfigError, WarpError
from sink.logs import configure, scrub
from sink.tools import config_args, settings_from


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise ConfigError(f"usage: {message}")


def _cmd_run(args: argparse.Namespace) -> int:
    from sink.service import Sink

    settings = settings_from(args)
    configure(settings.observability.log_format, settings.observability.log_level)
    if args.workers < 1:
        raise ConfigError(f"--workers must be 1 or more, got {args.workers}")
    if args.workers > 1:
        from sink.service import run_workers

        return run_workers(argv_for_workers(args), args.workers, settings,
                           until_caught_up=args.until_caught_up)
    loop_factory = event_loop_factory(args.event_loop)
    tune_gc()
    sink = Sink(settings, until_caught_up=args.until_caught_up, force_replay=args.force_replay)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(sink.run())


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``--event-loop``: None for asyncio's own loop, else uvloop's (an optional extra)."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        raise ConfigError("--event-loop uvloop needs the uvloop package: "
                          "pip install 'cartridge-warp-sink[uvloop]'") from None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a streaming service.

    Each decoded event allocates a few dozen containers that live until their flush
    commits, so with CPython's defaults a young-generation collection runs every ~700
    allocations and keeps re-scanning thousands of buffered records: 10-15% of the
    service's CPU in scenario (a) of the benchmark. Almost nothing in the pipeline forms
    reference cycles (reference counting frees it), so collections can be rarer; the
    objects that exist after start-up (modules, classes, configuration) are frozen out
    of every collection.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def argv_for_workers(args: argparse.Namespace) -> list[str]:
    """The ``run`` arguments each worker gets (all but --workers)."""
    out = ["--config", args.config]
    for pair in args.set or []:
        out += ["--set", pair]
    if args.group_id:
        out += ["--group-id", args.group_id]
    if args.until_caught_up:
        out.append("--until-caught-up")
    if args.force_replay:
        out.append("--force-replay")
    if args.event_loop != "asyncio":
        out += ["--event-loop", args.event_loop]
    return out


def _cmd_config_show(args: argparse.Namespace) -> int:
    print(json.dumps(effective_config(settings_from(args)), indent=2))
    return 0


def _cmd_stack(args: argparse.Namespace) -> int:
    from sink.stack import main as stack_main

    return stack_main([args.action, *(["--dir", args.dir] if args.dir else []),
                       *(["--secure"] if args.secure else []),
                       *(["--purge"] if args.purge else [])])


def _cmd_demo(args: argparse.Namespace) -> int:
    from sink.tools import run_demo

    return run_demo(args.dir, events=args.events)


def _cmd_check(args: argparse.Namespace) -> int:
    from sink.tools import run_checks

    settings = settings_from(args)
    return asyncio.run(run_checks(settings))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="warp-sink", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the sink service")
    config_args(run)
    run.add_argument("--until-caught-up", action="store_true",
                     help="stop after applying everything up to the end offsets seen at start")
    run.add_argument("--force-replay", action="store_true",
                     help="lift the ordering guard: re-apply changes on purpose")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="run N processes in the group on this host (multi-core hosts)")
    run.add_argument("--event-loop", choices=["asyncio", "uvloop"], default="asyncio",
                     help="the event loop (uvloop: pip install 'cartridge-warp-sink[uvloop]')")
    run.set_defaults(fn=_cmd_run)

    check = sub.add_parser("check", help="check Kafka, the registry and PostgreSQL")
    config_args(check)
    check.set_defaults(fn=_cmd_check)

    cfg = sub.add_parser("config", help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="action", required=True, parser_class=_Parser)
    show = cfg_sub.add_parser("show", help="print the effective configuration, secrets masked")
    config_args(show)
    show.set_defaults(fn=_cmd_config_show)

    st = sub.add_parser("stack", help="the local Kafka + PostgreSQL stack")
    st.add_argument("action", choices=["up", "down", "env", "status"])
    st.add_argument("--dir", help="stack directory (default $WARP_STACK_DIR or ./.warp/stack)")
    st.add_argument("--secure", action="store_true",
                    help="the secured stack: TLS, SASL, mTLS, ACLs, hostssl PostgreSQL")
    st.add_argument("--purge", action="store_true", help="down: also delete the data")
    st.set_defaults(fn=_cmd_stack)

    from sink.tools import (
        add_decode_parser,
        add_dlq_parser,
        add_offsets_parser,
        add_status_parser,
    )

    add_status_parser(sub)
    add_offsets_parser(sub)
    add_dlq_parser(sub)
    add_decode_parser(sub)

    demo = sub.add_parser("demo", help="local stack + sample events + the sink, then the rows")
    demo.add_argument("--dir", help="stack directory (default ./.warp/stack)")
    demo.add_argument("--events", type=int, default=400, help="about how many events")
    demo.set_defaults(fn=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    fn: Callable[[argparse.Namespace], int]
    try:
        configure("auto", "warning")  # tools log warnings to stderr; `run` reconfigures
        args = build_parser().parse_args(argv)
        fn = args.fn
        return fn(args)
    except ConfigError as exc:
        print(f"warp-sink: {scrub(str(exc))}", file=sys.stderr)
        return 2
    except WarpError as exc:
        print(f"warp-sink: {scrub(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("warp-sink: interrupted", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"warp-sink: {type(exc).__name__}: {scrub(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
