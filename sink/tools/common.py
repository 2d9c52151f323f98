"""What ``warp-sink``'s subcommands share: the configuration arguments (``--config``,
``--set``, ``--group-id``) and the settings built from them, warnings on stderr, and
handlers that run a coroutine."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from sink.config import Settings, load_settings
from sink.errors import ConfigError

Handler = Callable[[argparse.Namespace], int]


def overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set section.key=value`` pairs as ``{"section.key": "value"}``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes section.key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def settings_from(args: argparse.Namespace) -> Settings:
    """The configuration: ``--config``, then ``WARP__`` variables, then ``--set`` and
    ``--group-id``."""
    over = overrides(args.set or [])
    if getattr(args, "group_id", None):
        over["source.group_id"] = args.group_id
    return load_settings(args.config, over)


def config_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--config", "-c", required=required, help="YAML configuration file")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override one setting (wins over the file and WARP__ variables)")
    p.add_argument("--group-id", help="shorthand for --set source.group_id=...")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def run_async(
    fn: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Handler:
    """A subcommand handler that runs ``fn(args)`` on a fresh event loop."""

    def handler(args: argparse.Namespace) -> int:
        return asyncio.run(fn(args))

    return handler
