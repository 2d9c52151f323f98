"""``warp-sink dlq inspect|replay``: read the dead-letter topic, send letters back.

Inside: ``cli`` (the commands), ``letters`` (reading dead letters), ``inspect``,
``replay``, ``ledger`` (what was replayed, kept in PostgreSQL so a replay runs once).
"""

from sink.tools.dlq.cli import add_parser

__all__ = ["add_parser"]
