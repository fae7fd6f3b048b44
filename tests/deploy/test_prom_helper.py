"""prom.py against a real Prometheus: scrape a prometheus_client metric, load alerts.yml."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from .layout import DEPLOY
from .prom import PrometheusError, free_port, query, running_prometheus, wait_for


def value(result: list) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


@pytest.fixture
def selftest_exporter():
    registry = CollectorRegistry()
    counter = Counter("aid_selftest", "prom.py self-test counter", registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield counter, f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_scrapes_a_prometheus_client_counter(tmp_path, selftest_exporter):
    counter, target = selftest_exporter
    counter.inc(3)
    closed = f"127.0.0.1:{free_port()}"  # nothing listens here
    with running_prometheus({"selftest": target, "nothing": closed}, tmp_path) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert value(wait_for(base_url, 'aid_selftest_total{job="selftest"}')) == 3
        counter.inc(2)
        wait_for(base_url, 'aid_selftest_total{job="selftest"} == 5')
        assert value(wait_for(base_url, 'up{job="selftest"}')) == 1
        assert value(wait_for(base_url, 'up{job="nothing"}')) == 0
        assert query(base_url, 'aid_selftest_total{job="nothing"}') == []
        with pytest.raises(PrometheusError, match="bad_data"):
            query(base_url, "sum(")
    # stopped on exit
    with pytest.raises(OSError):
        query(base_url, "up", timeout=2)


def test_loads_alert_rules_and_evaluates_them(tmp_path):
    from .prom import api

    # an "enrolment" job that is down: ServiceDown must go pending (for: 1m) in a real Prometheus
    targets = {"enrolment": f"127.0.0.1:{free_port()}"}
    with running_prometheus(targets, tmp_path, rule_files=[DEPLOY / "alerts.yml"]) as base_url:
        alerts = wait_for(base_url, 'ALERTS{alertname="ServiceDown"}')
        assert alerts[0]["metric"]["job"] == "enrolment"
        assert alerts[0]["metric"]["alertstate"] == "pending"
        groups = api(base_url, "rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert {r["name"] for r in rules} >= {"RelayDown", "ServiceDown", "DeadLettersArriving"}
        assert [r["name"] for r in rules if r["health"] == "err"] == []
