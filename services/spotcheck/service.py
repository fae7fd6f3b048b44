"""spotcheck service: opens and closes checks, takes check-in captures and answers their
verdicts, marks absences, records forced passes, publishes a school's month results.

Every write is recorded as the caller (``call.actor()``); the level that opens a check, the
school, the terminal and the channel of a capture come from the caller's credential. Photos
are stored only once every rule that can refuse the request has passed, and removed again if
recording the event then fails.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from typing import Any

from pydantic import BaseModel

from backbone import challenges, config
from backbone.auth import AUTHORITIES
from backbone.edge import Answer, Call, EdgeService, Refusal, route, school_for, student_for
from backbone.logwatch import LogWatchProvider, TooManyWaiting
from backbone.messaging import BlobStoreProvider, EventStoreProvider
from contracts.calendar import local_date
from contracts.events import PlacementRefused
from contracts.reasons import describe
from contracts.students import (
    SchoolView,
    StudentView,
    capture_stream,
    school_stream,
    school_view,
    student_stream,
    student_view,
)
from services.spotcheck import domain, internships
from services.spotcheck.commands import (
    AbsenceAnswer,
    Accepted,
    Attachment2,
    CheckAnswer,
    CheckItem,
    CheckQuery,
    Checks,
    Closed,
    ConfirmPlacement,
    Departure,
    EndPlacement,
    FileInternshipPlan,
    ForcedPass,
    ForcePass,
    MarkAbsence,
    OpenCheck,
    PlacementAnswer,
    PlacementItem,
    Placements,
    PlacementsQuery,
    PlanFiled,
    PlanMovement,
    Published,
    PublishResults,
    Reason,
    Return,
    SubmitCapture,
    UpdatePlacement,
    Verdict,
    WaitQuery,
)

CAPTURE_MAX_BODY = 16 * 1024 * 1024
EVIDENCE_MAX_BODY = 9 * 1024 * 1024
VERDICT_READERS = ("terminal", "school", "student", *AUTHORITIES, "auditor")
ATTACHMENT2_READERS = ("school", *AUTHORITIES, "auditor")
# Long polls sleep without a worker's database connection (one listener connection per process
# wakes them when the verdict is in the log: backbone/logwatch.py), but each holds a nameko
# worker: at most this many wait at once (beyond: 503 TOO_MANY_WAITING), so requests always find one.
MAX_WAITING = 32


def verdict_answer(state: domain.CaptureState) -> Verdict:
    capture = state.submitted
    reasons = [Reason(code=code, message_zh=zh, message_en=en)
               for code in state.reasons for zh, en in [describe(code)]]
    return Verdict(capture_id=capture.capture_id, status=state.status, reasons=reasons,
                   student_id=capture.student_id, school_id=capture.school_id, check_id=capture.check_id,
                   channel=capture.channel, attempt=capture.attempt, captured_at=capture.captured_at,
                   decided_at=state.decided_at.isoformat() if state.decided_at else None)


class SpotcheckService(EdgeService):
    name = "spotcheck"
    max_workers = MAX_WAITING + 32
    store = EventStoreProvider()
    blobs = BlobStoreProvider()
    log_watch = LogWatchProvider(max_waiters=MAX_WAITING)

    def _check(self, check_id: str) -> domain.CheckView:
        return domain.check_view(check_id, self.store.read_stream(domain.check_stream(check_id)))

    def _capture(self, capture_id: str) -> domain.CaptureState:
        return domain.capture_state(capture_id, self.store.read_stream(capture_stream(capture_id)))

    def _student(self, student_id: str) -> StudentView:
        return student_view(student_id, self.store.read_stream(student_stream(student_id)))

    def _school(self, school_id: str) -> SchoolView:
        return school_view(school_id, self.store.read_stream(school_stream(school_id)))

    @staticmethod
    def _device(call: Call) -> domain.Device:
        if call.caller.role == "terminal":
            return domain.Device("terminal", call.caller.terminal)
        return domain.Device("app")

    @route("POST", "/checks", roles=AUTHORITIES, body=OpenCheck, returns=CheckAnswer, status=201,
           idempotent=True)
    def open_check(self, call: Call) -> Answer:
        """Open a routine or targeted spot check."""
        command: OpenCheck = call.body
        event = domain.open_check(command, str(call.caller.authority_level), config.now())
        if event.kind == "targeted":
            students = {s: self._student(s) for s in event.student_ids or ()}
            schools = {school: self._school(school) for school in
                       {v.school_id for v in students.values() if v.school_id is not None}}
            domain.require_targets(event, students, schools)
        for school_id in event.school_ids or ():
            school_for(call, self.store, school_id)  # registered, and inside the caller's area
        self.store.record(event, domain.check_stream(event.check_id), call.actor(), expected_version=0)
        return 201, CheckAnswer(
            check_id=event.check_id, kind=event.kind, initiated_by=event.initiated_by,
            semester=event.semester, month=event.month, opens_at=event.opens_at, closes_at=event.closes_at,
            schools=len(event.school_ids) if event.school_ids is not None else None,
            students=len(event.student_ids) if event.student_ids is not None else None)

    def _covers(self, call: Call, school_ids: list[str] | None) -> bool:
        """Does a check naming ``school_ids`` (None: every school) concern the caller's school or area?"""
        caller = call.caller
        if caller.role in ("province", "auditor") or school_ids is None:
            return True
        if caller.role in ("school", "terminal"):
            return caller.school in school_ids
        for school_id in school_ids:
            registered = self._school(school_id).registered
            if registered is not None and caller.covers_area(registered.city, registered.county):
                return True
        return False

    @route("GET", "/checks", roles=("terminal", "school", *AUTHORITIES, "auditor"), query=CheckQuery,
           returns=Checks)
    def list_checks(self, call: Call) -> Answer:
        """List the checks of the caller's school or area, newest first."""
        opened: dict[str, domain.CheckOpened] = {}
        closed: set[str] = set()
        for envelope in self.store.read_types(("CheckOpened", "CheckClosed")):
            check_id = str(envelope.payload["check_id"])
            if envelope.type == "CheckOpened":
                opened[check_id] = domain.CheckOpened(**envelope.payload)
            else:
                closed.add(check_id)
        now = config.now()
        items = []
        for check in reversed(list(opened.values())):
            view = domain.CheckView(check.check_id, opened=check, closed=check.check_id in closed)
            opens, closes = view.window()
            open_now = not view.closed and opens <= now <= closes
            if (call.query.state == "open" and not open_now) or not self._covers(call, check.school_ids):
                continue
            items.append(CheckItem(
                check_id=check.check_id, kind=check.kind, initiated_by=check.initiated_by,
                semester=check.semester, month=check.month, opens_at=check.opens_at,
                closes_at=check.closes_at, closed=view.closed, open_now=open_now,
                schools=len(check.school_ids) if check.school_ids is not None else None,
                students=len(check.student_ids) if check.student_ids is not None else None))
        return 200, Checks(checks=items[:200])

    @route("POST", "/checks/<check_id>/close", roles=AUTHORITIES, returns=Closed)
    def close_check(self, call: Call) -> Answer:
        """Close a check (the level that opened it, or the province)."""
        view = self._check(call.path["check_id"])
        level = str(call.caller.authority_level)
        for school_id in domain.closers_schools(view, level):
            school_for(call, self.store, school_id)
        event = domain.close_check(view, level, config.now())
        self.store.record(event, domain.check_stream(view.check_id), call.actor(),
                          expected_version=view.version)
        return 200, Closed(check_id=view.check_id, closed_at=event.closed_at)

    @route("POST", "/checks/<check_id>/challenges", roles=("terminal", "student"),
           body=challenges.IssueChallenge, returns=challenges.ChallengeAnswer, status=201)
    def issue_challenge(self, call: Call) -> Answer:
        """Draw the liveness action (blink, turn left, turn right) the next check-in burst of this
        student must show; the capture names the challenge (docs/liveness.md)."""
        command: challenges.IssueChallenge = call.body
        view = self._check(call.path["check_id"])
        student = student_for(call, self.store, command.student_id)
        now = config.now()
        # the refusals of a capture, decided now (window, scope, enrolment, device)
        probe = domain.submit_capture(view, SubmitCapture.model_construct(
            student_id=command.student_id, frames=[b""], attempt=1), student, self._device(call), ["-"], now)
        event = challenges.issue(probe.student_id, probe.school_id, "spot_check", probe.channel, now,
                                 terminal_id=probe.terminal_id, check_id=probe.check_id)
        self.store.record(event, challenges.challenge_stream(event.challenge_id), call.actor(),
                          expected_version=0)
        return 201, challenges.answer(event)

    @route("POST", "/checks/<check_id>/captures", roles=("terminal", "student"), body=SubmitCapture,
           returns=Accepted, status=202, idempotent=True, max_body=CAPTURE_MAX_BODY)
    def submit_capture(self, call: Call) -> Answer:
        """Check in: live frames of one student, from the school's terminal or the student's app,
        answering a liveness challenge (`challenge_id`, `frame_times_ms`)."""
        command: SubmitCapture = call.body
        view = self._check(call.path["check_id"])
        student = student_for(call, self.store, command.student_id)
        refs = [self.blobs.reference(frame) for frame in command.frames]
        now = config.now()
        event = domain.submit_capture(view, command, student, self._device(call), refs, now)
        if command.challenge_id is not None:
            issued, used = challenges.lookup(self.store, command.challenge_id)
            event = challenges.answered_by(event, issued, used, command.frame_times_ms, now)
        else:
            event = challenges.with_frame_times(event, command.frame_times_ms)
        with self.blobs.staged() as staged:
            for frame in command.frames:
                staged.put(frame)
            self.store.record(event, capture_stream(event.capture_id), call.actor(),
                              expected_version=0)
        return 202, Accepted(capture_id=event.capture_id, status="submitted")

    @route("GET", "/captures/<capture_id>", roles=VERDICT_READERS, query=WaitQuery, returns=Verdict,
           personal=True)
    def capture_verdict(self, call: Call) -> Answer:
        """A capture's verdict, waiting up to ``wait`` seconds for face matching to decide."""
        capture_id = call.path["capture_id"]
        state = self._capture(capture_id)
        student_for(call, self.store, state.submitted.student_id)
        call.read_personal(state.submitted.student_id)
        wait: int = call.query.wait
        if state.status == "submitted" and wait > 0:
            deadline = time.monotonic() + wait
            try:
                with self.log_watch.watching(capture_stream(capture_id)) as waiter:
                    state = self._capture(capture_id)  # after registering: no verdict falls in between
                    while state.status == "submitted" and (left := deadline - time.monotonic()) > 0:
                        waiter.wait(left)  # green: woken when the capture's stream has a new event
                        state = self._capture(capture_id)
            except TooManyWaiting:
                raise Refusal(503, "TOO_MANY_WAITING", f"more than {MAX_WAITING} requests wait for a"
                              " verdict here; retry shortly", headers={"Retry-After": "1"}) from None
        return 200, verdict_answer(state)

    @route("POST", "/checks/<check_id>/absences", roles=("school",), body=MarkAbsence, returns=AbsenceAnswer,
           status=201, idempotent=True)
    def mark_absence(self, call: Call) -> Answer:
        """Mark why a student of the school misses a check."""
        command: MarkAbsence = call.body
        view = self._check(call.path["check_id"])
        student = student_for(call, self.store, command.student_id)
        event, warnings = domain.mark_absence(view, command, student, config.now())
        self.store.record(event, domain.check_stream(view.check_id), call.actor())
        return 201, AbsenceAnswer(check_id=view.check_id, student_id=event.student_id, reason=event.reason,
                                  warnings=warnings)

    @route("POST", "/checks/<check_id>/forced-passes", roles=("terminal",), body=ForcePass,
           returns=ForcedPass, status=201, idempotent=True, max_body=EVIDENCE_MAX_BODY)
    def force_pass(self, call: Call) -> Answer:
        """Record a forced pass after three failed confirmations at this terminal."""
        command: ForcePass = call.body
        view = self._check(call.path["check_id"])
        student = student_for(call, self.store, command.student_id)
        verdicts = self.store.verdicts(view.check_id, student.student_id)
        event = domain.force_pass(view, command, student, str(call.caller.terminal), verdicts,
                                  self.blobs.reference(command.evidence_photo), config.now())
        with self.blobs.staged() as staged:
            staged.put(command.evidence_photo)
            self.store.record(event, domain.check_stream(view.check_id), call.actor(),
                              expected_version=view.version)
        return 201, ForcedPass(check_id=view.check_id, student_id=event.student_id, forced_pass=True,
                               attempts=event.attempts)

    @route("POST", "/results/publish", roles=("school",), body=PublishResults, returns=Published, status=201,
           idempotent=True)
    def publish_results(self, call: Call) -> Answer:
        """Publish the school's check results of a month."""
        command: PublishResults = call.body
        school_for(call, self.store, command.school_id)
        stream = domain.results_stream(command.school_id, command.month)
        previous = self.store.read_stream(stream)
        event = domain.publish_results(command, previous, config.now())
        version = previous[-1].stream_version if previous else 0
        self.store.record(event, stream, call.actor(), expected_version=version)
        return 201, Published(school_id=event.school_id, month=event.month, published_on=event.published_on,
                              objection_ends_on=domain.objection_ends_on(event.published_on))

    # ------------------------------------------------------------------------- internships, placements

    def _internships(self, school_id: str) -> internships.InternshipsView:
        return internships.internships_view(school_id,
                                            self.store.read_stream(internships.internships_stream(school_id)))

    def _placements(self, school_id: str) -> internships.PlacementsView:
        return internships.placements_view(school_id,
                                           self.store.read_stream(internships.placements_stream(school_id)))

    @route("POST", "/internships", roles=("school",), body=FileInternshipPlan, returns=PlanFiled, status=201,
           idempotent=True)
    def file_internship_plan(self, call: Call) -> Answer:
        """File an internship plan of 3 full months or more (实习计划备案)."""
        command: FileInternshipPlan = call.body
        student = student_for(call, self.store, command.student_id)
        event, warnings = internships.file_plan(command, student, local_date(config.now()))
        self.store.record(event, internships.internships_stream(event.school_id), call.actor())
        return 201, PlanFiled(plan_id=event.plan_id, student_id=event.student_id, kind=event.kind,
                              starts_on=event.starts_on, ends_on=event.ends_on, filed_on=event.filed_on,
                              filed_late=bool(event.filed_late), warnings=warnings)

    def _plan(self, call: Call) -> tuple[internships.InternshipsView, internships.Plan]:
        view = self._internships(str(call.caller.school))
        plan = view.plan(call.path["plan_id"])
        student_for(call, self.store, plan.filed.student_id)
        return view, plan

    @staticmethod
    def _movement(plan: internships.Plan) -> PlanMovement:
        return PlanMovement(plan_id=plan.filed.plan_id, student_id=plan.filed.student_id,
                            departed_on=plan.departed_on, returned_on=plan.returned_on)

    def _move(self, call: Call, step: Any) -> Answer:
        """Record a departure or a return (``step`` is ``internships.depart`` or ``come_back``)."""
        view, plan = self._plan(call)
        event = step(plan, call.body.on, local_date(config.now()))
        self.store.record(event, internships.internships_stream(view.school_id), call.actor(),
                          expected_version=view.version)
        moved = internships.Plan(plan.filed, getattr(event, "departed_on", plan.departed_on),
                                 getattr(event, "returned_on", plan.returned_on))
        return 200, self._movement(moved)

    @route("POST", "/internships/<plan_id>/departed", roles=("school",), body=Departure, returns=PlanMovement,
           idempotent=True)
    def internship_departed(self, call: Call) -> Answer:
        """Record the student's departure for a filed internship."""
        return self._move(call, internships.depart)

    @route("POST", "/internships/<plan_id>/returned", roles=("school",), body=Return, returns=PlanMovement,
           idempotent=True)
    def internship_returned(self, call: Call) -> Answer:
        """Record the student's return from a filed internship."""
        return self._move(call, internships.come_back)

    @staticmethod
    def _placement_answer(placement: internships.Placement) -> BaseModel:
        fields = dataclasses.asdict(placement.confirmed)
        return PlacementAnswer.model_validate({**fields, "ended_on": placement.ended_on})

    @route("POST", "/placements", roles=("terminal",), body=ConfirmPlacement, returns=PlacementAnswer,
           status=201, idempotent=True)
    def confirm_placement(self, call: Call) -> Answer:
        """Confirm a placement internship (顶岗实习) at the terminal before the student leaves."""
        command: ConfirmPlacement = call.body
        student = student_for(call, self.store, command.student_id)
        school_id = str(student.school_id)
        view = self._placements(school_id)
        event = internships.confirm_placement(view, command, student, call.caller.terminal,
                                              local_date(config.now()))
        self.store.record(event, internships.placements_stream(school_id), call.actor(),
                          expected_version=view.version)
        if isinstance(event, PlacementRefused):
            raise internships.first_year_refusal()
        return 201, self._placement_answer(internships.Placement(event))

    def _placement(self, call: Call) -> tuple[internships.PlacementsView, internships.Placement]:
        view = self._placements(str(call.caller.school))
        placement = view.placement(call.path["placement_id"])
        student_for(call, self.store, placement.confirmed.student_id)
        return view, placement

    def _change_placement(self, call: Call, change: Any) -> Answer:
        """Record an update or an early end (``change`` is ``internships.update_placement`` or
        ``end_placement``) and answer with the placement as it now stands."""
        view, placement = self._placement(call)
        event = change(placement, call.body)
        self.store.record(event, internships.placements_stream(view.school_id), call.actor(),
                          expected_version=view.version)
        return 200, self._placement_answer(self._placements(view.school_id).placement(event.placement_id))

    @route("POST", "/placements/<placement_id>/update", roles=("school",), body=UpdatePlacement,
           returns=PlacementAnswer, idempotent=True)
    def update_placement(self, call: Call) -> Answer:
        """Update a placement's company, place, supervisor or dates."""
        return self._change_placement(call, internships.update_placement)

    @route("POST", "/placements/<placement_id>/end", roles=("school",), body=EndPlacement,
           returns=PlacementAnswer, idempotent=True)
    def end_placement(self, call: Call) -> Answer:
        """End a placement early."""
        return self._change_placement(call, internships.end_placement)

    @route("GET", "/schools/<school_id>/placements", roles=ATTACHMENT2_READERS, query=PlacementsQuery,
           returns=Placements, personal=True)
    def list_placements(self, call: Call) -> Answer:
        """A school's placement internships (of a month, or all), by start; name and ID number masked."""
        school_id, month = call.path["school_id"], call.query.month
        school_for(call, self.store, school_id)
        view = self._placements(school_id)
        found = (internships.placements_in(view, month) if month is not None else sorted(
            view.placements.values(), key=lambda p: (p.confirmed.starts_on, p.confirmed.student_id,
                                                     p.confirmed.placement_id)))
        students = {p.confirmed.student_id: self._student(p.confirmed.student_id) for p in found}
        items = []
        for placement in found:
            student_id = placement.confirmed.student_id
            registered = students[student_id].registered
            call.read_personal(student_id)
            items.append(PlacementItem.model_validate({
                **dataclasses.asdict(placement.confirmed), "ended_on": placement.ended_on,
                "name_masked": registered.name_masked if registered else "",
                "id_number_masked": registered.id_number_masked if registered else ""}))
        return 200, Placements.model_validate({"school_id": school_id, "month": month, "placements": items})

    @route("GET", "/schools/<school_id>/placements/<month>/attachment2", roles=ATTACHMENT2_READERS,
           returns=Attachment2)
    def placements_attachment2(self, call: Call) -> Answer:
        """Attachment 2 (顶岗实习备案确认明细表) of a school's month, XLSX in base64, masked."""
        school_id, month = call.path["school_id"], call.path["month"]
        school = school_for(call, self.store, school_id).registered
        assert school is not None  # school_for refuses an unregistered school
        placements = internships.placements_in(self._placements(school_id), month)
        students = {p.confirmed.student_id: self._student(p.confirmed.student_id) for p in placements}
        for student_id in students:
            call.read_personal(student_id)
        rows = internships.attachment2_rows(placements, school, students)
        content = internships.attachment2_xlsx(school, month, rows)
        return 200, Attachment2(filename=internships.attachment2_filename(school_id, month),
                                content_base64=base64.b64encode(content).decode(), rows=len(rows))


SERVICE = SpotcheckService
