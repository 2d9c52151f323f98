"""The one configuration model: YAML file, then ``WARP__SECTION__KEY`` environment
variables, then command-line overrides (highest). The seed's ``destination:`` block
is accepted exactly as it writes it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError

ENV_PREFIX = "WARP__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    topics: list[str] = Field(default_factory=list)
    topic_pattern: str | None = None
    group_id: str = "warp-sink"
    client_id: str = "warp-sink"
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
    session_timeout_ms: int = Field(default=45_000, ge=1_000)
    max_poll_interval_ms: int = Field(default=300_000, ge=1_000)
    fetch_max_bytes: int = Field(default=52_428_800, ge=1_024)

    @model_validator(mode="after")
    def _one_subscription(self) -> SourceConfig:
        if self.topics and self.topic_pattern:
            raise ValueError("set either topics or topic_pattern, not both")
        if not self.topics and not self.topic_pattern:
            raise ValueError("set topics (a list) or topic_pattern (a regex)")
        if self.topic_pattern is not None:
            try:
                re.compile(self.topic_pattern)
            except re.error as exc:
                raise ValueError(f"topic_pattern is not a valid regex: {exc}") from None
        if self.sasl_mechanism and self.security_protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
            raise ValueError("sasl_mechanism needs security_protocol SASL_PLAINTEXT or SASL_SSL")
        if "avro" in (self.key_format, self.value_format) and not self.schema_registry_url:
            raise ValueError("avro key_format/value_format needs schema_registry_url")
        return self


class DestinationConfig(_Section):
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
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        None
    )
    sslrootcert: str | None = None

    @model_validator(mode="after")
    def _pool_bounds(self) -> DestinationConfig:
        if self.min_connections > self.max_connections:
            raise ValueError("min_connections must not exceed max_connections")
        dsn = self.connection_string.get_secret_value()
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise ValueError("connection_string must start with postgresql:// or postgres://")
        return self


class MappingConfig(_Section):
    """How source names become PostgreSQL names."""

    schema_template: str = "{db}"
    table_template: str = "{collection}"
    # "db.collection" -> "schema.table", applied before the templates.
    overrides: dict[str, str] = Field(default_factory=dict)
    # topic -> "schema.table", for flattened (SMT) topics whose events name no collection.
    topic_tables: dict[str, str] = Field(default_factory=dict)
    truncate: Literal["ignore", "apply"] = "ignore"


class ErrorsConfig(_Section):
    tolerance: Literal["all", "none"] = "all"
    dlq_topic: str | None = None  # default: "<group_id>.dlq"
    retry_deadline_seconds: float = Field(default=0.0, ge=0)  # 0: retry forever
    retry_initial_backoff_seconds: float = Field(default=0.2, gt=0)
    retry_max_backoff_seconds: float = Field(default=30.0, gt=0)


class BatchConfig(_Section):
    max_records: int | None = Field(default=None, ge=1)  # default: destination.batch_size
    max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_age_ms: int = Field(default=500, ge=1)
    max_buffered_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)


class ObservabilityConfig(_Section):
    metrics_port: int = Field(default=9108, ge=0, le=65535)  # 0: no HTTP server
    metrics_host: str = "0.0.0.0"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    source: SourceConfig
    destination: DestinationConfig
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    errors: ErrorsConfig = Field(default_factory=ErrorsConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    shutdown_timeout: float = Field(default=30.0, gt=0)

    _yaml: dict[str, Any] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Later sources lose: flags (init) > environment > YAML file.
        return (init_settings, env_settings, _YamlSource(settings_cls, dict(cls._yaml)))

    @property
    def dlq_topic(self) -> str:
        return self.errors.dlq_topic or f"{self.source.group_id}.dlq"

    @property
    def max_batch_records(self) -> int:
        return self.batch.max_records or self.destination.batch_size


def _nest(dotted: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if err["type"] == "missing":
        return f"{key}: required but not set"
    shown = err.get("input")
    if isinstance(shown, (str, int, float, bool)) and not _secret_key(key):
        return f"{key}: {msg} (got {shown!r})"
    return f"{key}: {msg}"


def _secret_key(key: str) -> bool:
    return any(s in key for s in ("password", "token", "connection_string", "secret"))


def load_settings(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Load and validate the configuration; raise ConfigError naming the key and the problem."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping of sections")
        data = loaded
    Settings._yaml = data
    try:
        return Settings(**_nest(overrides or {}))
    except ValidationError as exc:
        problems = "; ".join(_describe(dict(e)) for e in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None
    finally:
        Settings._yaml = {}


_DSN_PASSWORD = re.compile(r"(://[^:/@]*:)([^@]*)(@)")


def mask_dsn(dsn: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db`` (and ``password=`` params)."""
    masked = _DSN_PASSWORD.sub(r"\1***\3", dsn)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", masked)


def effective_config(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, secrets masked (for ``config show``)."""
    data = settings.model_dump(mode="json")
    data["destination"]["connection_string"] = mask_dsn(
        settings.destination.connection_string.get_secret_value()
    )
    for key in ("sasl_password", "schema_registry_password", "schema_registry_token"):
        if data["source"].get(key):
            data["source"][key] = "***"
    data["errors"]["dlq_topic"] = settings.dlq_topic
    return data
