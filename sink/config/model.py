"""The configuration's model: one section per concern (``source``, ``destination``,
``mapping``, ``errors``, ``batch``, ``observability``) with their defaults and cross-field
rules, and :class:`Settings`, the whole, whose sources are layered flags > ``WARP__``
environment > YAML file (see :mod:`sink.config.sources`)."""

from __future__ import annotations

import re
import ssl
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sink.config.sources import GivenSource
from sink.config.text import Section, rule

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


class SourceConfig(Section):
    """Kafka: brokers, subscription, formats, schema registry, security."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topics: list[str] = Field(default_factory=list)
    topic_pattern: str | None = None
    group_id: str = Field(default="warp-sink", min_length=1)
    client_id: str = Field(default="warp-sink", min_length=1)
    key_format: Literal["json", "avro"] = "json"
    value_format: Literal["json", "avro"] = "json"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    schema_registry_url: str | None = None
    schema_registry_username: str | None = None
    schema_registry_password: SecretStr | None = None
    schema_registry_token: SecretStr | None = None
    schema_registry_cafile: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    max_poll_interval_ms: int = Field(default=300_000, ge=1_000)
    fetch_max_bytes: int = Field(default=52_428_800, ge=1_024)

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _servers(cls, value: Any) -> Any:
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if not isinstance(value, str):
            return value
        hosts = [h.strip() for h in value.split(",") if h.strip()]
        if not hosts:
            raise ValueError("needs at least one host:port")
        for host in hosts:
            name, sep, port = host.rpartition(":")
            if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{host!r} is not host:port (e.g. kafka:9092)")
        return ",".join(hosts)

    @field_validator("topics")
    @classmethod
    def _topic_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _TOPIC_NAME.fullmatch(name) or name in (".", ".."):
                raise ValueError(f"{name!r} is not a Kafka topic name "
                                 "(1-249 characters of A-Z a-z 0-9 . _ -)")
        return value

    @model_validator(mode="after")
    def _rules(self) -> SourceConfig:
        if self.topics and self.topic_pattern:
            raise rule("topic_pattern", "set either source.topics or source.topic_pattern, not "
                        "both (clear one with null, e.g. --set source.topic_pattern=null)")
        if not self.topics and not self.topic_pattern:
            raise rule("topics", "no subscription: set source.topics (a list of topic names, "
                        "e.g. WARP__SOURCE__TOPICS='[\"t\"]') or source.topic_pattern (a regex)")
        if self.topic_pattern is not None:
            try:
                re.compile(self.topic_pattern)
            except re.error as exc:
                raise rule("topic_pattern", f"not a valid regular expression: {exc}") from None
        sasl = self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")
        if self.sasl_mechanism and not sasl:
            raise rule("sasl_mechanism", "needs security_protocol SASL_PLAINTEXT or SASL_SSL "
                        f"(security_protocol is {self.security_protocol})")
        if sasl and not self.sasl_username:
            raise rule("sasl_username", f"required with security_protocol "
                        f"{self.security_protocol} (e.g. WARP__SOURCE__SASL_USERNAME)")
        if sasl and self.sasl_password is None:
            raise rule("sasl_password", f"required with security_protocol "
                        f"{self.security_protocol} (e.g. WARP__SOURCE__SASL_PASSWORD)")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise rule("ssl_keyfile", "needs ssl_certfile (the client certificate it belongs to)")
        url = self.schema_registry_url
        if "avro" in (self.key_format, self.value_format) and not url:
            raise rule("schema_registry_url", "required when key_format or value_format is "
                        "avro (the registry holds the writer schemas)")
        if url is not None:
            for one in url.split(","):
                try:
                    parts = urlsplit(one.strip())
                    ok = parts.scheme in ("http", "https") and bool(parts.hostname)
                    _ = parts.port
                except ValueError:
                    ok = False
                if not ok:
                    raise rule("schema_registry_url", "must be an http:// or https:// URL "
                                "with a host (several: comma-separated)")
        if self.schema_registry_token is not None and (
            self.schema_registry_username or self.schema_registry_password is not None
        ):
            raise rule("schema_registry_token", "set schema_registry_token (bearer) or "
                        "schema_registry_username/schema_registry_password (basic), not both")
        return self


SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class DestinationConfig(Section):
    """The seed's ``destination:`` block, keys and defaults as the seed writes them."""

    type: Literal["postgresql"] = "postgresql"
    connection_string: SecretStr
    metadata_schema: str = Field(default="cartridge_warp_metadata", min_length=1, max_length=63)
    batch_size: int = Field(default=1000, ge=1, le=1_000_000)
    max_connections: int = Field(default=10, ge=1)
    min_connections: int = Field(default=2, ge=0)
    connection_timeout: float = Field(default=30.0, gt=0)
    command_timeout: float = Field(default=60.0, gt=0)
    enable_soft_deletes: bool = True
    deletion_strategy: Literal["soft", "hard", "both"] = "soft"
    hard_delete_after: timedelta = timedelta(days=7)
    upsert_mode: Literal["on_conflict", "merge"] = "on_conflict"
    string_type: Literal["text", "varchar"] = "text"
    max_retries: int = Field(default=3, ge=0)
    sslmode: SslMode | None = None
    sslrootcert: str | None = None

    @model_validator(mode="after")
    def _rules(self) -> DestinationConfig:
        if self.min_connections > self.max_connections:
            raise rule("min_connections", f"min_connections ({self.min_connections}) must not "
                        f"exceed max_connections ({self.max_connections})")
        problem = _dsn_problem(self.connection_string.get_secret_value())
        if problem:
            raise rule("connection_string", problem)
        if self.hard_delete_after <= timedelta(0):
            raise rule("hard_delete_after", "must be a positive duration (e.g. P7D or 604800)")
        return self


def _dsn_problem(dsn: str) -> str | None:
    """What is wrong with a PostgreSQL URL, without repeating any part of it."""
    scheme = dsn.split("://", 1)[0] if "://" in dsn else ""
    if scheme not in ("postgresql", "postgres"):
        shown = f"scheme {scheme!r}" if scheme and len(scheme) < 20 else "no scheme"
        return (f"must be a postgresql:// or postgres:// URL ({shown}; "
                "e.g. postgresql://user@host:5432/database)")
    head = dsn.split("://", 1)[1]
    userinfo, at, _ = head.rpartition("@")
    if at and any(c in userinfo for c in "/?#") and "=" not in userinfo:
        return ("holds '/', '?' or '#' in the user or password: percent-encode them "
                "(%2F, %3F, %23)")
    try:
        parts = urlsplit(dsn)
        for host in (parts.netloc.rpartition("@")[2] or "").split(","):
            _, sep, port = host.rpartition(":")
            if sep and port and not port.isdigit() and "]" not in port:
                return "has a port that is not a number"
    except ValueError:
        return "is not a valid URL"
    return None


KeylessMode = Literal["match_before", "append", "dead_letter"]


class MappingConfig(Section):
    """How source names become PostgreSQL names."""

    schema_template: str = "{db}"
    table_template: str = "{collection}"
    # "db.collection" -> "schema.table", applied before the templates.
    overrides: dict[str, str] = Field(default_factory=dict)
    # topic -> "schema.table", for flattened (SMT) topics whose events name no collection.
    topic_tables: dict[str, str] = Field(default_factory=dict)
    truncate: Literal["ignore", "apply"] = "ignore"
    # Tables without a primary key: updates/deletes match the before image (REPLICA
    # IDENTITY FULL), an append-only change log, or dead letters. Per source
    # "schema.table" in keyless_tables.
    keyless: KeylessMode = "match_before"
    keyless_tables: dict[str, KeylessMode] = Field(default_factory=dict)


class ErrorsConfig(Section):
    tolerance: Literal["all", "none"] = "all"
    dlq_topic: str | None = None  # default: "<group_id>.dlq"
    retry_deadline_seconds: float = Field(default=0.0, ge=0)  # 0: retry forever
    retry_initial_backoff_seconds: float = Field(default=0.2, gt=0)
    retry_max_backoff_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _rules(self) -> ErrorsConfig:
        if self.dlq_topic is not None and not _TOPIC_NAME.fullmatch(self.dlq_topic):
            raise rule("dlq_topic", "not a Kafka topic name (1-249 characters of "
                        "A-Z a-z 0-9 . _ -)")
        if self.retry_max_backoff_seconds < self.retry_initial_backoff_seconds:
            raise rule("retry_max_backoff_seconds",
                        "must not be below retry_initial_backoff_seconds")
        return self


# Flushes of 5,000 records take the COPY path (above the writer's 2,000-row threshold) and
# pay a transaction per 5,000 events: about +20% over 1,000 in the benchmark's scenario (a),
# with no cost in latency at low rates (flushes then go by max_age_ms).
DEFAULT_FLUSH_RECORDS = 5000


class BatchConfig(Section):
    # Unset: destination.batch_size when that is set (the seed's configs), else
    # DEFAULT_FLUSH_RECORDS.
    max_records: int | None = Field(default=None, ge=1)
    max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)  # decoded: ~5-10x in memory
    max_age_ms: int = Field(default=250, ge=1)
    max_buffered_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)


class ObservabilityConfig(Section):
    metrics_port: int = Field(default=9108, ge=0, le=65535)  # 0: no HTTP server
    metrics_host: str = "0.0.0.0"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # A ``progress`` summary line this often when stderr is not a terminal (on a terminal:
    # one live line instead).
    progress_interval_seconds: float = Field(default=10.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", case_sensitive=False)

    source: SourceConfig
    destination: DestinationConfig
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    errors: ErrorsConfig = Field(default_factory=ErrorsConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    shutdown_timeout: float = Field(default=30.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: flags (init) > WARP__ environment > YAML file.
        return (init_settings, GivenSource(settings_cls, "env"),
                GivenSource(settings_cls, "yaml"))

    @property
    def dlq_topic(self) -> str:
        return self.errors.dlq_topic or f"{self.source.group_id}.dlq"

    @property
    def max_batch_records(self) -> int:
        """Records per flush unit (one transaction)."""
        if self.batch.max_records is not None:
            return self.batch.max_records
        if "batch_size" in self.destination.model_fields_set:
            return self.destination.batch_size
        return DEFAULT_FLUSH_RECORDS


def postgres_ssl(dest: DestinationConfig) -> ssl.SSLContext | SslMode | None:
    """The ``ssl`` argument for asyncpg from ``sslmode``/``sslrootcert`` (None: the DSN's
    own ``sslmode`` parameter or libpq's defaults apply)."""
    if dest.sslmode is None:
        return None
    if dest.sslmode in ("verify-ca", "verify-full"):
        ctx = ssl.create_default_context(cafile=dest.sslrootcert)
        ctx.check_hostname = dest.sslmode == "verify-full"
        return ctx
    return dest.sslmode
