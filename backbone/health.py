"""Health checks, the consumer-lag gauge and stuck-consumer detection, shared by every process.

``/health`` (on the metrics port) answers 200 ``ok`` when the database and the broker answer and
no consumer of the process is stuck, else 503 ``degraded`` with the reason per check. A consumer
queue is *stuck* when:

- one message keeps failing (it failed :data:`STUCK_AFTER_FAILURES` times in a row and is being
  retried: until it succeeds or goes to the dead-letter queue), or
- a message has been in its handler for more than ``stuck_after`` seconds, or
- messages wait in the queue and none was settled (acked or dead-lettered) for ``stuck_after``
  seconds.

``aid_consumer_stuck{service,queue}`` is 1 while so (alert ``ConsumerStuck`` in deploy/alerts.yml).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from kombu import Connection
from prometheus_client import Gauge

from backbone import config, observability

log = logging.getLogger("aid.health")

STUCK_AFTER_FAILURES = 2
DEFAULT_STUCK_AFTER = 120.0

CONSUMER_STUCK = Gauge("aid_consumer_stuck", "1 while a consumer queue is stuck (see backbone/health.py)",
                       ["service", "queue"])


class ConsumerProgress:
    """What one consumer queue of this process is doing, for ``/health`` and the stuck gauge."""

    def __init__(self, service: str, queue: str, stuck_after: float = DEFAULT_STUCK_AFTER) -> None:
        self.service, self.queue, self.stuck_after = service, queue, stuck_after
        self.depth = 0  # messages ready in the broker queue, refreshed by consumer_lag_loop
        self.last_settled = time.monotonic()
        self._in_flight: dict[int, float] = {}
        self._failing: dict[str, tuple[int, str]] = {}  # event id -> (failures in a row, last error type)
        self._keys = itertools.count()
        self._lock = threading.Lock()

    def received(self) -> int:
        """A message entered handling; returns the key to settle it with."""
        key = next(self._keys)
        with self._lock:
            self._in_flight[key] = time.monotonic()
        return key

    def failed(self, key: int, event_id: str, failures: int, error: str) -> None:
        """The message failed ``failures`` times in a row and will be retried."""
        with self._lock:
            self._in_flight.pop(key, None)
            self._failing[event_id] = (failures, error)

    def settled(self, key: int, event_id: str | None = None) -> None:
        """The message left the queue (acked or dead-lettered)."""
        with self._lock:
            self._in_flight.pop(key, None)
            if event_id is not None:
                self._failing.pop(event_id, None)
            self.last_settled = time.monotonic()

    def stuck_reason(self, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            failing = max(self._failing.values(), default=None)
            oldest = min(self._in_flight.values(), default=None)
            idle = now - self.last_settled
        if failing is not None and failing[0] >= STUCK_AFTER_FAILURES:
            return f"a message failed {failing[0]} times in a row ({failing[1]}); retrying"
        if oldest is not None and now - oldest > self.stuck_after:
            return f"a message has been in its handler for {now - oldest:.0f}s"
        if self.depth > 0 and idle > self.stuck_after:
            return f"{self.depth} message(s) waiting, none settled for {idle:.0f}s"
        return None


_CONSUMERS: dict[str, ConsumerProgress] = {}


def track_consumer(service: str, queue: str, stuck_after: float = DEFAULT_STUCK_AFTER) -> ConsumerProgress:
    """Register a consumer queue of this process (an ``EventConsumer`` does, at set-up)."""
    progress = ConsumerProgress(service, queue, stuck_after)
    _CONSUMERS[queue] = progress
    CONSUMER_STUCK.labels(service=service, queue=queue).set_function(
        lambda: 0.0 if progress.stuck_reason() is None else 1.0)
    return progress


def consumers() -> list[ConsumerProgress]:
    return list(_CONSUMERS.values())


#: work a process catches up on in the background: name -> a short report (``/health`` shows it as
#: ``progress <name>``; it never makes the process unhealthy)
_PROGRESS: dict[str, Callable[[], str]] = {}
PROGRESS_PREFIX = "progress "


def track_progress(name: str, report: Callable[[], str]) -> None:
    _PROGRESS[name] = report


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
    for progress in consumers():
        reason = progress.stuck_reason()
        checks[f"consumer {progress.queue}"] = "ok" if reason is None else f"stuck: {reason}"
    for name, report in _PROGRESS.items():
        try:
            checks[PROGRESS_PREFIX + name] = report()
        except Exception as exc:
            checks[PROGRESS_PREFIX + name] = type(exc).__name__
    return checks


def queue_depths(settings: config.Settings, queues: list[str]) -> dict[str, int]:
    """Messages waiting in each of ``queues`` (ready, not yet delivered to a consumer)."""
    depths: dict[str, int] = {}
    with Connection(settings.amqp_url, connect_timeout=2) as conn:
        channel: Any = conn.channel()
        for name in queues:
            depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
    return depths


def consumer_lag_loop(settings: config.Settings, service: str, queues: list[str], every: float = 5.0) -> None:
    """Refresh ``aid_consumer_lag_events{service}`` (events waiting for the service) and the
    queue depths the stuck detection uses, for ever."""
    gauge = observability.CONSUMER_LAG.labels(service=service)
    while True:
        try:
            depths = queue_depths(settings, queues)
            gauge.set(sum(depths.values()))
            for progress in consumers():
                progress.depth = depths.get(progress.queue, progress.depth)
        except Exception as exc:
            log.debug("lag refresh failed: %s", type(exc).__name__)
        time.sleep(every)
