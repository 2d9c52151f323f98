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

from sink.config.dsn import Dsn, DsnError, parse_dsn
from sink.config.secret_files import load_secret_files
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
    schema_registry_password_file: str | None = None
    schema_registry_token: SecretStr | None = None
    schema_registry_token_file: str | None = None
    schema_registry_cafile: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # OAUTHBEARER: a token from the OIDC client-credentials flow, renewed before it expires
    sasl_oauth_token_url: str | None = None
    sasl_oauth_client_id: str | None = None
    sasl_oauth_client_secret: SecretStr | None = None
    sasl_oauth_client_secret_file: str | None = None
    sasl_oauth_scope: str | None = None
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

    @property
    def subscription_pattern(self) -> str | None:
        """``topic_pattern`` as the consumer is given it. aiokafka tests topics with
        ``re.match`` (a prefix: "orders" takes "orders-archive" too), while check, status,
        offsets and the catch-up target use ``re.fullmatch``; anchored, the consumer takes
        exactly the topics they list."""
        return None if self.topic_pattern is None else rf"(?:{self.topic_pattern})\Z"

    @model_validator(mode="after")
    def _rules(self) -> SourceConfig:
        load_secret_files(self, SOURCE_SECRETS)
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
        oauth = self.sasl_mechanism == "OAUTHBEARER"
        oauth_keys = ("sasl_oauth_token_url", "sasl_oauth_client_id", "sasl_oauth_client_secret")
        for key in oauth_keys if oauth else ():
            if getattr(self, key) is None:
                raise rule(key, "required with sasl_mechanism OAUTHBEARER (e.g. "
                            f"WARP__SOURCE__{key.upper()})")
        for key in () if oauth else (*oauth_keys, "sasl_oauth_scope",
                                     "sasl_oauth_client_secret_file"):
            if getattr(self, key) is not None:
                raise rule(key, "needs sasl_mechanism OAUTHBEARER")
        if oauth:
            try:
                parts = urlsplit(self.sasl_oauth_token_url or "")
                ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            except ValueError:
                ok = False
            if not ok:
                raise rule("sasl_oauth_token_url", "must be an http:// or https:// URL (the "
                            "identity provider's token endpoint)")
        if sasl and not oauth and not self.sasl_username:
            raise rule("sasl_username", f"required with security_protocol "
                        f"{self.security_protocol} (e.g. WARP__SOURCE__SASL_USERNAME)")
        if sasl and not oauth and self.sasl_password is None:
            raise rule("sasl_password", f"required with security_protocol "
                        f"{self.security_protocol} (e.g. WARP__SOURCE__SASL_PASSWORD, or "
                        "sasl_password_file naming a file that holds it)")
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


SOURCE_SECRETS = ("sasl_password", "schema_registry_password", "schema_registry_token",
                  "sasl_oauth_client_secret")
DESTINATION_SECRETS = ("password",)

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class DestinationConfig(Section):
    """The seed's ``destination:`` block, keys and defaults as the seed writes them."""

    type: Literal["postgresql"] = "postgresql"
    connection_string: SecretStr
    # The password on its own (never percent-encoded), or a file holding it: for passwords
    # a URI cannot carry as written, and for Kubernetes Secrets mounted as files.
    password: SecretStr | None = None
    password_file: str | None = None
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
    sslcert: str | None = None  # client certificate (pg_hba ``cert`` / ``clientcert=``)
    sslkey: str | None = None

    @model_validator(mode="after")
    def _rules(self) -> DestinationConfig:
        load_secret_files(self, DESTINATION_SECRETS)
        if self.sslkey and not self.sslcert:
            raise rule("sslkey", "needs sslcert (the client certificate it belongs to)")
        if self.sslcert and self.sslmode in (None, "disable", "allow", "prefer"):
            raise rule("sslcert", "needs sslmode require, verify-ca or verify-full (a client "
                        "certificate is only sent over TLS)")
        if self.min_connections > self.max_connections:
            raise rule("min_connections", f"min_connections ({self.min_connections}) must not "
                        f"exceed max_connections ({self.max_connections})")
        try:
            dsn = self.dsn
            dsn.check_usable()
        except DsnError as exc:
            raise rule("connection_string", str(exc)) from None
        if self.password is not None and dsn.password is not None:
            which = "password_file" if self.password_file is not None else "password"
            raise rule(which, "the connection string holds a password too: give it in one "
                        "place (remove it from the connection string)")
        if self.hard_delete_after <= timedelta(0):
            raise rule("hard_delete_after", "must be a positive duration (e.g. P7D or 604800)")
        return self

    @property
    def dsn(self) -> Dsn:
        """The connection string as libpq reads it (raises DsnError)."""
        return parse_dsn(self.connection_string.get_secret_value())

    @property
    def login_password(self) -> str | None:
        """The password to log in with: ``password``/``password_file``, else the one in the
        connection string (None: asyncpg's own defaults, PGPASSWORD or the passfile)."""
        if self.password is not None:
            return self.password.get_secret_value()
        return self.dsn.password


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
    # A new MongoDB table's _id column: the type of the collection's first _id (bigint for
    # integers, uuid for UUIDs, text for the rest), or text for every id as before.
    id_type: Literal["auto", "text"] = "auto"


class ErrorsConfig(Section):
    tolerance: Literal["all", "none"] = "all"
    dlq_topic: str | None = None  # default: "<group_id>.dlq"
    retry_deadline_seconds: float = Field(default=0.0, ge=0)  # 0: retry forever
    retry_initial_backoff_seconds: float = Field(default=0.2, gt=0)
    retry_max_backoff_seconds: float = Field(default=30.0, gt=0)
    # The largest dead letter the DLQ producer sends (its max_request_size). Unset: the
    # consumer's source.fetch_max_bytes plus room for the error headers, so any record
    # the consumer read can be dead-lettered whole. A letter the broker still refuses
    # (the DLQ topic's max.message.bytes) is sent with its value truncated.
    dlq_max_bytes: int | None = Field(default=None, ge=65_536)

    @model_validator(mode="after")
    def _rules(self) -> ErrorsConfig:
        if self.dlq_topic is not None and not _TOPIC_NAME.fullmatch(self.dlq_topic):
            raise rule("dlq_topic", "not a Kafka topic name (1-249 characters of "
                        "A-Z a-z 0-9 . _ -)")
        if self.retry_max_backoff_seconds < self.retry_initial_backoff_seconds:
            raise rule("retry_max_backoff_seconds",
                        "must not be below retry_initial_backoff_seconds")
        return self


# Room for a dead letter's own headers (message, stack trace, coordinates) and the
# record's headers, over the largest record the consumer fetches.
DLQ_HEADER_ROOM = 1024 * 1024

# Flushes of 5,000 records take the COPY path (above the writer's 2,000-row threshold) and
# pay a transaction per 5,000 events: about +20% over 1,000 in the benchmark's scenario (a),
# with no cost in latency at low rates (flushes then go by max_age_ms).
DEFAULT_FLUSH_RECORDS = 5000


class BatchConfig(Section):
    # Unset: destination.batch_size when that is set (the seed's configs), else
    # DEFAULT_FLUSH_RECORDS.
    max_records: int | None = Field(default=None, ge=1)
    max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)  # decoded: ~5-10x in memory
    # 200: a record waits at most this long for its flush, so at low rates the end-to-end
    # p99 (fetch + wait + BEGIN) stays under 250 ms; at high rates max_records flushes first.
    max_age_ms: int = Field(default=200, ge=1)
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

    @model_validator(mode="after")
    def _dlq_not_subscribed(self) -> Settings:
        src, dlq = self.source, self.dlq_topic
        by = ("source.topics" if dlq in src.topics else "source.topic_pattern"
              if src.topic_pattern and re.fullmatch(src.topic_pattern, dlq) else None)
        if by is not None:
            # Each dead letter would be read back, fail again and be written again: a loop
            # that grows the DLQ without end.
            raise rule("errors.dlq_topic", f"the dead-letter topic {dlq} is subscribed ({by} "
                        "takes it): the sink would read its own dead letters and dead-letter "
                        "them again, without end; set errors.dlq_topic to a topic outside "
                        f"{by} (the default is <group_id>.dlq)")
        return self

    @property
    def dlq_topic(self) -> str:
        return self.errors.dlq_topic or f"{self.source.group_id}.dlq"

    @property
    def dlq_max_bytes(self) -> int:
        if self.errors.dlq_max_bytes is not None:
            return self.errors.dlq_max_bytes
        return self.source.fetch_max_bytes + DLQ_HEADER_ROOM

    @property
    def max_batch_records(self) -> int:
        """Records per flush unit (one transaction)."""
        if self.batch.max_records is not None:
            return self.batch.max_records
        if "batch_size" in self.destination.model_fields_set:
            return self.destination.batch_size
        return DEFAULT_FLUSH_RECORDS


def postgres_connect_args(dest: DestinationConfig) -> dict[str, Any]:
    """asyncpg's ``dsn``, ``password`` and ``ssl`` arguments for the destination: the
    connection string as libpq reads it (:meth:`Dsn.for_asyncpg`), the password apart."""
    return {"dsn": dest.dsn.for_asyncpg(), "password": dest.login_password,
            "ssl": postgres_ssl(dest)}


def postgres_ssl(dest: DestinationConfig) -> ssl.SSLContext | SslMode | None:
    """The ``ssl`` argument for asyncpg from ``sslmode``/``sslrootcert`` (None: the DSN's
    own ``sslmode`` parameter or libpq's defaults apply)."""
    if dest.sslmode is None:
        return None
    if dest.sslmode in ("verify-ca", "verify-full"):
        ctx = ssl.create_default_context(cafile=dest.sslrootcert)
        ctx.check_hostname = dest.sslmode == "verify-full"
    elif dest.sslmode == "require" and dest.sslcert:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # libpq's require: encrypt, do not verify
    else:
        return dest.sslmode
    if dest.sslcert:
        ctx.load_cert_chain(dest.sslcert, dest.sslkey)
    return ctx
