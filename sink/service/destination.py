"""The PostgreSQL destination a configuration describes, for the service and for the
parent of ``run --workers N`` (its group view reads the offsets table)."""

from __future__ import annotations

from sink.config import Settings, postgres_ssl
from sink.postgres import PostgreSQLDestinationConnector


def destination(settings: Settings) -> PostgreSQLDestinationConnector:
    """The PostgreSQL destination ``settings`` describe (not connected yet)."""
    d = settings.destination
    return PostgreSQLDestinationConnector(
        d.connection_string.get_secret_value(), metadata_schema=d.metadata_schema,
        batch_size=d.batch_size, max_connections=d.max_connections,
        min_connections=d.min_connections, connection_timeout=d.connection_timeout,
        command_timeout=d.command_timeout, enable_soft_deletes=d.enable_soft_deletes,
        deletion_strategy=d.deletion_strategy, upsert_mode=d.upsert_mode,
        max_retries=d.max_retries, string_type=d.string_type,
        id_type=settings.mapping.id_type,
        hard_delete_after=d.hard_delete_after, ssl=postgres_ssl(d),
        password=d.password.get_secret_value() if d.password is not None else None,
    )
