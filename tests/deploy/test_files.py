"""Every YAML/JSON file under deploy/ (and docker-compose.yml) parses, the files the
deployment needs exist, and deploy/README.md covers the runbook (PyYAML, json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import COMPOSE_FILE, DEPLOY, ROOT, alert_rules


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
