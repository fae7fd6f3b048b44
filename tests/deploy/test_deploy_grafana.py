"""Grafana: the dashboards load, every query names metrics the processes export, and
docker-compose provisions them with Prometheus as the data source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from .layout import DEPLOY, REPO, TEST_SECRETS, compose_config, write_env_file

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# PromQL words that are not metric names
PROMQL_WORDS = {
    "sum", "by", "rate", "increase", "histogram_quantile", "clamp_min", "le", "without", "avg", "max", "min",
    "count", "offset", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
}
# what the infrastructure exporters and Prometheus itself answer
INFRA_METRICS = {"up"}


def exported_metrics() -> set[str]:
    """Every metric name declared in the code (prometheus_client Counter/Gauge/Histogram), with
    the series names a counter and a histogram expose."""
    names: set[str] = set()
    pattern = re.compile(r"(?:Counter|Gauge|Histogram|Summary)\(\s*\"(aid_[a-z0-9_]+)\"")
    for path in [*(REPO / "backbone").rglob("*.py"), *(REPO / "services").rglob("*.py"),
                 *(REPO / "console").rglob("*.py")]:
        for name in pattern.findall(path.read_text(encoding="utf-8")):
            base = name.removesuffix("_total")
            names |= {name, f"{base}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


def queries(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    without_groupings = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", without_ranges)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", without_groupings))
    return {w for w in words if w not in PROMQL_WORDS and not w.isdigit()}


def test_there_are_the_dashboards_the_operators_need() -> None:
    titles = {json.loads(p.read_text())["uid"] for p in DASHBOARDS}
    assert {"aid-delivery", "aid-dead-letters", "aid-facematch", "aid-check-day", "aid-http"} <= titles


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_loads_and_each_query_names_an_exported_metric(path: Path) -> None:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    exported = exported_metrics() | INFRA_METRICS
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "aid-prometheus", panel["title"]
        assert panel["targets"], panel["title"]
    for expr in queries(dashboard):
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, f"{path.name}: {expr} names {sorted(names - exported)}, not exported"


def test_metric_name_reader_sees_through_promql() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, service) (rate(aid_x_seconds_bucket{stage="total"}[5m])))'
    assert metric_names(expr) == {"aid_x_seconds_bucket"}
    assert metric_names("sum(increase(a_total[1h])) / clamp_min(sum(increase(b_total[1h])), 1)") == {
        "a_total", "b_total"}


def test_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert (source["type"], source["uid"], source["url"]) == ("prometheus", "aid-prometheus", "http://prometheus:9090")
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "studentaid.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_compose_runs_grafana_with_the_provisioning(tmp_path: Path) -> None:
    result = compose_config(write_env_file(tmp_path / "env", TEST_SECRETS))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    grafana = services["grafana"]
    volumes = [str(v) for v in grafana["volumes"]]
    assert f"{GRAFANA / 'provisioning'}:/etc/grafana/provisioning:ro" in volumes
    assert f"{GRAFANA / 'dashboards'}:/var/lib/grafana/dashboards:ro" in volumes
    assert "prometheus" in grafana["depends_on"]
    console = services["console"]
    assert console["command"] == ["python", "-m", "console"]
    assert console["environment"]["AID_ENV"] == "production"
    assert not {"AID_SECRET_KEY", "AID_ID_HASH_KEY", "AID_DATABASE_URL"} & set(console["environment"])
