"""What one applied flush unit tells the operator: the per-table counters and histogram,
and the ``batch processed`` log line (``debug``: a catch-up would print thousands; the
``progress`` lines summarise at ``info``) with each partition's span of offsets."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import structlog
from aiokafka import TopicPartition

from sink.metrics import Metrics
from sink.postgres import ApplyResult
from sink.records import Record

log = structlog.get_logger("sink.service")  # operators filter on this logger's lines


def report_flush(metrics: Metrics, result: ApplyResult, records: Iterable[Record]) -> None:
    # The spans walk every record of the unit (1 % of the CPU in the benchmark's inserts):
    # only for the debug line that shows them.
    debug = log.is_enabled_for(logging.DEBUG)
    spans: dict[tuple[str, str], dict[str, list[int]]] = {}
    for rec in records if debug else ():
        span = spans.setdefault((rec.schema or "", rec.table or ""), {}).setdefault(
            f"{rec.topic}[{rec.partition}]", [rec.offset or 0, rec.offset or 0])
        span[1] = rec.offset or 0
    m = metrics
    for (schema, table), tr in result.tables.items():
        for op, n in tr.operations.items():
            m.records_processed.labels(schema, table, op).inc(n)
        m.batch_duration.labels(schema, table).observe(result.seconds)
        for col, n in tr.overflowed.items():
            m.overflow.labels(schema, table, col).inc(n)
        for _ in tr.evolution.added:
            m.schema_changes.labels(schema, table, "add_column").inc()
        for _ in tr.evolution.widened:
            m.schema_changes.labels(schema, table, "widen_column").inc()
        if debug:
            log.debug("batch processed", schema=schema, table=table,
                      records=sum(tr.operations.values()), duration=round(result.seconds, 4),
                      operations=dict(tr.operations), offsets=spans.get((schema, table), {}))


def report_lag(metrics: Metrics, consumer: Any, committed: dict[TopicPartition, int]) -> None:
    """After a Kafka commit: each partition's lag behind the end the consumer last saw."""
    for tp, offset in committed.items():
        hw = consumer.highwater(tp)
        if hw is not None:
            metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, hw - offset))
