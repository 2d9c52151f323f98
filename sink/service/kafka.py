"""Kafka clients built from the configuration: consumer, producer, admin.

Security settings (TLS, SASL PLAIN/SCRAM/OAUTHBEARER) are applied the same way to all
three.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from sink.config import SourceConfig
from sink.service.oauth import token_provider


def security_kwargs(src: SourceConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {"security_protocol": src.security_protocol}
    if src.security_protocol in ("SSL", "SASL_SSL"):
        kw["ssl_context"] = _ssl_context(src)
    if src.sasl_mechanism == "OAUTHBEARER":
        kw["sasl_mechanism"] = "OAUTHBEARER"
        kw["sasl_oauth_token_provider"] = token_provider(src)
    elif src.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        kw["sasl_mechanism"] = src.sasl_mechanism or "PLAIN"
        kw["sasl_plain_username"] = src.sasl_username
        kw["sasl_plain_password"] = (
            src.sasl_password.get_secret_value() if src.sasl_password else None
        )
    return kw


def _ssl_context(src: SourceConfig) -> ssl.SSLContext:
    ctx: ssl.SSLContext = create_ssl_context(
        cafile=src.ssl_cafile, certfile=src.ssl_certfile, keyfile=src.ssl_keyfile
    )
    return ctx


def consumer(src: SourceConfig, *, max_poll_records: int,
             flush_seconds: float = 0.0) -> AIOKafkaConsumer:
    """A consumer with manual commits: offsets move only after PostgreSQL commits.

    ``flush_seconds``: how long a member may take to flush the partitions it gives up
    (the service bounds that flush by ``shutdown_timeout``)."""
    # The broker waits for every member to rejoin up to the rebalance timeout; a member
    # still flushing its revoked partitions past it is evicted, and its flush then lands
    # after the next owner loaded the stored offsets (an offset conflict for that owner).
    rebalance_ms = src.session_timeout_ms + int(flush_seconds * 1000)
    return AIOKafkaConsumer(
        bootstrap_servers=src.bootstrap_servers,
        group_id=src.group_id,
        client_id=src.client_id,
        enable_auto_commit=False,
        auto_offset_reset=src.auto_offset_reset,
        isolation_level="read_committed",
        max_poll_records=max_poll_records,
        session_timeout_ms=src.session_timeout_ms,
        heartbeat_interval_ms=max(1000, src.session_timeout_ms // 5),
        rebalance_timeout_ms=rebalance_ms,
        # The broker holds a JoinGroup up to the rebalance timeout; a client request timeout
        # shorter than that makes joins time out and retry, each retry a new pending member
        # the coordinator must wait out (restarts then take minutes).
        request_timeout_ms=max(40_000, rebalance_ms + 10_000),
        max_poll_interval_ms=src.max_poll_interval_ms,
        fetch_max_bytes=src.fetch_max_bytes,
        # aiokafka holds one fetch per partition ahead of the loop: 2 MiB each keeps the
        # loop fed (more measured no faster) and bounds memory with many partitions.
        max_partition_fetch_bytes=min(src.fetch_max_bytes, 2 * 1024 * 1024),
        **security_kwargs(src),
    )


def producer(src: SourceConfig, *, max_request_size: int = 1_048_576) -> AIOKafkaProducer:
    """An idempotent producer that waits for all in-sync replicas (the DLQ's durability).
    ``max_request_size``: the largest record it sends (the DLQ's: what the consumer reads,
    plus the error headers)."""
    return AIOKafkaProducer(
        bootstrap_servers=src.bootstrap_servers,
        client_id=f"{src.client_id}-dlq",
        acks="all",
        enable_idempotence=True,
        max_request_size=max_request_size,
        **security_kwargs(src),
    )


def admin(src: SourceConfig) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=src.bootstrap_servers, client_id=f"{src.client_id}-admin",
        **security_kwargs(src),
    )
