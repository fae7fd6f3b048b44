"""appeals service: the school's aid office records objections in the window and files its month
with a printed letter (公函); the same-level authority lists what waits for it, with the
evidence, and rules on each student; filings not ruled in their month are closed as unhandled
at month end (a timer here, and ``python -m services.appeals close-unhandled`` for cron).

Every write is recorded as the caller (``call.actor()``); the school comes from the caller's
credential or the filing, never from the body.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from datetime import date
from typing import Any, Literal

from nameko.timer import timer

from backbone import config
from backbone.auth import AUTHORITIES
from backbone.blobs import BlobNotFound
from backbone.edge import Answer, Call, EdgeService, route, school_for, student_for
from backbone.errors import Forbidden, NotFound
from backbone.eventstore import ConcurrencyError
from backbone.messaging import BlobStoreProvider, EventStoreProvider
from backbone.workdays import WorkCalendarProvider
from contracts.calendar import local_date
from contracts.envelope import Actor, Envelope
from contracts.events import AppealStudent
from contracts.reasons import APPEAL_OUTCOMES
from contracts.students import results_stream, school_stream, school_view, student_stream, student_view
from services.appeals import domain
from services.appeals.commands import (
    Check,
    CheckResult,
    FiledStudent,
    FileMonth,
    FilingAnswer,
    FilingStatus,
    Inbox,
    InboxFiling,
    InboxStudent,
    LetterPdf,
    ObjectionAnswer,
    Objections,
    ObjectionsQuery,
    RecordedObjection,
    RecordObjection,
    Rule,
    Ruled,
    ScanType,
    Signed,
    SignedScan,
    SignedScanFile,
)
from services.appeals.letter import letter_pdf

log = logging.getLogger("aid.appeals")
READERS = ("school", *AUTHORITIES, "auditor")
Outcome = Literal["pending", "approved", "rejected", "closed_unhandled"]
MONTH_END = Actor(kind="system", id="appeals:month-end")
CLOSE_INTERVAL = float(os.environ.get("AID_APPEALS_CLOSE_INTERVAL_SECONDS", "300"))


def today() -> date:
    return local_date(config.now())


def filing_stream(store: Any, filing_id: str) -> tuple[str, list[Envelope]]:
    """The stream of ``filing_id`` and its events: a school's month, or a v1 appeal."""
    for stream in (f"appeals-{filing_id}", domain.legacy_stream(filing_id)):
        events = store.read_stream(stream)
        if events:
            return stream, events
    raise NotFound("UNKNOWN_FILING", f"no filing {filing_id}")


def publication(store: Any, school_id: str, month: str) -> str | None:
    """The day the school first published the month's results (MonthResultsPublished)."""
    days = [e.payload["published_on"] for e in store.read_stream(results_stream(school_id, month))
            if e.type == "MonthResultsPublished"]
    return min(days) if days else None


def filing_answer(state: domain.MonthAppeals) -> FilingAnswer:
    filed = state.filed
    assert filed is not None
    status: FilingStatus = ("closed_unhandled" if state.closed is not None
                            else "waiting" if state.unruled() else "ruled")
    return FilingAnswer(
        filing_id=filed.filing_id, school_id=filed.school_id, month=filed.month, filed_on=filed.filed_on,
        authority_level=filed.authority_level, signed=state.scan_ref is not None, status=status,
        students=[filed_student(state, s) for s in filed.students])


def filed_student(state: domain.MonthAppeals, student: AppealStudent) -> FiledStudent:
    ruling = state.rulings.get(student.student_id)
    closed = state.closed is not None and student.student_id in state.closed.student_ids
    outcome: Outcome = ruling.decision if ruling is not None else "closed_unhandled" if closed else "pending"
    zh, en = APPEAL_OUTCOMES[outcome]
    return FiledStudent(student_id=student.student_id, class_name=student.class_name,
                        name_masked=student.name_masked, objected_on=student.objected_on,
                        objection_ids=student.objection_ids, reason=student.reason, outcome=outcome,
                        outcome_zh=zh, outcome_en=en, ruling_reason=ruling.reason if ruling else None)


def month_start(day: date) -> str:
    """The first day of ``day``'s month (ISO)."""
    return day.replace(day=1).isoformat()


def next_month_start(day: date) -> str:
    """The first day of the month after ``day``'s (ISO)."""
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1).isoformat()


def close_due(store: Any, day: date) -> list[str]:
    """Close every filing whose month is over with students not ruled (AppealClosedUnhandled);
    the filings closed. Safe to run anywhere and often: a concurrent run loses on the stream
    version and changes nothing. Reads exactly the filings filed before this month that are
    neither closed nor fully ruled (``unclosed_filings``: by index, however long the log)."""
    closed: list[str] = []
    for filed in store.unclosed_filings(month_start(day)):
        filing_id = filed.payload["filing_id"]
        stream, events = filing_stream(store, filing_id)
        state = domain.month_appeals(events)
        event = domain.close_unhandled(state, day)
        if event is None:
            continue
        try:
            store.record(event, stream, MONTH_END, expected_version=state.version)
        except ConcurrencyError:
            continue  # a ruling or another closing run came first: decided on the next run
        log.info("filing %s closed unhandled (%d students)", filing_id, len(event.student_ids))
        closed.append(filing_id)
    return closed


class AppealsService(EdgeService):
    name = "appeals"
    store = EventStoreProvider()
    blobs = BlobStoreProvider()
    calendar = WorkCalendarProvider()

    # ------------------------------------------------------------------ objections, filing

    @route("POST", "/appeals/objections", roles=("school",), body=RecordObjection, returns=ObjectionAnswer,
           status=201, idempotent=True)
    def record_objection(self, call: Call) -> Answer:
        """Record a student's written objection to a published month, with the day it was received."""
        command: RecordObjection = call.body
        student = student_for(call, self.store, command.student_id)
        school_id = str(student.school_id)
        stream = domain.month_stream(school_id, command.month)
        state = domain.month_appeals(self.store.read_stream(stream))
        event = domain.record_objection(
            state, objection_id=str(uuid.uuid4()), student_id=command.student_id, school_id=school_id,
            month=command.month, received_on=command.received_on, reason=command.reason,
            published_on=publication(self.store, school_id, command.month), today=today(),
            calendar=self.calendar)
        self.store.record(event, stream, call.actor(), expected_version=state.version)
        return 201, ObjectionAnswer(
            objection_id=event.objection_id, student_id=event.student_id, month=event.month,
            received_on=event.received_on, published_on=event.published_on,
            window_ends_on=event.window_ends_on, filing_id=domain.filing_id_of(school_id, event.month))

    @route("GET", "/appeals/schools/<school_id>/objections", roles=("school", *AUTHORITIES),
           query=ObjectionsQuery, returns=Objections, personal=True)
    def objections(self, call: Call) -> Answer:
        """The objections a school recorded for a month, to check before filing (names masked).

        School staff: their own school; an authority: a school of its area whose appeals its
        level rules (403 OUTSIDE_AREA, NOT_SAME_LEVEL)."""
        month = call.query.month
        school = school_for(call, self.store, call.path["school_id"])  # own school, or area (403)
        assert school.registered is not None
        if call.caller.role in AUTHORITIES and call.caller.role != school.registered.administered_by:
            raise Forbidden("NOT_SAME_LEVEL", f"the appeals of school {school.school_id} go to the"
                                              f" {school.registered.administered_by} authority")
        state = domain.month_appeals(self.store.read_stream(domain.month_stream(school.school_id, month)))
        rows = []
        for o in state.objections:
            call.read_personal(o.student_id)
            reg = student_view(o.student_id, self.store.read_stream(student_stream(o.student_id))).registered
            rows.append(RecordedObjection(
                objection_id=o.objection_id, student_id=o.student_id,
                class_name=reg.class_name if reg is not None else None,
                name_masked=reg.name_masked if reg is not None else None,
                received_on=o.received_on, reason=o.reason, window_ends_on=o.window_ends_on))
        return 200, Objections(school_id=school.school_id, month=month,
                               filing_id=domain.filing_id_of(school.school_id, month),
                               filed=state.filed is not None, objections=rows)

    @route("POST", "/appeals/filings", roles=("school",), body=FileMonth, returns=FilingAnswer, status=201,
           idempotent=True)
    def file_month(self, call: Call) -> Answer:
        """File the school's month: one filing of its objections, with the letter to print and sign."""
        command: FileMonth = call.body
        school = school_for(call, self.store, str(call.caller.school))
        assert school.registered is not None
        stream = domain.month_stream(school.school_id, command.month)
        state = domain.month_appeals(self.store.read_stream(stream))
        students = {o.student_id: student_view(o.student_id, self.store.read_stream(
            student_stream(o.student_id))).registered for o in state.objections}
        day = today()
        rows = domain.letter_students(state, students) if state.objections else []
        pdf = letter_pdf(domain.letter(school.registered, command.month, rows, day)) if rows else b""
        with self.blobs.staged() as letters:  # a failed append removes the letter this request stored
            ref = letters.put(pdf) if pdf else ""
            event = domain.file_month(state, school=school.registered, month=command.month, today=day,
                                      students=students, letter_ref=ref)
            self.store.record(event, stream, call.actor(), expected_version=state.version)
        state.filed = event
        return 201, filing_answer(state)

    def _filing(self, call: Call, filing_id: str) -> tuple[str, domain.MonthAppeals]:
        stream, events = filing_stream(self.store, filing_id)
        state = domain.month_appeals(events)
        if state.filed is None:
            raise NotFound("UNKNOWN_FILING", f"no filing {filing_id}")
        school_for(call, self.store, state.filed.school_id)  # the caller's school or area (403)
        return stream, state

    @route("GET", "/appeals/filings/<filing_id>", roles=READERS, returns=FilingAnswer)
    def filing(self, call: Call) -> Answer:
        """A filing: its students, whether signed, and whether ruled."""
        _, state = self._filing(call, call.path["filing_id"])
        return 200, filing_answer(state)

    @route("GET", "/appeals/filings/<filing_id>/letter", roles=READERS, returns=LetterPdf)
    def letter(self, call: Call) -> Answer:
        """The filing's formal letter (公函) as a PDF to print, sign and stamp."""
        _, state = self._filing(call, call.path["filing_id"])
        assert state.filed is not None
        if not state.filed.letter_ref:
            raise NotFound("NO_LETTER", "this filing (an appeal of the old kind) has no generated letter")
        pdf = self.blobs.get(state.filed.letter_ref)
        return 200, LetterPdf(filing_id=state.filed.filing_id, filename=f"申诉函-{state.filed.filing_id}.pdf",
                              content_base64=base64.b64encode(pdf).decode())

    @route("POST", "/appeals/filings/<filing_id>/signed", roles=("school",), body=SignedScan, returns=Signed,
           status=201, idempotent=True, max_body=9 * 1024 * 1024)
    def attach_signed(self, call: Call) -> Answer:
        """Attach the scan of the signed and stamped letter."""
        command: SignedScan = call.body
        stream, state = self._filing(call, call.path["filing_id"])
        with self.blobs.staged() as scans:
            domain.attach_scan(state, "-")  # refuse before storing anything
            event = domain.attach_scan(state, scans.put(command.scan))
            self.store.record(event, stream, call.actor(), expected_version=state.version)
        return 201, Signed(filing_id=event.filing_id, scan_ref=event.scan_ref)

    @route("GET", "/appeals/filings/<filing_id>/signed", roles=READERS, returns=SignedScanFile)
    def signed_scan(self, call: Call) -> Answer:
        """The signed and stamped letter's scan: for the school, the same-level authority of its
        area (the one that rules on the filing) and the auditor."""
        _, state = self._filing(call, call.path["filing_id"])
        filed = state.filed
        assert filed is not None
        if call.caller.role in AUTHORITIES:
            school = school_view(filed.school_id, self.store.read_stream(school_stream(filed.school_id)))
            registered = school.registered
            level = filed.authority_level or (registered.administered_by if registered else None)
            if call.caller.role != level:
                raise Forbidden("NOT_SAME_LEVEL", f"this filing is ruled by the {level} authority")
        if state.scan_ref is None:
            raise NotFound("NOT_SIGNED", f"filing {filed.filing_id} has no signed scan attached yet")
        try:
            scan = self.blobs.get(state.scan_ref)
        except BlobNotFound:
            raise NotFound("SCAN_MISSING", f"the scan of filing {filed.filing_id} is not stored") from None
        kind: ScanType
        kind, suffix = (("image/jpeg", "jpg") if scan.startswith(b"\xff\xd8\xff")
                        else ("image/png", "png") if scan.startswith(b"\x89PNG\r\n\x1a\n")
                        else ("application/octet-stream", "bin"))
        return 200, SignedScanFile(filing_id=filed.filing_id, content_type=kind,
                                   filename=f"申诉函签字盖章件-{filed.filing_id}.{suffix}",
                                   content_base64=base64.b64encode(scan).decode())

    # ------------------------------------------------------------------ the authority

    @route("GET", "/appeals/inbox", roles=AUTHORITIES, returns=Inbox, personal=True)
    def inbox(self, call: Call) -> Answer:
        """The filings waiting for the caller's ruling, each student with their checks and evidence."""
        caller = call.caller
        filings = []
        checks: dict[str, list[tuple[Envelope, list[Envelope]]]] = {}  # month: its checks and streams
        day = today()
        # rulings are taken within the month filed (else 409 FILING_CLOSED): this month's filings
        for env in self.store.filings(month_start(day), next_month_start(day)):
            p = env.payload
            level, city, county = p.get("authority_level"), p.get("city"), p.get("county")
            if level is None:  # a v1 appeal: who rules is the school's, as registered
                school = school_view(p["school_id"], self.store.read_stream(school_stream(p["school_id"])))
                if school.registered is None:
                    continue
                level, city, county = (school.registered.administered_by, school.registered.city,
                                       school.registered.county)
            if level != caller.role or not caller.covers_area(city or "", county or ""):
                continue
            _, events = filing_stream(self.store, p["filing_id"])
            state = domain.month_appeals(events)
            if state.filed is None or state.closed is not None or not state.unruled():
                continue
            month = state.filed.month
            if month not in checks:
                checks[month] = [(c, self.store.read_stream(c.stream))
                                 for c in self.store.checks_of_month(month)]
            students = []
            for s in state.filed.students:
                call.read_personal(s.student_id)
                evidence = self._evidence(checks[month], s.student_id, state.filed.school_id)
                ruling = state.rulings.get(s.student_id)
                students.append(InboxStudent(
                    student_id=s.student_id, class_name=s.class_name, name_masked=s.name_masked,
                    objected_on=s.objected_on, reason=s.reason, ruling=ruling.decision if ruling else None,
                    failed_checks=[c for c in evidence if c.result == "failed"],
                    other_checks=[c for c in evidence if c.result != "failed"]))
            filings.append(InboxFiling(filing_id=state.filed.filing_id, school_id=state.filed.school_id,
                                       month=state.filed.month, filed_on=state.filed.filed_on,
                                       signed=state.scan_ref is not None, students=students))
        return 200, Inbox(filings=filings)

    def _evidence(self, checks: list[tuple[Envelope, list[Envelope]]], student_id: str,
                  school_id: str) -> list[Check]:
        """The checks of the month (each CheckOpened with its check stream) that concerned the
        student, with what the log holds of them: capture verdicts (reasons, when taken; never a
        photo; by the verdict index), absences and forced passes (the check's stream)."""
        out = []
        for env, stream in checks:
            p = env.payload
            if p.get("student_ids") is not None:
                if student_id not in p["student_ids"]:
                    continue
            elif p.get("school_ids") is not None and school_id not in p["school_ids"]:
                continue
            own = [e for e in stream if e.payload.get("student_id") == student_id]
            absences = [{"reason": e.payload["reason"], "reported_at": e.payload["reported_at"]}
                        for e in own if e.type == "AbsenceMarked"]
            forced = [{"attempts": e.payload["attempts"], "terminal_id": e.payload["terminal_id"],
                       "evidence_ref": e.payload["evidence_ref"]}
                      for e in own if e.type == "ForcedPassRecorded"]
            verdicts = [{"capture_id": v.payload["capture_id"], "channel": v.payload["channel"],
                         "verdict": "verified" if v.type == "CaptureVerified" else "rejected",
                         "reasons": v.payload.get("reasons", []), "captured_at": v.payload.get("captured_at")}
                        for v in self.store.verdicts(p["check_id"], student_id)]
            is_closed = any(e.type == "CheckClosed" for e in stream)
            result: CheckResult = (
                "passed" if any(v["verdict"] == "verified" for v in verdicts) else "forced_pass" if forced
                else "excused" if absences else "failed" if is_closed else "open")
            out.append(Check(check_id=p["check_id"], kind=p["kind"], opens_at=p["opens_at"],
                             closes_at=p["closes_at"], closed=is_closed, result=result, verdicts=verdicts,
                             absences=absences, forced_passes=forced))
        return out

    @route("POST", "/appeals/filings/<filing_id>/rulings", roles=AUTHORITIES, body=Rule, returns=Ruled)
    def rule(self, call: Call) -> Answer:
        """Rule on one student of a filing: approved or rejected, with a reason."""
        command: Rule = call.body
        stream, events = filing_stream(self.store, call.path["filing_id"])
        state = domain.month_appeals(events)
        if state.filed is None:
            raise NotFound("UNKNOWN_FILING", f"no filing {call.path['filing_id']}")
        school = school_for(call, self.store, state.filed.school_id)  # another area: 403 OUTSIDE_AREA
        assert school.registered is not None
        event = domain.rule(state, student_id=command.student_id, decision=command.decision,
                            reason=command.reason, level=call.caller.role,
                            school_level=school.registered.administered_by, today=today())
        self.store.record(event, stream, call.actor(), expected_version=state.version)
        return 200, Ruled(filing_id=event.appeal_id, student_id=event.student_id, decision=event.decision,
                          decided_by=event.decided_by)

    # ------------------------------------------------------------------ month end

    @timer(interval=CLOSE_INTERVAL)
    def close_months(self) -> None:
        """Close the filings whose month is over with students not ruled (runs every few minutes)."""
        closed = close_due(self.store, today())
        if closed:
            log.info("closed %d filings unhandled at month end", len(closed))


SERVICE = AppealsService
