"""``warp-sink dlq inspect|replay``: read the dead-letter topic, and re-drive dead letters.

Both read the DLQ topic from its start to the end offsets seen when they start, with a
consumer in no group (:mod:`sink.tools.dlq.letters`). ``inspect`` prints them
(:mod:`sink.tools.dlq.inspect`); ``replay`` produces them again, once each: a ledger in the
metadata schema, ``dlq_replays``, remembers what was replayed, and settles what a run that
died mid-batch left behind (:mod:`sink.tools.dlq.replay`, :mod:`sink.tools.dlq.ledger`).
"""

from __future__ import annotations

import argparse
from typing import Any

from sink.tools.common import config_args, run_async
from sink.tools.dlq.inspect import inspect
from sink.tools.dlq.ledger import REPLAYED_FROM, Ledger, ensure_ledger, load_ledger
from sink.tools.dlq.letters import Letter, scan
from sink.tools.dlq.replay import replay

__all__ = [
    "REPLAYED_FROM",
    "Ledger",
    "Letter",
    "add_parser",
    "ensure_ledger",
    "inspect",
    "load_ledger",
    "replay",
    "scan",
]


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic", help="only dead letters from this source topic")
    p.add_argument("--error-code", help="only dead letters with this warp.error.code")
    p.add_argument("--limit", type=int, help="at most this many dead letters")
    p.add_argument("--dlq-topic", help="the DLQ topic (default: errors.dlq_topic, "
                   "else <group_id>.dlq)")


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``dlq inspect|replay`` on ``warp-sink``'s subcommands."""
    dlq = subparsers.add_parser(
        "dlq", help="inspect and re-drive dead letters",
        description="The dead-letter topic: read it, or send its records back.",
    )
    sub = dlq.add_subparsers(dest="action", required=True, parser_class=type(dlq))

    show = sub.add_parser("inspect", help="print the dead letters, one per line")
    config_args(show)
    _filters(show)
    show.add_argument("--json", action="store_true",
                      help="JSON lines: headers decoded, key/value as base64 and a preview")
    show.set_defaults(fn=run_async(inspect))

    redrive = sub.add_parser(
        "replay", help="produce dead letters again (original key, value and headers)",
        description="Re-drive dead letters to their original topic (or --to-topic), once "
        "each: a ledger in the metadata schema remembers what was replayed.",
    )
    config_args(redrive)
    _filters(redrive)
    redrive.add_argument("--to-topic", help="send here instead of each record's original topic")
    redrive.add_argument("--dry-run", action="store_true",
                         help="print what would be replayed, produce nothing")
    redrive.set_defaults(fn=run_async(replay))
