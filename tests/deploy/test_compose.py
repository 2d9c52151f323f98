"""docker-compose.yml and deploy/compose/: the Compose Specification JSON schema vendored
in ``check-jsonschema`` (validated with ``jsonschema``), service graph, ports, bind mounts
and secrets checked here, ``docker compose config -q`` when the compose CLI plugin is
installed (it needs no daemon), and the Debezium connector config the stack registers."""

from __future__ import annotations

import copy
import json
import re
import shutil
from typing import Any

import pytest

from tests.deploy.support import (
    COMPOSE_FILE,
    CONNECTOR_CONFIG,
    DASHBOARD,
    DEPLOY,
    GRAFANA,
    METRICS_PORT,
    PARTITIONS_PER_TOPIC,
    ROOT,
    SINK_CONFIG_COMPOSE,
    compose,
    load_yaml,
    run,
)

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


def test_compose_secrets_are_files_with_demo_defaults() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for m in re.finditer(r"\$\{([^}]*)\}", text):
        assert ":-" in m.group(1) or ":?" in m.group(1), (
            f"${{{m.group(1)}}} has no default: `docker compose config` would warn"
        )
    services = compose()["services"]
    secret = compose()["secrets"]["postgres_password"]
    var, default = _COMPOSE_DEFAULT.fullmatch(secret["file"]).groups()  # type: ignore[union-attr]
    assert var == "POSTGRES_PASSWORD_FILE" and (ROOT / default).is_file()
    assert (ROOT / default).read_text(encoding="utf-8").strip()
    # PostgreSQL and the sink read the same file; neither gets the password as a variable.
    postgres = services["postgres"]
    assert "postgres_password" in postgres["secrets"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    sink = services["sink"]
    assert "postgres_password" in sink["secrets"]
    for name, value in sink["environment"].items():
        assert not re.search(r"PASSWORD|TOKEN|SECRET|CONNECTION_STRING", name), name
        assert "://" not in str(value), name
    dest = load_yaml(SINK_CONFIG_COMPOSE)["destination"]
    assert dest["password_file"] == "/run/secrets/postgres_password"
    assert "password" not in dest and "@" in dest["connection_string"]
    assert ":" not in dest["connection_string"].split("://", 1)[1].split("@", 1)[0]


_COMPOSE_DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


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
