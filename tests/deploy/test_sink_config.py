"""The sink configs the deployments ship (deploy/compose/sink-config.yaml and the
Kubernetes ConfigMap): sections and keys the model knows, and each one loaded by
sink.config with the secrets its deployment injects as ``WARP__`` variables."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    K8S,
    METRICS_PORT,
    ROOT,
    SINK_CONFIG_COMPOSE,
    compose,
    configmap_sink_config,
    deployment,
    k8s,
    load_yaml,
    load_yaml_docs,
    sink_container,
)

CONFIG_SECTIONS = ("source", "destination", "mapping", "errors", "batch", "observability")
# Every key of sink.config's model, per section (test_config_keys_match_the_model keeps the two
# equal): a shipped config may only use these.
CONFIG_KEYS: dict[str, set[str]] = {
    "source": {
        "bootstrap_servers",
        "topics",
        "topic_pattern",
        "group_id",
        "client_id",
        "key_format",
        "value_format",
        "auto_offset_reset",
        "schema_registry_url",
        "schema_registry_username",
        "schema_registry_password",
        "schema_registry_password_file",
        "schema_registry_token",
        "schema_registry_token_file",
        "schema_registry_cafile",
        "security_protocol",
        "sasl_mechanism",
        "sasl_username",
        "sasl_password",
        "sasl_password_file",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        "sasl_oauth_token_url",
        "sasl_oauth_client_id",
        "sasl_oauth_client_secret",
        "sasl_oauth_client_secret_file",
        "sasl_oauth_scope",
        "session_timeout_ms",
        "max_poll_interval_ms",
        "fetch_max_bytes",
    },
    "destination": {
        "type",
        "connection_string",
        "password",
        "password_file",
        "metadata_schema",
        "batch_size",
        "max_connections",
        "min_connections",
        "connection_timeout",
        "command_timeout",
        "enable_soft_deletes",
        "deletion_strategy",
        "hard_delete_after",
        "upsert_mode",
        "string_type",
        "max_retries",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
    },
    "mapping": {"schema_template", "table_template", "overrides", "topic_tables", "truncate",
                "keyless", "keyless_tables", "id_type"},
    "errors": {
        "tolerance",
        "dlq_topic",
        "dlq_max_bytes",
        "retry_deadline_seconds",
        "retry_initial_backoff_seconds",
        "retry_max_backoff_seconds",
    },
    "batch": {"max_records", "max_bytes", "max_age_ms", "max_buffered_bytes"},
    "observability": {"metrics_port", "metrics_host", "log_format", "log_level",
                      "progress_interval_seconds"},
}


def shipped_sink_configs() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("deploy/compose/sink-config.yaml", load_yaml(SINK_CONFIG_COMPOSE)),
        ("deploy/kubernetes/configmap.yaml", configmap_sink_config()),
    ]


@pytest.mark.parametrize("name", ["compose", "kubernetes"])
def test_shipped_sink_config_has_the_sections(name: str) -> None:
    where, config = dict(zip(("compose", "kubernetes"), shipped_sink_configs(), strict=True))[name]
    for section in CONFIG_SECTIONS:
        assert section in config, f"{where}: missing section {section}"
    for section, keys in CONFIG_KEYS.items():
        unknown = set(config[section]) - keys
        assert not unknown, f"{where}: unknown keys in {section}: {unknown}"
    source, dest = config["source"], config["destination"]
    assert ("topics" in source) != ("topic_pattern" in source), "exactly one of topics/pattern"
    assert source["key_format"] in ("json", "avro") and source["value_format"] in ("json", "avro")
    assert dest["type"] == "postgresql"
    assert dest["deletion_strategy"] in ("soft", "hard", "both")
    assert dest["upsert_mode"] in ("on_conflict", "merge")
    assert dest["min_connections"] <= dest["max_connections"]
    assert config["errors"]["tolerance"] in ("all", "none")
    assert config["observability"]["log_format"] in ("json", "console")
    assert config["observability"]["metrics_port"] == METRICS_PORT
    assert isinstance(config["shutdown_timeout"], int | float) and config["shutdown_timeout"] > 0
    # no secrets in the files: the passwords are files of the deployment's secrets
    assert not re.search(r"://[^/@:]+:[^/@]+@", dest["connection_string"]), where
    assert "sasl_password" not in source and "password" not in dest
    assert dest["password_file"].startswith(("/run/secrets/", "/etc/warp-sink-secrets/"))


def test_config_keys_match_the_model() -> None:
    from sink.config import Settings

    sections = {
        name: set(info.annotation.model_fields)  # type: ignore[union-attr]
        for name, info in Settings.model_fields.items()
        if name != "shutdown_timeout"
    }
    assert sections == CONFIG_KEYS
    assert set(CONFIG_SECTIONS) == set(sections)


_COMPOSE_DEFAULT = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def deploy_environment(name: str) -> dict[str, str]:
    """The WARP__ variables the deployment gives the sink: docker-compose.yml's sink service
    environment (``${VAR:-default}`` -> default), or the Deployment's env with its secretKeyRefs
    resolved from secret.example.yaml."""
    if name == "compose":
        env = compose()["services"]["sink"]["environment"]
        items = env.items() if isinstance(env, dict) else (e.split("=", 1) for e in env)
        return {
            k: _COMPOSE_DEFAULT.sub(lambda m: m.group(2) or "", str(v))
            for k, v in items
            if k.startswith("WARP__")
        }
    secrets: dict[str, str] = {}
    for obj in load_yaml_docs(K8S / "secret.example.yaml"):
        secrets.update(obj.get("stringData") or {})
    out = {}
    for item in sink_container().get("env") or []:
        if not item["name"].startswith("WARP__"):
            continue
        if "value" in item:
            out[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "cartridge-warp-sink-secrets", ref
            out[item["name"]] = secrets[ref["key"]]
    return out


def deploy_secret_files(name: str, into: Path) -> dict[str, Path]:
    """The files the deployment mounts for the sink, made locally: container path -> a file
    holding what the deployment puts there (Compose: the secret's default file; Kubernetes:
    secret.example.yaml's values, one file per item of each Secret volume)."""
    if name == "compose":
        declared = compose()["secrets"]
        out = {}
        for secret in compose()["services"]["sink"].get("secrets", []):
            source = _COMPOSE_DEFAULT.sub(lambda m: m.group(2) or "", declared[secret]["file"])
            out[f"/run/secrets/{secret}"] = ROOT / source
        return out
    pod = deployment()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    out = {}
    for mount in sink_container()["volumeMounts"]:
        volume = volumes[mount["name"]].get("secret")
        if volume is None or volume["secretName"] != "cartridge-warp-sink-secrets":
            continue
        data = k8s("Secret", volume["secretName"])["stringData"]
        for item in volume["items"]:
            local = into / item["path"]
            local.write_text(data[item["key"]] + "\n", encoding="utf-8")  # as a file ends
            out[f"{mount['mountPath']}/{item['path']}"] = local
    return out


def shipped_config_text(name: str) -> str:
    if name == "compose":
        return SINK_CONFIG_COMPOSE.read_text(encoding="utf-8")
    return str(k8s("ConfigMap", "cartridge-warp-sink-config")["data"]["config.yaml"])


@pytest.mark.parametrize("name", ["compose", "kubernetes"])
def test_shipped_sink_config_loads_with_the_real_model(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped file, with the secret files and WARP__ variables the deployment gives
    the sink, is a valid configuration for sink.config.load_settings (the one the service
    uses), and the passwords it reads are the secrets' values, masked when shown."""
    from sink import logs
    from sink.config import effective_config, load_settings

    files = deploy_secret_files(name, tmp_path)
    text = shipped_config_text(name)
    for mounted, local in files.items():
        assert mounted in text, f"{mounted} is mounted but the config does not read it"
        text = text.replace(mounted, str(local))
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    for var in list(os.environ):
        if var.upper().startswith("WARP__"):
            monkeypatch.delenv(var)
    env = deploy_environment(name)
    assert "WARP__DESTINATION__CONNECTION_STRING" not in env
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    try:
        settings = load_settings(path)
        shown = json.dumps(effective_config(settings))
    finally:
        logs.clear_secrets()
    raw = yaml.safe_load(text)
    dest = settings.destination
    password = Path(raw["destination"]["password_file"]).read_text(encoding="utf-8").strip()
    assert password and dest.login_password == password
    assert dest.dsn.password is None and password not in shown
    assert "password" not in dest.dsn.for_asyncpg()
    assert settings.observability.metrics_port == METRICS_PORT
    assert settings.shutdown_timeout == raw["shutdown_timeout"]
    assert settings.destination.batch_size == raw["destination"]["batch_size"]
    assert settings.dlq_topic == raw["errors"]["dlq_topic"]
    if name == "kubernetes":
        src = settings.source
        sasl = Path(raw["source"]["sasl_password_file"]).read_text(encoding="utf-8").strip()
        assert (src.security_protocol, src.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
        assert src.sasl_username == env["WARP__SOURCE__SASL_USERNAME"]
        assert src.sasl_password is not None and src.sasl_password.get_secret_value() == sasl
        assert sasl not in shown
        assert settings.destination.sslmode == "verify-full"
    else:
        assert settings.source.topic_pattern == raw["source"]["topic_pattern"]


@pytest.mark.parametrize("missing", ["files", "username"])
def test_shipped_sink_config_needs_its_injected_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, missing: str
) -> None:
    """Without the Secret's files, or its SASL user name variable, the Kubernetes config is
    refused (exit 2 naming the keys), not started with a half-configured login."""
    from sink import logs
    from sink.config import load_settings
    from sink.errors import ConfigError

    text = shipped_config_text("kubernetes")
    if missing == "username":
        for mounted, local in deploy_secret_files("kubernetes", tmp_path).items():
            text = text.replace(mounted, str(local))
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    for var in list(os.environ):
        if var.upper().startswith("WARP__"):
            monkeypatch.delenv(var)
    expected = (r"source\.sasl_username: required" if missing == "username" else
                r"source\.sasl_password_file: the file /etc/warp-sink-secrets/sasl-password "
                r"does not exist.*destination\.password_file: the file "
                r"/etc/warp-sink-secrets/destination-password does not exist")
    try:
        with pytest.raises(ConfigError, match=expected):
            load_settings(path)
    finally:
        logs.clear_secrets()
