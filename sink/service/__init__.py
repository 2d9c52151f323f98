"""The running consumer: consume → decode → batch → write → commit.

:class:`Sink` is the service ``warp-sink run`` starts. Inside: ``sink`` (the loop and its
life cycle), ``intake`` (a fetched message into the batcher), ``batcher`` (what is buffered,
when to flush), ``commits`` (Kafka commits behind the PostgreSQL commit), ``ownership``
(partitions assigned and revoked, fencing), ``catchup`` (``--until-caught-up``), ``retry``
(the retry policy), ``dead_letters`` (the DLQ producer), ``kafka`` (client construction,
shared with the tools), ``access`` (TLS, SASL and ACL refusals a person must fix),
``report`` (metrics per flush), ``progress`` (live line and summaries of long runs),
``workers`` (``--workers N``, with ``group_view``: the group's one progress view),
``destination`` (the PostgreSQL destination a configuration describes), ``shutdown``
(the stop sequence, bounded by ``shutdown_timeout``), ``readiness`` (whether
PostgreSQL answers, for ``/readyz``).
Other layers import from this module only.
"""

from sink.service.access import principal as kafka_principal
from sink.service.access import probe as kafka_access_probe
from sink.service.access import refused as kafka_refused
from sink.service.kafka import admin as kafka_admin
from sink.service.kafka import consumer as kafka_consumer
from sink.service.kafka import producer as kafka_producer
from sink.service.kafka import security_kwargs as kafka_security
from sink.service.progress import terminal_bar
from sink.service.sink import Sink
from sink.service.workers import run_workers

__all__ = [
    "Sink",
    "kafka_access_probe",
    "kafka_admin",
    "kafka_consumer",
    "kafka_principal",
    "kafka_producer",
    "kafka_refused",
    "kafka_security",
    "run_workers",
    "terminal_bar",
]
