"""eligibility service: keeps the aid-status projection current from every event and answers
one student's status, one school's month and the province summary (HTTP and RPC)."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc
from nameko.web.handlers import http

from backbone import observability
from backbone.errors import DomainError, NotFound
from backbone.http import endpoint
from backbone.messaging import event_consumer
from contracts.calendar import parse_month
from contracts.envelope import Envelope
from contracts.events import ALL_EVENTS
from services.eligibility.projection.provider import ProjectionProvider

# Every type, also those the rules ignore: ``replay --verify`` counts what the projection processed.
EVENT_TYPES = sorted({cls.TYPE for cls in ALL_EVENTS})


def _month(month: str) -> str:
    try:
        parse_month(month)
    except ValueError as exc:
        raise DomainError("BAD_MONTH", str(exc)) from None
    return month


class EligibilityService:
    name = "eligibility"
    projection = ProjectionProvider()

    @event_consumer(*EVENT_TYPES)
    def on_event(self, envelope: Envelope) -> None:
        result = self.projection.apply([envelope])
        outcome = "ok" if result.applied else "duplicate"
        observability.CONSUMER_HANDLED.labels(service=self.name, event_type=envelope.type,
                                              outcome=outcome).inc()

    # ------------------------------------------------------------------ queries
    def _student(self, student_id: str, semester: str | None) -> dict[str, Any]:
        statuses = self.projection.student_status(student_id, semester)
        if not statuses:
            raise NotFound("UNKNOWN_STUDENT", f"no aid status for student {student_id}")
        return {"student_id": student_id, "statuses": statuses}

    def _school(self, school_id: str, month: str) -> dict[str, Any]:
        return self.projection.school_month(school_id, _month(month))

    def _summary(self, month: str, **scope: str | None) -> dict[str, Any]:
        return self.projection.province_summary(_month(month), **scope)

    @http("GET", "/students/<student_id>")
    @endpoint("eligibility", "student")
    def student_http(self, request: Any, student_id: str) -> tuple[int, dict[str, Any]]:
        return 200, self._student(student_id, request.args.get("semester"))

    @http("GET", "/schools/<school_id>/months/<month>")
    @endpoint("eligibility", "school_month")
    def school_http(self, request: Any, school_id: str, month: str) -> tuple[int, dict[str, Any]]:
        return 200, self._school(school_id, month)

    @http("GET", "/summary/<month>")
    @endpoint("eligibility", "summary")
    def summary_http(self, request: Any, month: str) -> tuple[int, dict[str, Any]]:
        scope = {k: request.args.get(k) for k in ("school_id", "county", "city")}
        return 200, self._summary(month, **scope)

    @rpc
    def student_status(self, student_id: str, semester: str | None = None) -> dict[str, Any]:
        return self._student(student_id, semester)

    @rpc
    def school_month(self, school_id: str, month: str) -> dict[str, Any]:
        return self._school(school_id, month)

    @rpc
    def province_summary(self, month: str, school_id: str | None = None, county: str | None = None,
                         city: str | None = None) -> dict[str, Any]:
        return self._summary(month, school_id=school_id, county=county, city=city)


SERVICE = EligibilityService
