"""Health checks and the consumer-lag gauge, shared by every service process."""

from __future__ import annotations

import logging
import time

import psycopg
from kombu import Connection

from backbone import config, observability

log = logging.getLogger("aid.health")


def health_checks(settings: config.Settings) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with psycopg.connect(settings.database_url, connect_timeout=2, autocommit=True) as conn:
            conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = type(exc).__name__
    try:
        with Connection(settings.amqp_url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = type(exc).__name__
    return checks


def queue_depth(settings: config.Settings, queues: list[str]) -> int:
    """Messages waiting in ``queues`` (ready, not yet acknowledged by a consumer)."""
    total = 0
    with Connection(settings.amqp_url, connect_timeout=2) as conn:
        channel = conn.channel()
        for name in queues:
            total += int(channel.queue_declare(queue=name, passive=True).message_count)
    return total


def consumer_lag_loop(settings: config.Settings, service: str, queues: list[str], every: float = 5.0) -> None:
    """Refresh ``aid_consumer_lag_events{service}`` (events waiting for the service) for ever."""
    gauge = observability.CONSUMER_LAG.labels(service=service)
    while True:
        try:
            gauge.set(queue_depth(settings, queues))
        except Exception as exc:
            log.debug("lag refresh failed: %s", type(exc).__name__)
        time.sleep(every)
