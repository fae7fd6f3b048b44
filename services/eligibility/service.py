"""eligibility service: keeps the aid-status projection current from every event and answers
one student's status, one school's month and the province summary (HTTP and RPC)."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from backbone import config, observability
from backbone.edge import Answer, Call, EdgeService, personal_data_reads, route, school_for, student_for
from backbone.errors import DomainError, Forbidden, NotFound
from backbone.messaging import EventStoreProvider, event_consumer
from backbone.workdays import WorkCalendarProvider
from contracts.calendar import parse_month
from contracts.envelope import Envelope
from contracts.events import ALL_EVENTS
from services.eligibility.commands import (
    AreaQuery,
    AsOfQuery,
    PersonalDataRead,
    PersonalDataReads,
    ReadsQuery,
    SchoolMonth,
    StudentAsOf,
    StudentQuery,
    StudentStatuses,
    Summary,
    SummaryBySchool,
    SummaryQuery,
)
from services.eligibility.projection.provider import ProjectionProvider
from services.eligibility.results import ResultsRoutes

# Every type, also those the rules ignore: ``replay --verify`` counts what the projection processed.
EVENT_TYPES = sorted({cls.TYPE for cls in ALL_EVENTS})


def _month(month: str) -> str:
    try:
        parse_month(month)
    except ValueError as exc:
        raise DomainError("BAD_MONTH", str(exc)) from None
    return month


def _own_area(call: Call, county: str | None, city: str | None) -> dict[str, str | None]:
    """The area a summary covers: as asked, except that a county or city credential covers only
    its own (asking for another is 403 ``OUTSIDE_AREA``)."""
    scope = {"county": county, "city": city}
    caller = call.caller
    if caller.role in ("county", "city"):
        for key in (("city", "county") if caller.role == "county" else ("city",)):
            asked, own = scope[key], getattr(caller, key)
            if asked is not None and asked != own:
                raise Forbidden("OUTSIDE_AREA", f"this {caller.role} credential covers only its own {key}")
            scope[key] = own
    return scope


class EligibilityService(ResultsRoutes, EdgeService):
    name = "eligibility"
    #: workers, and so the AMQP prefetch: room for a batch being applied and the next one gathering
    max_workers = 1000
    projection = ProjectionProvider()
    store = EventStoreProvider()
    #: the working-day calendar (appeal windows), checked at start-up: a missing year stops the start
    calendar = WorkCalendarProvider()

    @event_consumer(*EVENT_TYPES)
    def on_event(self, envelope: Envelope) -> None:
        # applied with the other events that arrive meanwhile, in one transaction (projection/batching.py);
        # returns (and the message is acked) only once that batch committed
        result = self.projection.apply_batched(envelope)
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

    @route("GET", "/students/<student_id>",
           roles=("school", "county", "city", "province", "auditor", "student"),
           query=StudentQuery, returns=StudentStatuses, personal=True, name="student")
    def student_http(self, call: Call) -> Answer:
        """Read one student's aid status, each decision with the events behind it."""
        student_id = call.path["student_id"]
        student_for(call, self.store, student_id)
        call.read_personal(student_id)
        return 200, self._student(student_id, call.query.semester)

    @route("GET", "/schools/<school_id>/months/<month>",
           roles=("school", "county", "city", "province", "auditor"),
           returns=SchoolMonth, name="school_month")
    def school_http(self, call: Call) -> Answer:
        """Read one school's month: counts and the students' results, names masked."""
        month = _month(call.path["month"])
        school_for(call, self.store, call.path["school_id"])
        return 200, self._school(call.path["school_id"], month)

    @route("GET", "/summary/<month>", roles=("county", "city", "province", "auditor"), query=SummaryQuery,
           returns=Summary, name="summary")
    def summary_http(self, call: Call) -> Answer:
        """Read the month's summary for the province, or a city, county or school in the caller's area."""
        month = _month(call.path["month"])
        scope = {"school_id": call.query.school_id, **_own_area(call, call.query.county, call.query.city)}
        if call.caller.role in ("county", "city") and scope["school_id"] is not None:
            school_for(call, self.store, scope["school_id"])
        return 200, self._summary(month, **scope)

    @route("GET", "/summary/<month>/schools", roles=("county", "city", "province", "auditor"),
           query=AreaQuery, returns=SummaryBySchool, name="summary_by_school")
    def summary_by_school_http(self, call: Call) -> Answer:
        """Read the month's check counts school by school, in the caller's area."""
        month = _month(call.path["month"])
        scope = _own_area(call, call.query.county, call.query.city)
        schools = self.projection.summary_by_school(month, **scope)
        return 200, SummaryBySchool(month=month, schools=schools)

    @route("GET", "/audit/students/<student_id>", roles=("auditor",), query=AsOfQuery, returns=StudentAsOf,
           personal=True, name="student_as_of")
    def student_as_of(self, call: Call) -> Answer:
        """Replay one student's status as of an instant, beside the live projection."""
        import psycopg

        from services.eligibility.logsource import open_source
        from services.eligibility.policyfile import load_policy_book
        from services.eligibility.projection import audit
        from services.eligibility.replay import Filters, replay

        student_id = call.path["student_id"]
        student_for(call, self.store, student_id)
        call.read_personal(student_id)
        q: AsOfQuery = call.query
        dsn = config.load().database_url
        book = load_policy_book()
        wanted = Filters(students=[student_id], semesters=[q.semester] if q.semester else [])
        then = list(replay(open_source("postgres", dsn=dsn, as_of=q.as_of), book, wanted))
        live = self.projection.student_status(student_id, q.semester)
        with psycopg.connect(dsn) as conn:
            top = audit.high_water(conn)
        everything = Filters(students=[student_id], semesters=[q.semester] if q.semester else [])
        logged = open_source("postgres", dsn=dsn, until_position=top, only_handled=False)
        now = replay(logged, book, everything)
        rows = [(student_id, s["semester"], s) for s in live]
        return 200, StudentAsOf(student_id=student_id, as_of=q.as_of.isoformat(), as_of_statuses=then,
                                live_statuses=live, replay_vs_live=list(audit.differences(now, rows))[:100])

    @route("GET", "/audit/personal-data-reads", roles=("auditor",), query=ReadsQuery,
           returns=PersonalDataReads, name="personal_data_reads")
    def personal_data_reads(self, call: Call) -> Answer:
        """List who read which student's personal data, newest first."""
        q: ReadsQuery = call.query
        with self.store.pool.connection() as conn:
            rows = personal_data_reads(conn, student_id=q.student_id, caller=q.caller, since=q.since,
                                       limit=q.limit)
        return 200, PersonalDataReads(reads=[PersonalDataRead(**r) for r in rows])

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
