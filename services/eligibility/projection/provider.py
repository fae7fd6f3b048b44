"""The live projection as a nameko dependency: ``self.projection`` in the eligibility service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nameko.extensions import DependencyProvider

from backbone import config
from backbone.db import Pool
from contracts.envelope import Envelope
from services.eligibility.domain.rules import StudentStatus
from services.eligibility.projection import queries
from services.eligibility.projection.writer import ApplyResult, Projection


class LiveProjection:
    """What a worker gets: the projection's writer and queries over one connection pool."""

    def __init__(self, pool: Pool, writer: Projection) -> None:
        self.pool = pool
        self.writer = writer

    def apply(self, envelopes: Sequence[Envelope]) -> ApplyResult:
        with self.pool.connection() as conn:
            return self.writer.apply_events(conn, envelopes)

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


class ProjectionProvider(DependencyProvider):  # type: ignore[misc]
    """nameko dependency: one :class:`~.writer.Projection` (policy book and shared-fact cache)
    per service process, handed to every worker as a :class:`LiveProjection`."""

    def setup(self) -> None:
        settings = config.load()
        self.pool = Pool(settings.database_url, size=int(self.container.config.get("DB_POOL_SIZE", 4)))
        self.live = LiveProjection(self.pool, Projection())

    def stop(self) -> None:
        self.pool.close()

    def get_dependency(self, worker_ctx: Any) -> LiveProjection:
        return self.live
