"""deploy/prometheus*.yml, deploy/alerts.yml and deploy/alerts_test.yml."""

from __future__ import annotations

import re

import pytest
import yaml

from .layout import DEPLOY, INFRA_TARGETS, PORTS, SERVICES, require_tool, run

CONFIGS = ("prometheus.yml", "prometheus.local.yml")

# The alerts the runbook promises; alerts.yml may have more.
EXPECTED_ALERTS = {
    "RelayLagHigh",
    "RelayDown",
    "ConsumerLagHigh",
    "ConsumerStuck",
    "DeadLettersArriving",
    "HighErrorRate",
    "ConsumerHighErrorRate",
    "ServiceDown",
    "FacematchSlow",
    "RabbitMQDown",
    "PostgresExporterDown",
    "PostgresDown",
}


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def scrape_targets(config: dict) -> dict[str, list[str]]:
    jobs: dict[str, list[str]] = {}
    for scrape in config["scrape_configs"]:
        assert scrape["job_name"] not in jobs, f"duplicate job {scrape['job_name']}"
        jobs[scrape["job_name"]] = [t for sc in scrape.get("static_configs", []) for t in sc["targets"]]
    return jobs


def alert_rules() -> list[dict]:
    return [rule for group in load("alerts.yml")["groups"] for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("name", CONFIGS)
def test_promtool_check_config(name):
    # also loads and checks the rule_files the config names
    result = run([require_tool("promtool"), "check", "config", name], cwd=DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules():
    result = run([require_tool("promtool"), "check", "rules", "alerts.yml"], cwd=DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules():
    result = run([require_tool("promtool"), "test", "rules", "alerts_test.yml"], cwd=DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_scrape_targets():
    config = load("prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = scrape_targets(config)
    for process, (metrics_port, _api) in PORTS.items():
        assert jobs.get(process) == [f"{process}:{metrics_port}"], process
    for job, target in INFRA_TARGETS.items():
        assert jobs.get(job) == [target], job


def test_local_scrape_targets_mirror_compose():
    local = load("prometheus.local.yml")
    assert local["rule_files"] == ["alerts.yml"]
    jobs = scrape_targets(local)
    for process, (metrics_port, _api) in PORTS.items():
        assert jobs.get(process) == [f"127.0.0.1:{metrics_port}"], process
    compose_jobs = scrape_targets(load("prometheus.yml"))
    # same jobs and ports, only the host differs (no postgres-exporter locally)
    assert set(jobs) == set(compose_jobs) - {"postgres"}
    for job, targets in jobs.items():
        ports = [t.rsplit(":", 1)[1] for t in targets]
        assert ports == [t.rsplit(":", 1)[1] for t in compose_jobs[job]], job


def test_expected_alerts_present_and_well_formed():
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) >= EXPECTED_ALERTS, EXPECTED_ALERTS - set(names)
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"].get("summary"), rule["alert"]
        assert rule["annotations"].get("description"), rule["alert"]
    by_name = {r["alert"]: r for r in rules}
    assert by_name["RelayLagHigh"]["for"] == "2m"
    assert by_name["ConsumerLagHigh"]["for"] == "5m"
    assert by_name["HighErrorRate"]["for"] == "5m"
    assert by_name["ServiceDown"]["for"] == "1m"
    assert by_name["ConsumerStuck"]["for"] == "2m"


def test_every_alert_has_firing_and_quiet_unit_tests():
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in load("alerts_test.yml")["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names - firing == set(), "alerts without a firing test"
    assert names - quiet == set(), "alerts without a non-firing test"


def test_alerts_only_name_scraped_jobs():
    jobs = set(scrape_targets(load("prometheus.yml")))
    for rule in alert_rules():
        for match in re.finditer(r'job\s*=~?\s*"([^"]+)"', rule["expr"]):
            for job in match.group(1).split("|"):
                assert job in jobs, f"{rule['alert']} refers to job {job!r}, not scraped"
    service_down = next(r for r in alert_rules() if r["alert"] == "ServiceDown")
    for service in SERVICES:
        assert service in service_down["expr"], service
