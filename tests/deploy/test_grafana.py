"""deploy/grafana/: the dashboard (variables, panel layout, every query on exported
metrics and every exported metric on the dashboard) and the provisioning files."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from tests.deploy.support import (
    DASHBOARD,
    GRAFANA,
    METRICS,
    assert_known_promql,
    compose,
    load_yaml,
)


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
