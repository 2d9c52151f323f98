"""The one configuration model: a YAML file, then ``WARP__SECTION__KEY`` environment
variables, then command-line overrides (``--set section.key=value``, highest).

* The seed's ``destination:`` block is accepted exactly as the seed writes it, keys and
  all. A file holding only that block (the seed's two examples) loads as soon as a
  ``source`` subscription is given some other way, e.g.
  ``WARP__SOURCE__TOPICS='["t"]'`` or ``--set source.topics=["t"]``: ``source`` has no
  usable default (there is no sensible default topic), everything else has defaults.
* Environment variables and flags carry strings. They are read the same way: numbers and
  booleans are coerced by the model; lists and mappings are JSON (``'["a","b"]'``; a list
  of names may also be written ``a,b``); ``null`` or an empty value clears an optional
  key (``--set source.topic_pattern=null`` when switching to ``topics``); enum values are
  matched case-insensitively (``log_level: INFO``).
* Every problem raises :class:`ConfigError` naming the key, what is wrong with the value,
  the allowed values and where the value came from. Secret values are never echoed.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import types
import typing
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from . import logs
from .errors import ConfigError

ENV_PREFIX = "WARP__"
MASK = "***"
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def _rule(key: str, problem: str) -> PydanticCustomError:
    """A cross-field rule broken: ``key`` is the field (relative to the section) to blame."""
    return PydanticCustomError("config_rule", "{problem}", {"field": key, "problem": problem})


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        return (args[0] if len(args) == 1 else annotation), optional
    return annotation, False


def _from_text(name: str, info: FieldInfo, value: Any) -> Any:
    """Read a value given as text (environment variable, ``--set``) for the field's type."""
    annotation, optional = _strip_optional(info.annotation)
    origin = typing.get_origin(annotation)
    if isinstance(value, str) and optional and value.strip().lower() in ("", "null"):
        return None
    if origin is Literal and isinstance(value, str):
        choices = [c for c in typing.get_args(annotation) if isinstance(c, str)]
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
        return value
    if not isinstance(value, str):
        return value
    text = value.strip()
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    if origin in (list, dict) or is_model:
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise _rule(name, f"not valid JSON ({exc.msg} at character {exc.pos})") from None
        if origin is list:
            return [part.strip() for part in text.split(",") if part.strip()]
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _read_text(cls, data: Any) -> Any:
        if isinstance(data, str) and data.strip().startswith("{"):
            try:
                data = json.loads(data)
            except json.JSONDecodeError:
                return data
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {k: (_from_text(k, fields[k], v) if k in fields else v) for k, v in data.items()}


class SourceConfig(_Section):
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
            raise _rule("topic_pattern", "set either source.topics or source.topic_pattern, not "
                        "both (clear one with null, e.g. --set source.topic_pattern=null)")
        if not self.topics and not self.topic_pattern:
            raise _rule("topics", "no subscription: set source.topics (a list of topic names, "
                        "e.g. WARP__SOURCE__TOPICS='[\"t\"]') or source.topic_pattern (a regex)")
        if self.topic_pattern is not None:
            try:
                re.compile(self.topic_pattern)
            except re.error as exc:
                raise _rule("topic_pattern", f"not a valid regular expression: {exc}") from None
        sasl = self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")
        if self.sasl_mechanism and not sasl:
            raise _rule("sasl_mechanism", "needs security_protocol SASL_PLAINTEXT or SASL_SSL "
                        f"(security_protocol is {self.security_protocol})")
        if sasl and not self.sasl_username:
            raise _rule("sasl_username", f"required with security_protocol "
                        f"{self.security_protocol} (e.g. WARP__SOURCE__SASL_USERNAME)")
        if sasl and self.sasl_password is None:
            raise _rule("sasl_password", f"required with security_protocol "
                        f"{self.security_protocol} (e.g. WARP__SOURCE__SASL_PASSWORD)")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise _rule("ssl_keyfile", "needs ssl_certfile (the client certificate it belongs to)")
        url = self.schema_registry_url
        if "avro" in (self.key_format, self.value_format) and not url:
            raise _rule("schema_registry_url", "required when key_format or value_format is "
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
                    raise _rule("schema_registry_url", "must be an http:// or https:// URL "
                                "with a host (several: comma-separated)")
        if self.schema_registry_token is not None and (
            self.schema_registry_username or self.schema_registry_password is not None
        ):
            raise _rule("schema_registry_token", "set schema_registry_token (bearer) or "
                        "schema_registry_username/schema_registry_password (basic), not both")
        return self


SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


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
    sslmode: SslMode | None = None
    sslrootcert: str | None = None

    @model_validator(mode="after")
    def _rules(self) -> DestinationConfig:
        if self.min_connections > self.max_connections:
            raise _rule("min_connections", f"min_connections ({self.min_connections}) must not "
                        f"exceed max_connections ({self.max_connections})")
        problem = _dsn_problem(self.connection_string.get_secret_value())
        if problem:
            raise _rule("connection_string", problem)
        if self.hard_delete_after <= timedelta(0):
            raise _rule("hard_delete_after", "must be a positive duration (e.g. P7D or 604800)")
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

    @model_validator(mode="after")
    def _rules(self) -> ErrorsConfig:
        if self.dlq_topic is not None and not _TOPIC_NAME.fullmatch(self.dlq_topic):
            raise _rule("dlq_topic", "not a Kafka topic name (1-249 characters of "
                        "A-Z a-z 0-9 . _ -)")
        if self.retry_max_backoff_seconds < self.retry_initial_backoff_seconds:
            raise _rule("retry_max_backoff_seconds",
                        "must not be below retry_initial_backoff_seconds")
        return self


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


@dataclass
class _Inputs:
    """What the sources of one ``load_settings`` call hold, and where each key came from."""

    yaml: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    file: str = "the config file"
    env_names: dict[tuple[str, ...], str] = field(default_factory=dict)


_INPUTS: ContextVar[_Inputs | None] = ContextVar("warp_config_inputs", default=None)


class _Given(PydanticBaseSettingsSource):
    """One of the prepared inputs (YAML file or environment) as a settings source."""

    def __init__(self, settings_cls: type[BaseSettings], which: str) -> None:
        super().__init__(settings_cls)
        self.which = which

    def _data(self) -> dict[str, Any]:
        inputs = _INPUTS.get()
        data: dict[str, Any] = getattr(inputs, self.which) if inputs is not None else {}
        return data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data())


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
        return (init_settings, _Given(settings_cls, "env"), _Given(settings_cls, "yaml"))

    @property
    def dlq_topic(self) -> str:
        return self.errors.dlq_topic or f"{self.source.group_id}.dlq"

    @property
    def max_batch_records(self) -> int:
        return self.batch.max_records or self.destination.batch_size


# --- loading -------------------------------------------------------------------------


def _set_path(out: dict[str, Any], parts: list[str], value: Any, name: str) -> None:
    node = out
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{name}: {'.'.join(parts[:-1])} is given both as a whole value "
                              "and key by key")
        node = child
    if isinstance(node.get(parts[-1]), dict) and not isinstance(value, dict):
        raise ConfigError(f"{name}: {'.'.join(parts)} is given both as a whole value and "
                          "key by key")
    node[parts[-1]] = value


def _from_env(environ: typing.Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...],
                                                                                  str]]:
    data: dict[str, Any] = {}
    names: dict[tuple[str, ...], str] = {}
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if not all(parts):
            raise ConfigError(f"{name}: not a WARP__SECTION__KEY name")
        _set_path(data, parts, environ[name], name)
        names[tuple(parts)] = name
    return data, names


def _from_flags(overrides: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = [p.strip().lower() for p in key.split(".")]
        if not all(parts):
            raise ConfigError(f"--set {key}=...: not a section.key name")
        _set_path(data, parts, value, f"--set {key}")
    return data


def _given(data: Any, loc: tuple[str, ...]) -> bool:
    """True when ``data`` sets ``loc``, itself or as part of a whole value (JSON text)."""
    for part in loc:
        if not isinstance(data, dict):
            return True  # a whole value (e.g. WARP__SOURCE='{...}') covers what is below
        if part not in data:
            return False
        data = data[part]
    return True


def _origin(inputs: _Inputs, loc: tuple[str, ...]) -> str:
    if not loc:
        return ""
    if _given(inputs.flags, loc):
        return f"--set {'.'.join(loc)}"
    if _given(inputs.env, loc):
        for n in range(len(loc), 0, -1):
            if loc[:n] in inputs.env_names:
                return inputs.env_names[loc[:n]]
        return "the environment"
    if _given(inputs.yaml, loc):
        return inputs.file
    return ""


def _allowed_keys(loc: tuple[str, ...]) -> list[str]:
    model: Any = Settings
    for part in loc:
        fields = getattr(model, "model_fields", {})
        info = fields.get(part) if isinstance(fields, dict) else None
        if info is None:
            return []
        model = _strip_optional(info.annotation)[0]
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _is_secret(key: str) -> bool:
    return any(s in key for s in ("password", "token", "connection_string", "secret"))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_MISSING_HINTS = {
    "source": " (at least a subscription: source.topics, e.g. WARP__SOURCE__TOPICS='[\"t\"]' "
    "or --set source.topics=[\"t\"], or source.topic_pattern)",
    "destination": " (at least destination.connection_string, a postgresql:// URL)",
    "destination.connection_string": " (a postgresql:// URL, e.g. from "
    "WARP__DESTINATION__CONNECTION_STRING)",
}


def _describe(err: Any, inputs: _Inputs) -> str:
    loc = tuple(str(p) for p in err["loc"] if not isinstance(p, int))
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "config_rule":
        loc = (*loc, str(ctx["field"]))
    key = ".".join(loc) or "(top level)"
    value = err.get("input")
    scalar = isinstance(value, (str, int, float, bool)) and not _is_secret(key)
    got = f" (got {_shown(value)})" if scalar else ""
    where = _origin(inputs, loc)
    where = f" [from {where}]" if where else ""
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        near = get_close_matches(loc[-1], allowed, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return (f"{key}: unknown key{where}{hint} (allowed: {', '.join(allowed)})")
    if kind == "missing":
        return f"{key}: required but not set{where}{_MISSING_HINTS.get(key, '')}"
    if kind == "config_rule":
        return f"{key}: {ctx['problem']}{where}"
    if kind == "literal_error":
        return (f"{key}: {_shown(value) if scalar else 'value'} is not an allowed value{where} "
                f"(allowed: {ctx.get('expected', '')})")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}[kind]
        limit = next(iter(ctx.values()), "")
        return f"{key}: {_shown(value) if scalar else 'value'} is out of range{where} " \
               f"(allowed: {op} {limit})"
    msg = str(err["msg"]).removeprefix("Value error, ")
    expected = {
        "int_parsing": "a whole number", "int_type": "a whole number",
        "int_from_float": "a whole number", "float_parsing": "a number",
        "float_type": "a number", "bool_parsing": "true or false", "bool_type": "true or false",
        "list_type": 'a list, e.g. ["a", "b"]', "dict_type": "a mapping",
        "model_type": "a mapping of keys", "model_attributes_type": "a mapping of keys",
        "string_type": "a string", "time_delta_parsing": "a duration: seconds or ISO 8601 "
        "(P7D)", "string_too_short": "a non-empty string", "string_too_long": "a shorter "
        "string",
    }.get(kind)
    tail = f" (expected {expected})" if expected else ""
    return f"{key}: {msg}{got}{where}{tail}"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable (permission denied)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Not str(exc): PyYAML quotes the offending line, which may hold a secret.
        problem = getattr(exc, "problem", None) or "cannot parse"
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML: {problem}{at}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections "
                          f"(source, destination, ...), not a {type(loaded).__name__}")
    return {str(k).lower() if isinstance(k, str) else k: v for k, v in loaded.items()}


def load_settings(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: typing.Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate the configuration: ``path`` (YAML) < ``WARP__`` variables in
    ``environ`` (default ``os.environ``) < ``overrides`` (``{"section.key": value}``,
    values may be strings as the command line gives them).

    Raises ConfigError naming the key, the problem and the allowed values. The secrets of
    the loaded configuration are registered with :func:`sink.logs.register_secrets`, so
    that no log line or printed error shows them.
    """
    inputs = _Inputs()
    if path is not None:
        inputs.yaml = _read_yaml(Path(path))
        inputs.file = str(path)
    inputs.env, inputs.env_names = _from_env(os.environ if environ is None else environ)
    inputs.flags = _from_flags(overrides or {})
    token = _INPUTS.set(inputs)
    try:
        settings = Settings(**inputs.flags)
    except ValidationError as exc:
        problems = "; ".join(_describe(e, inputs) for e in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None
    finally:
        _INPUTS.reset(token)
    logs.register_secrets(*secret_values(settings))
    return settings


# --- secrets -------------------------------------------------------------------------


def secret_values(settings: Settings) -> list[str]:
    """Every secret the configuration holds, as it may appear in text (raw and URL-decoded)."""
    src, dest = settings.source, settings.destination
    out: list[str] = []
    for secret in (src.sasl_password, src.schema_registry_password, src.schema_registry_token):
        if secret is not None:
            out.append(secret.get_secret_value())
    urls = [dest.connection_string.get_secret_value(), *(src.schema_registry_url or "").split(",")]
    for url in urls:
        out.extend(_url_passwords(url.strip()))
    return [s for s in {*out, *(unquote(s) for s in out)} if s]


def _url_passwords(url: str) -> list[str]:
    found = [m.group(2) for m in [_DSN_PASSWORD.search(url)] if m is not None]
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        found.append(password)
    found.extend(m.group(1) for m in re.finditer(r"(?i)[?&]password=([^&#]*)", url))
    return found


_DSN_PASSWORD = re.compile(r"(://[^:/@\s]*:)(.*)(@[^@]*)$")


def mask_dsn(dsn: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db`` (and ``password=`` params)."""
    masked = _DSN_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", dsn)
    return re.sub(r"(?i)([?&]password=)[^&#]*", rf"\g<1>{MASK}", masked)


def effective_config(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, secrets masked (for ``config show``)."""
    data = settings.model_dump(mode="json")
    for section_name, section in settings:
        if not isinstance(section, BaseModel):
            continue
        for key, value in section:
            if isinstance(value, SecretStr):
                data[section_name][key] = MASK
    data["destination"]["connection_string"] = mask_dsn(
        settings.destination.connection_string.get_secret_value()
    )
    if settings.source.schema_registry_url:
        data["source"]["schema_registry_url"] = ",".join(
            mask_dsn(u) for u in settings.source.schema_registry_url.split(","))
    data["errors"]["dlq_topic"] = settings.dlq_topic
    data["batch"]["max_records"] = settings.max_batch_records
    return data


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
