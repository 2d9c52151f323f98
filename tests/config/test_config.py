"""The configuration model (no servers): precedence YAML < WARP__ environment < --set flags,
string coercion, the seed's two examples, every kind of bad value (exit 2 naming the key,
the problem and the allowed values), `config show` masking, and the Kafka / PostgreSQL
security settings as the clients receive them."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sink import logs
from sink.cli import main
from sink.config import (
    Settings,
    effective_config,
    load_settings,
    mask_dsn,
    postgres_ssl,
    secret_values,
)
from sink.errors import ConfigError
from sink.service import kafka
from tests import paths

# The seed README's two examples, verbatim (seed/000_c9400512ced657bf.txt, "Quick Start").
SEED_BASIC = """\
destination:
  type: "postgresql"
  connection_string: "postgresql://user:password@localhost:5432/warehouse"
  metadata_schema: "cartridge_warp_metadata"
"""
SEED_ADVANCED = """\
destination:
  type: "postgresql"
  connection_string: "postgresql://user:password@localhost:5432/warehouse"
  metadata_schema: "cartridge_warp_metadata"
  
  # Connection settings
  max_connections: 20
  min_connections: 5
  connection_timeout: 30.0
  command_timeout: 60.0
  
  # Performance settings
  batch_size: 1000
  max_retries: 3
  
  # Delete strategy
  deletion_strategy: "soft"  # "soft", "hard", "both"
  enable_soft_deletes: true
  
  # UPSERT mode
  upsert_mode: "on_conflict"  # "on_conflict", "merge"
"""  # noqa: W293 (the seed's blank lines hold two spaces)
SEED_FILE = paths.SEED / "000_c9400512ced657bf.txt"

BASE = """\
source:
  bootstrap_servers: "127.0.0.1:9092"
  topics: ["mongo.shop.users"]
  group_id: "g1"
destination:
  connection_string: "postgresql://warp:s3cr3t-Pw@db.example:5432/warehouse"
  batch_size: 100
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("WARP__"):
            monkeypatch.delenv(name)
    yield
    logs.clear_secrets()


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def show(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["config", "show", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- the seed's examples ---------------------------------------------------------------


def test_seed_examples_are_verbatim() -> None:
    seed = SEED_FILE.read_text(encoding="utf-8")
    assert f"```yaml\n{SEED_BASIC}```" in seed
    assert f"```yaml\n{SEED_ADVANCED}```" in seed


@pytest.mark.parametrize("text", [SEED_BASIC, SEED_ADVANCED], ids=["basic", "advanced"])
def test_seed_example_loads_with_a_source_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    path = write(tmp_path, text)
    monkeypatch.setenv("WARP__SOURCE__TOPICS", '["t"]')
    s = load_settings(path)
    d = s.destination
    assert s.source.topics == ["t"]
    assert d.type == "postgresql"
    assert d.connection_string.get_secret_value() == (
        "postgresql://user:password@localhost:5432/warehouse")
    assert d.metadata_schema == "cartridge_warp_metadata"
    if text is SEED_ADVANCED:
        assert (d.max_connections, d.min_connections) == (20, 5)
        assert (d.connection_timeout, d.command_timeout) == (30.0, 60.0)
        assert (d.batch_size, d.max_retries) == (1000, 3)
        assert (d.deletion_strategy, d.enable_soft_deletes, d.upsert_mode) == (
            "soft", True, "on_conflict")
    else:  # the seed's constructor defaults
        assert (d.batch_size, d.max_connections, d.min_connections) == (1000, 10, 2)
        assert (d.connection_timeout, d.command_timeout, d.max_retries) == (30.0, 60.0, 3)
        assert (d.deletion_strategy, d.upsert_mode, d.enable_soft_deletes) == (
            "soft", "on_conflict", True)


def test_seed_example_loads_with_a_source_from_flags(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, SEED_BASIC), {"source.topic_pattern": r"mongo\..*"})
    assert s.source.topic_pattern == r"mongo\..*" and s.source.topics == []


def test_seed_example_alone_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = show(capsys, "--config", str(write(tmp_path, SEED_BASIC)))
    assert code == 2 and out == ""
    assert "source: required but not set" in err
    assert "WARP__SOURCE__TOPICS" in err and "source.topic_pattern" in err
    assert "password" not in err.replace("required", "")


# --- precedence and coercion --------------------------------------------------------------


def test_precedence_yaml_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, BASE)
    assert load_settings(path).destination.batch_size == 100
    monkeypatch.setenv("WARP__DESTINATION__BATCH_SIZE", "200")
    monkeypatch.setenv("warp__source__group_id", "from-env")  # names are case-insensitive
    s = load_settings(path)
    assert s.destination.batch_size == 200 and s.source.group_id == "from-env"
    s = load_settings(path, {"destination.batch_size": "5", "source.group_id": "flag"})
    assert s.destination.batch_size == 5 and s.source.group_id == "flag"
    # the rest of each section still comes from the lower layers (deep merge)
    assert s.destination.connection_string.get_secret_value().endswith("/warehouse")
    assert s.source.topics == ["mongo.shop.users"]


def test_flags_given_as_strings_coerce(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE), {
        "destination.batch_size": "5",
        "source.topics": '["a","b"]',
        "destination.enable_soft_deletes": "false",
        "destination.connection_timeout": "2.5",
        "destination.hard_delete_after": "P2D",
        "mapping.overrides": '{"shop.users": "crm.people"}',
        "observability.log_level": "DEBUG",
        "source.security_protocol": "plaintext",
        "batch.max_records": "null",
        "errors.retry_deadline_seconds": "0",
        "shutdown_timeout": "12",
    })
    assert s.destination.batch_size == 5
    assert s.source.topics == ["a", "b"]
    assert s.destination.enable_soft_deletes is False
    assert s.destination.connection_timeout == 2.5
    assert s.destination.hard_delete_after == timedelta(days=2)
    assert s.mapping.overrides == {"shop.users": "crm.people"}
    assert s.observability.log_level == "debug"
    assert s.source.security_protocol == "PLAINTEXT"
    assert s.batch.max_records is None and s.max_batch_records == 5
    assert s.shutdown_timeout == 12.0


def test_env_lists_as_json_or_commas_and_whole_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, SEED_BASIC)
    monkeypatch.setenv("WARP__SOURCE__TOPICS", '["a", "b"]')
    assert load_settings(path).source.topics == ["a", "b"]
    monkeypatch.setenv("WARP__SOURCE__TOPICS", "a, b,c")
    assert load_settings(path).source.topics == ["a", "b", "c"]
    monkeypatch.delenv("WARP__SOURCE__TOPICS")
    monkeypatch.setenv("WARP__SOURCE", '{"topic_pattern": "x.*", "group_id": "j"}')
    s = load_settings(path)
    assert (s.source.topic_pattern, s.source.group_id) == ("x.*", "j")


def test_switching_subscription_with_null(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE),
                      {"source.topics": "[]", "source.topic_pattern": "^mongo\\."})
    assert s.source.topics == [] and s.source.topic_pattern == "^mongo\\."
    s = load_settings(write(tmp_path, BASE.replace('topics: ["mongo.shop.users"]',
                                                   'topic_pattern: "x"')),
                      {"source.topic_pattern": "null", "source.topics": "y"})
    assert s.source.topic_pattern is None and s.source.topics == ["y"]


def test_uppercase_enum_values_in_yaml(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE + "observability:\n  log_level: INFO\n"
                                              "  log_format: JSON\n"))
    assert (s.observability.log_level, s.observability.log_format) == ("info", "json")


def test_load_settings_takes_an_explicit_environment(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, SEED_BASIC), environ={"WARP__SOURCE__TOPICS": "q"})
    assert s.source.topics == ["q"]


def test_flush_size_follows_an_explicit_batch_size_else_the_fast_default(
    tmp_path: Path,
) -> None:
    # The seed's configs say batch_size: 1000 and get exactly that; a config that says
    # nothing gets flushes big enough for the COPY path; batch.max_records wins over both.
    seedlike = BASE.replace("batch_size: 100", "batch_size: 1000")
    assert load_settings(write(tmp_path, seedlike)).max_batch_records == 1000
    plain = BASE.replace("  batch_size: 100\n", "")
    assert "batch_size" not in plain
    s = load_settings(write(tmp_path, plain))
    assert s.destination.batch_size == 1000  # the seed's constructor default, unchanged
    assert s.max_batch_records == 5000
    s = load_settings(write(tmp_path, plain + "batch:\n  max_records: 300\n"),
                      {"destination.batch_size": "40"})
    assert s.max_batch_records == 300
    assert load_settings(write(tmp_path, plain), {"destination.batch_size": "40"}
                         ).max_batch_records == 40
    assert s.batch.max_age_ms == 200


def test_defaults_and_derived_values(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE))
    assert s.dlq_topic == "g1.dlq"
    assert s.max_batch_records == 100
    assert s.observability.metrics_port == 9108
    assert s.errors.tolerance == "all"
    assert s.mapping.id_type == "auto"
    assert load_settings(write(tmp_path, BASE), {"mapping.id_type": "text"}).mapping.id_type \
        == "text"


def test_dlq_max_bytes_defaults_to_what_the_consumer_fetches(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE))
    assert s.errors.dlq_max_bytes is None
    assert s.dlq_max_bytes == s.source.fetch_max_bytes + 1024 * 1024
    s = load_settings(write(tmp_path, BASE), {"source.fetch_max_bytes": "2000000"})
    assert s.dlq_max_bytes == 2_000_000 + 1024 * 1024
    s = load_settings(write(tmp_path, BASE), {"errors.dlq_max_bytes": "4194304"})
    assert s.dlq_max_bytes == 4_194_304


# --- bad values: exit 2, naming the key, the problem and the allowed values ---------------

BAD: list[tuple[str, list[str], str, list[str]]] = [
    # (id, --set flags, yaml, fragments that must all be in the one stderr line)
    ("unknown key", ["source.topicz=a"], BASE,
     ["source.topicz: unknown key", "did you mean 'topics'", "allowed: bootstrap_servers",
      "--set source.topicz"]),
    ("unknown section", ["destinaton.batch_size=1"], BASE,
     ["destinaton: unknown key", "did you mean 'destination'", "allowed: source, destination"]),
    ("wrong enum", ["source.value_format=xml"], BASE,
     ["source.value_format: 'xml' is not an allowed value", "allowed: 'json' or 'avro'"]),
    ("wrong enum deletion", ["destination.deletion_strategy=purge"], BASE,
     ["destination.deletion_strategy: 'purge'", "'soft', 'hard' or 'both'"]),
    ("wrong enum id_type", ["mapping.id_type=bigint"], BASE,
     ["mapping.id_type: 'bigint' is not an allowed value", "allowed: 'auto' or 'text'"]),
    ("negative number", ["destination.batch_size=-5"], BASE,
     ["destination.batch_size: '-5' is out of range", "allowed: >= 1"]),
    ("negative timeout", ["destination.connection_timeout=-1"], BASE,
     ["destination.connection_timeout", "out of range", "allowed: > 0"]),
    ("DLQ size too small", ["errors.dlq_max_bytes=1000"], BASE,
     ["errors.dlq_max_bytes: '1000' is out of range", "allowed: >= 65536"]),
    ("port too large", ["observability.metrics_port=70000"], BASE,
     ["observability.metrics_port", "out of range", "allowed: <= 65535"]),
    ("wrong type int", ["destination.batch_size=lots"], BASE,
     ["destination.batch_size", "valid integer", "got 'lots'", "expected a whole number"]),
    ("wrong type bool", ["destination.enable_soft_deletes=perhaps"], BASE,
     ["destination.enable_soft_deletes", "got 'perhaps'", "expected true or false"]),
    ("wrong type list", [], BASE.replace('["mongo.shop.users"]', "{a: 1}"),
     ["source.topics", "expected a list"]),
    ("bad JSON list", ['source.topics=["a",'], BASE,
     ["source.topics: not valid JSON", "--set source.topics"]),
    ("both topics and pattern", ["source.topic_pattern=^x"], BASE,
     ["source.topic_pattern: set either source.topics or source.topic_pattern, not both"]),
    ("neither topics nor pattern", ["source.topics=[]"], BASE,
     ["source.topics: no subscription", "source.topic_pattern (a regex)"]),
    ("invalid regex", ["source.topics=[]", "source.topic_pattern=mongo.(shop"], BASE,
     ["source.topic_pattern: not a valid regular expression", "missing )"]),
    ("bad topic name", ['source.topics=["a b"]'], BASE,
     ["source.topics", "'a b' is not a Kafka topic name"]),
    ("avro without registry", ["source.value_format=avro"], BASE,
     ["source.schema_registry_url: required when key_format or value_format is avro"]),
    ("registry not a URL", ["source.schema_registry_url=registry:8081"], BASE,
     ["source.schema_registry_url: must be an http:// or https:// URL"]),
    ("sasl without protocol", ["source.sasl_mechanism=PLAIN"], BASE,
     ["source.sasl_mechanism: needs security_protocol SASL_PLAINTEXT or SASL_SSL"]),
    ("sasl without password", ["source.security_protocol=SASL_SSL", "source.sasl_username=u"],
     BASE, ["source.sasl_password: required with security_protocol SASL_SSL"]),
    ("bad protocol", ["source.security_protocol=TLS"], BASE,
     ["source.security_protocol: 'TLS'", "'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'"]),
    ("min above max", ["destination.min_connections=30"], BASE,
     ["destination.min_connections: min_connections (30) must not exceed max_connections (10)"]),
    ("bad DSN scheme", ["destination.connection_string=mysql://u:topsecret9@h/db"], BASE,
     ["destination.connection_string: must be a postgresql:// or postgres:// URL",
      "scheme 'mysql'"]),
    ("bad DSN port", ["destination.connection_string=postgresql://u:topsecret9@h:xx/db"], BASE,
     ["destination.connection_string: has a port that is not a number"]),
    ("DSN password with a slash", ["destination.connection_string=postgresql://u:top/secret9@h/db"],
     BASE, ["destination.connection_string: holds a raw '@' after the user part",
            "destination.password_file"]),
    ("bad sslmode", ["destination.sslmode=sometimes"], BASE,
     ["destination.sslmode: 'sometimes'", "'verify-full'"]),
    ("bad bootstrap", ["source.bootstrap_servers=kafka"], BASE,
     ["source.bootstrap_servers", "'kafka' is not host:port"]),
    ("missing DSN", [], "source:\n  topics: [a]\ndestination:\n  type: postgresql\n",
     ["destination.connection_string: required but not set"]),
    ("wrong destination type", ["destination.type=mysql"], BASE,
     ["destination.type: 'mysql' is not an allowed value", "allowed: 'postgresql'"]),
    ("file not a mapping", [], "- a\n- b\n", ["must hold a mapping of sections"]),
    ("bad --set syntax", ["batch_size"], BASE, ["--set takes section.key=value"]),
]


@pytest.mark.parametrize(("flags", "yaml_text", "expected"),
                         [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_values_exit_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], yaml_text: str,
    expected: list[str],
) -> None:
    argv = ["--config", str(write(tmp_path, yaml_text))]
    for flag in flags:
        argv += ["--set", flag]
    code, out, err = show(capsys, *argv)
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warp-sink: "), err
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    assert "s3cr3t-Pw" not in err and "topsecret9" not in err and "secret9" not in err


def test_bad_value_from_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WARP__DESTINATION__MAX_CONNECTIONS", "-1")
    code, _, err = show(capsys, "--config", str(write(tmp_path, BASE)))
    assert code == 2
    assert "destination.max_connections: '-1' is out of range [from " \
           "WARP__DESTINATION__MAX_CONNECTIONS] (allowed: >= 1)" in err


def test_bad_value_in_the_file_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, BASE + "errors:\n  tolerance: some\n")
    code, _, err = show(capsys, "--config", str(path))
    assert code == 2
    assert f"errors.tolerance: 'some' is not an allowed value [from {path}]" in err
    assert "allowed: 'all' or 'none'" in err


def test_several_problems_are_all_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = show(capsys, "--config", str(write(tmp_path, BASE)),
                        "--set", "batch.max_age_ms=0", "--set", "errors.tolerance=maybe")
    assert code == 2
    assert "batch.max_age_ms" in err and "errors.tolerance" in err


def test_unreadable_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, 'destination:\n  connection_string: "postgresql://u:leaky99@h/db\n'
                           "  batch_size: [1,\n")
    code, out, err = show(capsys, "--config", str(path))
    assert code == 2 and out == ""
    assert f"config file {path} is not valid YAML" in err and "line " in err
    assert "leaky99" not in err  # PyYAML's quoted snippet of the line is not repeated


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = show(capsys, "--config", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert f"warp-sink: config file not found: {tmp_path / 'nope.yaml'}" in err


def test_file_without_read_permission(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BASE)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        code, _, err = show(capsys, "--config", str(path))
    finally:
        path.chmod(0o600)
    assert code == 2 and "is not readable (permission denied)" in err


def test_directory_as_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = show(capsys, "--config", str(tmp_path))
    assert code == 2 and "is a directory" in err


def test_run_and_check_reject_bad_config_with_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write(tmp_path, BASE))
    for command in ("run", "check"):
        assert main([command, "--config", path, "--set", "source.key_format=xml"]) == 2
        assert "source.key_format" in capsys.readouterr().err


def test_load_settings_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"destination\.batch_size"):
        load_settings(write(tmp_path, BASE), {"destination.batch_size": "0"})


# --- secrets ---------------------------------------------------------------------------

SECRETS_YAML = BASE.replace("s3cr3t-Pw", "dsn-Pw-123") + """\
  sslmode: verify-full
  sslrootcert: /etc/ca.pem
"""


def test_config_show_masks_every_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = show(
        capsys, "--config", str(write(tmp_path, SECRETS_YAML)),
        "--set", "source.security_protocol=SASL_SSL",
        "--set", "source.sasl_mechanism=SCRAM-SHA-512",
        "--set", "source.sasl_username=sink",
        "--set", "source.sasl_password=sasl-Pw-456",
        "--set", "source.schema_registry_url=https://reg-user:url-Pw-789@registry:8081",
    )
    assert code == 0, err
    for secret in ("dsn-Pw-123", "sasl-Pw-456", "url-Pw-789"):
        assert secret not in out
    data = json.loads(out)
    assert data["destination"]["connection_string"] == (
        "postgresql://warp:***@db.example:5432/warehouse")
    assert data["source"]["sasl_password"] == "***"
    assert data["source"]["sasl_username"] == "sink"
    assert data["source"]["schema_registry_url"] == "https://reg-user:***@registry:8081"
    assert data["destination"]["sslmode"] == "verify-full"
    assert data["errors"]["dlq_topic"] == "g1.dlq"
    assert data["batch"]["max_records"] == 100
    assert set(data) == {"source", "destination", "mapping", "errors", "batch", "observability",
                         "shutdown_timeout"}


def test_config_show_masks_registry_password_and_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(write(tmp_path, BASE)),
            "--set", "source.schema_registry_url=http://registry:8081"]
    code, out, _ = show(capsys, *base, "--set", "source.schema_registry_username=u",
                        "--set", "source.schema_registry_password=reg-Pw-1")
    assert code == 0 and "reg-Pw-1" not in out
    assert json.loads(out)["source"]["schema_registry_password"] == "***"
    code, out, _ = show(capsys, *base, "--set", "source.schema_registry_token=tok-Pw-2")
    assert code == 0 and "tok-Pw-2" not in out
    assert json.loads(out)["source"]["schema_registry_token"] == "***"


def test_secrets_are_registered_for_scrubbing(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE.replace("s3cr3t-Pw", "p%40ss-word9")),
                      {"source.schema_registry_url": "http://r:1", "source.schema_registry_"
                       "username": "u", "source.schema_registry_password": "reg-secret-3"})
    values = set(secret_values(s))
    assert {"p%40ss-word9", "p@ss-word9", "reg-secret-3"} <= values
    assert logs.scrub("auth p@ss-word9 / reg-secret-3 failed") == "auth *** / *** failed"


@pytest.mark.parametrize(("dsn", "masked"), [
    ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("postgresql://h/db?user=u&password=secret&sslmode=require",
     "postgresql://h/db?user=u&password=***&sslmode=require"),
    ("postgres://u:a:b@h/db", "postgres://u:***@h/db"),
])
def test_mask_dsn(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked


# --- security settings as the clients get them ----------------------------------------------


def _settings(tmp_path: Path, **flags: str) -> Settings:
    return load_settings(write(tmp_path, BASE), {f"source.{k}": v for k, v in flags.items()})


def test_kafka_plaintext_kwargs(tmp_path: Path) -> None:
    assert kafka.security_kwargs(_settings(tmp_path).source) == {"security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_sasl_plaintext_kwargs(tmp_path: Path, mechanism: str) -> None:
    src = _settings(tmp_path, security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                    sasl_username="sink", sasl_password="sasl-pw").source
    assert kafka.security_kwargs(src) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
        "sasl_plain_username": "sink", "sasl_plain_password": "sasl-pw",
    }


def test_kafka_sasl_defaults_to_plain(tmp_path: Path) -> None:
    src = _settings(tmp_path, security_protocol="SASL_PLAINTEXT", sasl_username="sink",
                    sasl_password="pw").source
    assert kafka.security_kwargs(src)["sasl_mechanism"] == "PLAIN"


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate (CN warp-test) and its key, made with the openssl tool."""
    tool = shutil.which("openssl")
    if tool is None:
        pytest.skip("no openssl tool to make a test certificate")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([tool, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key_path),
                    "-out", str(cert_path), "-days", "1", "-subj", "/CN=warp-test"],
                   check=True, capture_output=True, timeout=30)
    return cert_path, key_path


def test_kafka_ssl_kwargs(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    src = _settings(tmp_path, security_protocol="SSL", ssl_cafile=str(cert),
                    ssl_certfile=str(cert), ssl_keyfile=str(key)).source
    kw = kafka.security_kwargs(src)
    assert set(kw) == {"security_protocol", "ssl_context"}
    ctx = kw["ssl_context"]
    assert kw["security_protocol"] == "SSL" and isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert any(c.get("subject") == ((("commonName", "warp-test"),),)
               for c in ctx.get_ca_certs())


def test_kafka_sasl_ssl_kwargs(tmp_path: Path) -> None:
    src = _settings(tmp_path, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                    sasl_username="sink", sasl_password="pw").source
    kw = kafka.security_kwargs(src)
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(kw["ssl_context"], ssl.SSLContext)  # system CAs when no ssl_cafile
    assert (kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("sink", "pw")


async def test_kafka_clients_accept_the_security_kwargs(tmp_path: Path) -> None:
    src = _settings(tmp_path, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256",
                    sasl_username="sink", sasl_password="pw").source
    consumer = kafka.consumer(src, max_poll_records=10)
    producer = kafka.producer(src)
    admin = kafka.admin(src)
    assert consumer._client._sasl_mechanism == "SCRAM-SHA-256"
    assert producer.client._security_protocol == "SASL_SSL"
    assert admin._client._sasl_plain_password == "pw"
    await producer.stop()
    await consumer.stop()


def test_keyfile_needs_certfile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"source\.ssl_keyfile: needs ssl_certfile"):
        _settings(tmp_path, security_protocol="SSL", ssl_keyfile="/k.pem")


@pytest.mark.parametrize(("mode", "expected"), [
    (None, None), ("disable", "disable"), ("require", "require"), ("prefer", "prefer"),
])
def test_postgres_sslmode(tmp_path: Path, mode: str | None, expected: Any) -> None:
    flags = {"destination.sslmode": mode} if mode else {}
    s = load_settings(write(tmp_path, BASE), flags)
    assert postgres_ssl(s.destination) == expected


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_postgres_verify_modes_build_a_context(tmp_path: Path, mode: str) -> None:
    cert, _ = _self_signed(tmp_path)
    s = load_settings(write(tmp_path, BASE), {"destination.sslmode": mode,
                                              "destination.sslrootcert": str(cert)})
    ctx = postgres_ssl(s.destination)
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is (mode == "verify-full")
    assert ctx.get_ca_certs()


def test_effective_config_round_trips_without_secrets(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, BASE))
    data = effective_config(s)
    assert data["destination"]["hard_delete_after"] == "P7D"
    assert json.loads(json.dumps(data)) == data


def test_workers_inherit_the_run_flags_including_the_event_loop() -> None:
    from sink.cli import argv_for_workers, build_parser, event_loop_factory

    args = build_parser().parse_args(
        ["run", "--config", "c.yaml", "--workers", "3", "--until-caught-up",
         "--event-loop", "uvloop"])
    assert argv_for_workers(args) == ["--config", "c.yaml", "--until-caught-up",
                                      "--event-loop", "uvloop"]
    assert event_loop_factory("asyncio") is None
    loop = event_loop_factory("uvloop")()  # type: ignore[misc]
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


@pytest.mark.parametrize(("source", "by"), [
    ('topic_pattern: "shop[.].*"', "source.topic_pattern"),  # takes the default shop.sink.dlq
    ('topics: ["shop.users", "shop.sink.dlq"]', "source.topics"),
])
def test_the_dead_letter_topic_may_not_be_a_source_topic(
    source: str, by: str, tmp_path: Path
) -> None:
    """Seen on the real stack: a pattern that also matched <group_id>.dlq read each dead
    letter back, failed on it again and wrote it again, 165 dead letters from one bad
    message in 20 s, growing without end."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"source:\n  group_id: shop.sink\n  {source}\n"
                   "destination:\n  connection_string: postgresql://u@h/db\n",
                   encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "sink", "config", "show", "--config",
                           str(cfg)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout
    assert "errors.dlq_topic" in done.stderr and by in done.stderr
    assert "shop.sink.dlq" in done.stderr
    ok = cfg.read_text().replace("group_id: shop.sink", "group_id: shop-sink")
    cfg.write_text(ok.replace(', "shop.sink.dlq"', ""), encoding="utf-8")
    assert subprocess.run([sys.executable, "-m", "sink", "config", "show", "--config",
                           str(cfg)], capture_output=True, timeout=60).returncode == 0
