"""Prometheus metrics shared by every process, and the /metrics + /health HTTP server.

Labels never carry student ids or any personal data: only service names, event types,
outcomes and short reason codes.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_wsgi_app

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RELAY_PUBLISHED = Counter("aid_relay_published_total", "Events the relay published with a broker confirm")
RELAY_LAG = Gauge("aid_relay_lag_events", "Log head position minus the relay's last published position")
RELAY_PUBLISH_SECONDS = Histogram(
    "aid_relay_publish_seconds", "Time to publish and confirm one batch", buckets=LATENCY_BUCKETS
)
RELAY_ERRORS = Counter("aid_relay_errors_total", "Relay errors by kind", ["kind"])

CONSUMER_HANDLED = Counter(
    "aid_consumer_handled_total", "Events handled by consumers", ["service", "event_type", "outcome"]
)
CONSUMER_SECONDS = Histogram(
    "aid_consumer_handle_seconds", "Time to handle one event", ["service", "event_type"],
    buckets=LATENCY_BUCKETS
)
CONSUMER_LAG = Gauge("aid_consumer_lag_events", "Events waiting in the service's queues", ["service"])
DEAD_LETTERS = Counter(
    "aid_dead_letters_total", "Messages sent to a dead-letter queue", ["service", "reason"]
)

HTTP_REQUESTS = Counter("aid_http_requests_total", "HTTP requests", ["service", "endpoint", "status"])
HTTP_REFUSALS = Counter(
    "aid_http_refusals_total", "HTTP requests refused, by error code", ["service", "code"]
)
HTTP_SECONDS = Histogram(
    "aid_http_request_seconds", "HTTP request latency", ["service", "endpoint"], buckets=LATENCY_BUCKETS
)
APPEND_SECONDS = Histogram(
    "aid_eventstore_append_seconds", "Time of one append transaction", buckets=LATENCY_BUCKETS
)
HEAD_POSITION = Gauge("aid_eventstore_head_position", "Highest committed position in the event log")

HealthCheck = Callable[[], dict[str, Any]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        logging.getLogger("aid.http").debug(format, *args)


def metrics_app(service: str, health: HealthCheck) -> Callable[..., Any]:
    prometheus = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == "/health":
            try:
                checks = health()
                # "progress ..." entries report background work (backbone.health.track_progress)
                ok = all(v == "ok" for k, v in checks.items() if not k.startswith("progress "))
            except Exception as exc:  # a failing check must still answer
                checks, ok = {"error": type(exc).__name__}, False
            body = json.dumps({"service": service, "status": "ok" if ok else "degraded",
                               "checks": checks}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json")])
            return [body]
        return prometheus(environ, start_response)

    return app


def serve_metrics(service: str, port: int, health: HealthCheck, host: str = "0.0.0.0") -> WSGIServer:
    """Serve /metrics and /health on ``port`` from a daemon thread; returns the server."""
    server = make_server(host, port, metrics_app(service, health), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"{service}-metrics", daemon=True)
    thread.start()
    return server
