"""deploy/prometheus/: alert rules and scrape config, structure and PromQL metric names
checked here (every name one the service exports, see ``support.METRICS``); ``promtool
check rules``, ``check config`` and ``test rules`` (deploy/prometheus/alerts.test.yaml)
when a ``promtool`` is found (``$PROMTOOL`` or PATH)."""

from __future__ import annotations

import re

import pytest

from tests.deploy.support import (
    DEPLOY,
    METRICS_PORT,
    PROM,
    alert_rules,
    assert_known_promql,
    compose,
    find_tool,
    load_yaml,
    promql_names,
    run,
)


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


# --------------------------------------------------------------------------- rules and config


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
