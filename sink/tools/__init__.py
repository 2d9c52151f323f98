"""Operator commands beside ``warp-sink run``: ``check``, ``decode``, ``demo``, ``dlq``,
``offsets``, ``status``. Each reads the same configuration as the service and touches Kafka and
PostgreSQL only through the service's and the destination's public surfaces.

Inside: ``common`` (the ``--config``/``--set`` arguments), ``clients`` (short-lived Kafka
and PostgreSQL clients for the commands), ``check``, ``decode``, ``demo``, ``status``, ``events``
(Debezium MongoDB events as the connector writes them: the demo, tests and bench use
them), and the ``dlq`` and ``offsets`` subpackages.
"""

from sink.tools.check import run_checks
from sink.tools.common import config_args, run_async, settings_from
from sink.tools.decode import add_parser as add_decode_parser
from sink.tools.demo import run_demo
from sink.tools.dlq import add_parser as add_dlq_parser
from sink.tools.offsets import add_parser as add_offsets_parser
from sink.tools.status import add_parser as add_status_parser

__all__ = [
    "add_decode_parser",
    "add_dlq_parser",
    "add_offsets_parser",
    "add_status_parser",
    "config_args",
    "run_async",
    "run_checks",
    "run_demo",
    "settings_from",
]
