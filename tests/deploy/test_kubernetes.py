"""deploy/kubernetes/: ``kubernetes-validate`` (strict, the OpenAPI-derived JSON schemas it
ships, offline) for the built-in kinds, plus cross-file checks written here (probes on the
container port, grace period above ``shutdown_timeout``, non-root, Secret refs, selectors,
KEDA, kustomization); ``kustomize build`` too when a ``kustomize`` binary is found
(``$KUSTOMIZE`` or PATH)."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from tests.deploy.support import (
    K8S,
    K8S_VERSION,
    METRICS_PORT,
    PARTITIONS_PER_TOPIC,
    configmap_sink_config,
    deployment,
    find_tool,
    k8s,
    k8s_objects,
    load_yaml,
    load_yaml_docs,
    run,
    sink_container,
)


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
    for name, entry in env.items():
        # secrets are files, never the environment (a process's environment leaks: /proc,
        # crash reports, child processes)
        assert not re.search(r"PASSWORD|TOKEN|SECRET|CONNECTION_STRING", name), (
            f"{name}: a secret goes in a file (its *_file key), not the environment")
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


def test_passwords_are_files_of_the_mounted_secret() -> None:
    """Each password the ConfigMap's config needs is a ``*_file`` key naming a file of a
    Secret volume mounted read-only, whose key secret.example.yaml documents."""
    pod = deployment()["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in sink_container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config = configmap_sink_config()
    source, dest = config["source"], config["destination"]
    for section, key in ((dest, "password"), (source, "sasl_password")):
        assert key not in section, f"{key} in the ConfigMap: use {key}_file"
        assert f"{key}_file" in section, f"{key}_file missing (the Secret's file)"
    assert not re.search(r"://[^/@:]+:[^/@]*@", dest["connection_string"])
    files = {k: v for part in (source, dest) for k, v in part.items() if k.endswith("_file")}
    assert set(files) >= {"password_file", "sasl_password_file"}
    for key, path in files.items():
        mount_path, _, name = path.rpartition("/")
        assert mount_path in mounts, f"{key}: {mount_path} is not mounted"
        assert mounts[mount_path].get("readOnly") is True
        volume = volumes[mounts[mount_path]["name"]]["secret"]
        items = {i["path"]: i["key"] for i in volume.get("items", [])} or None
        secret_key = items[name] if items is not None else name
        assert secret_key in k8s("Secret", volume["secretName"])["stringData"], (
            f"{key}: {volume['secretName']} has no key {secret_key}")


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
