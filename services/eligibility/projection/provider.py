"""The live projection as a nameko dependency: ``self.projection`` in the eligibility service.

Events are applied in batches (:mod:`.batching`): ``AID_BATCH_SIZE`` events at most (500), waiting at most
``AID_BATCH_WAIT_MS`` (50) after the first for more; the service's ``max_workers`` bounds what can gather.

An event that touches every student marks a backlog instead of re-deriving everyone in its batch
(``Projection(defer_everyone=True)``); a background green thread of each instance re-derives it in chunks
of ``AID_REDERIVE_CHUNK`` students (250) of one partition, one transaction each, so batches interleave and
the instances re-derive different partitions at once: a step claims a partition nobody holds, and only
when no batch writing shared facts holds or waits for the projection's lock and no batch of its own
process is gathering (batches go first; after ``AID_REDERIVE_MAX_YIELD_MS`` (2000) of yielding it waits
its turn like a batch). Its progress: ``aid_eligibility_rederive_backlog_students``,
``aid_eligibility_rederived_students_total`` (this instance's share) and ``progress rederive`` in
``/health``."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge, Histogram

from backbone import config, health
from backbone.db import Pool
from backbone.messaging import failure_kind
from contracts.envelope import Envelope
from services.eligibility.domain.rules import StudentStatus
from services.eligibility.projection import queries
from services.eligibility.projection.batching import DEFAULT_SIZE, DEFAULT_WAIT, Batcher, Outcome
from services.eligibility.projection.writer import ApplyResult, Projection

log = logging.getLogger("aid.eligibility")


class LiveProjection:
    """What a worker gets: the projection's writer and queries over one connection pool."""

    def __init__(self, pool: Pool, writer: Projection, batch_size: int = DEFAULT_SIZE,
                 batch_wait: float = DEFAULT_WAIT) -> None:
        self.pool = pool
        self.writer = writer
        self.batcher = Batcher(lambda batch: set(self.apply(batch).new_ids), size=batch_size, wait=batch_wait,
                               is_transient=lambda exc: failure_kind(exc) == "transient",
                               on_batch=_observe_batch)

    def apply(self, envelopes: Sequence[Envelope]) -> ApplyResult:
        with self.pool.connection() as conn:
            return self.writer.apply_events(conn, envelopes)

    def apply_batched(self, envelope: Envelope) -> Outcome:
        """Apply ``envelope`` with the next batch (see :mod:`.batching`); returns once it committed."""
        return self.batcher.submit(envelope)

    def student_status(self, student_id: str, semester: str | None = None) -> list[StudentStatus]:
        with self.pool.connection() as conn:
            return queries.student_status(conn, student_id, semester)

    def school_month(self, school_id: str, month: str) -> dict[str, Any]:
        with self.pool.connection() as conn:
            return queries.school_month(conn, school_id, month)

    def province_summary(self, month: str, *, school_id: str | None = None, county: str | None = None,
                         city: str | None = None) -> dict[str, Any]:
        with self.pool.connection() as conn:
            return queries.province_summary(conn, month, school_id=school_id, county=county, city=city)

    def summary_by_school(self, month: str, *, county: str | None = None,
                          city: str | None = None) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            return queries.summary_by_school(conn, month, county=county, city=city)


class ProjectionProvider(DependencyProvider):  # type: ignore[misc]
    """nameko dependency: one :class:`~.writer.Projection` (policy book and shared-fact cache)
    per service process, handed to every worker as a :class:`LiveProjection`."""

    def setup(self) -> None:
        settings = config.load()
        self.pool = Pool(settings.database_url, size=int(self.container.config.get("DB_POOL_SIZE", 4)))
        conf = {**os.environ, **self.container.config}  # AID_BATCH_SIZE, AID_BATCH_WAIT_MS
        wait_ms = float(conf.get("AID_BATCH_WAIT_MS", DEFAULT_WAIT * 1000))
        size = int(conf.get("AID_BATCH_SIZE", DEFAULT_SIZE))
        self.live = LiveProjection(self.pool, Projection(defer_everyone=True), batch_size=size,
                                   batch_wait=wait_ms / 1000)
        self.rederive_chunk = int(conf.get("AID_REDERIVE_CHUNK", 250))
        self.max_yield = float(conf.get("AID_REDERIVE_MAX_YIELD_MS", 2000)) / 1000
        self.idle_wait = float(conf.get("AID_REDERIVE_POLL_MS", 200)) / 1000
        self.running = False
        self.state: tuple[int, int] | None = None
        self.mine = 0  # students this instance re-derived for backlogs
        self.live.writer.on_rederive_step = self._count_step
        health.track_progress("rederive", self.report)

    def start(self) -> None:
        self.running = True
        self.container.spawn_managed_thread(self._drain)

    def report(self) -> str:
        if self.state is None:
            return "idle"
        done, total = self.state
        return (f"re-deriving every student after a shared event: {done} of about {total}"
                f" ({self.mine} by this instance since it started)")

    def _count_step(self, students: int) -> None:
        self.mine += students
        REDERIVED.inc(students)

    def _drain(self) -> None:
        """Re-derive the backlog chunk by chunk, for ever (each instance; the lock takes turns)."""
        writer = self.live.writer
        yielding_since: float | None = None
        while self.running:
            now = time.monotonic()
            patient = yielding_since is None or now - yielding_since < self.max_yield
            if patient and self.live.batcher.waiting:  # a batch of ours is gathering: it goes first
                yielding_since = yielding_since or now
                eventlet.sleep(0.01)
                continue
            try:
                with self.pool.connection() as conn:
                    count = writer.rederive_step(conn, self.rederive_chunk, nowait=patient)
                    if count >= 0:
                        self.state = writer.backlog(conn)
            except Exception as exc:  # the database away: try again later
                log.warning("eligibility: re-derivation step failed (%s); retrying", type(exc).__name__)
                eventlet.sleep(2)
                continue
            if count < 0:  # a shared-facts batch holds the lock, or every partition left is taken
                yielding_since = yielding_since or now
                eventlet.sleep(0.01)
                continue
            yielding_since = None
            done, total = self.state or (0, 0)
            BACKLOG.set(max(total - done, 0) if self.state else 0)
            eventlet.sleep(0 if count else self.idle_wait)

    def stop(self) -> None:
        self.running = False
        self.pool.close()

    def get_dependency(self, worker_ctx: Any) -> LiveProjection:
        return self.live


BACKLOG = Gauge("aid_eligibility_rederive_backlog_students",
                "Students still to re-derive after an event that touches every student (about)")
REDERIVED = Counter("aid_eligibility_rederived_students_total",
                    "Students this instance re-derived for backlogs (its share of the work)")
BATCH_EVENTS = Histogram("aid_eligibility_batch_events", "Events applied per projection batch",
                         buckets=(1, 5, 20, 50, 100, 200, 500, 1000, 2000))
BATCH_SECONDS = Histogram("aid_eligibility_batch_seconds", "Seconds to apply one projection batch",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


def _observe_batch(events: int, seconds: float) -> None:
    BATCH_EVENTS.observe(events)
    BATCH_SECONDS.observe(seconds)
