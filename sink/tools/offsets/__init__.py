"""``warp-sink offsets show|reset``: the stored offsets, Kafka's, and moving them.

Inside: ``cli`` (the commands and what they read), ``plan`` (what a reset will do).
"""

from sink.tools.offsets.cli import add_parser

__all__ = ["add_parser"]
