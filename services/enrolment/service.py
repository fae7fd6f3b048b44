"""enrolment service: the school and terminal registry, student registration and new capture
(新增采集), over the edge (:mod:`backbone.edge`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backbone import challenges, config
from backbone.edge import Answer, Call, EdgeService, route, school_for, student_for
from backbone.errors import Conflict
from backbone.eventstore import ConcurrencyError
from backbone.issuer import new_terminal_secret, secret_hash
from backbone.messaging import BlobStoreProvider, EventStoreProvider, event_consumer, output_event_id
from contracts import Actor, build_envelope
from contracts.calendar import local_date
from contracts.envelope import Envelope
from contracts.students import (
    StudentView,
    capture_stream,
    school_stream,
    school_view,
    student_stream,
    student_view,
)
from contracts.terminals import terminal_stream
from services.enrolment import domain, roster
from services.enrolment.commands import (
    EvidenceFiled,
    FileEvidence,
    ImportReport,
    ImportStudents,
    Left,
    RecordLeaving,
    Registered,
    RegisterSchool,
    RegisterStudent,
    RegisterTerminal,
    RevokeTerminal,
    School,
    SchoolRegisteredAnswer,
    Student,
    SubmitEnrolment,
    Submitted,
    Terminal,
    TerminalCredential,
    TerminalQuery,
    TerminalRevokedAnswer,
    Terminals,
)
from services.enrolment.credentials import TerminalCredentials

SETTINGS = config.load()
STAFF = ("school",)
AREA_READERS = ("school", "county", "city", "province", "auditor")
CAPTURE_MAX_BODY = 16 * 1024 * 1024  # 10 frames and the ID-card photo, base64
EVIDENCE_MAX_BODY = 8 * 1024 * 1024
ROSTER_MAX_BODY = 4 * 1024 * 1024  # a 3 MiB file, base64


class EnrolmentService(EdgeService):
    name = "enrolment"
    store = EventStoreProvider()
    blobs = BlobStoreProvider()

    def _terminal(self, terminal_id: str) -> domain.TerminalView:
        return domain.terminal_view(terminal_id, self.store.read_stream(terminal_stream(terminal_id)))

    def _credentials(self) -> TerminalCredentials:
        return TerminalCredentials(self.store.pool)

    # ------------------------------------------------------------------------- schools

    @route("POST", "/schools", roles=("operations",), body=RegisterSchool, returns=SchoolRegisteredAnswer,
           status=201)
    def register_school(self, call: Call) -> Answer:
        """Register a school, or correct its registration."""
        command: RegisterSchool = call.body
        current = school_view(command.school_id, self.store.read_stream(school_stream(command.school_id)))
        event = domain.register_school(command)
        self.store.record(event, school_stream(event.school_id), call.actor(),
                          expected_version=current.version)
        return 201, SchoolRegisteredAnswer(school_id=event.school_id)

    @route("GET", "/schools/<school_id>", roles=(*AREA_READERS, "operations"), returns=School)
    def school(self, call: Call) -> Answer:
        """Read a school's registration."""
        view = school_for(call, self.store, call.path["school_id"])
        r = domain.registered_school(view)
        return 200, School(school_id=r.school_id, name=r.name, city=r.city, county=r.county,
                           administered_by=r.administered_by, directly_administered=r.directly_administered)

    # ------------------------------------------------------------------------- terminals

    @route("POST", "/terminals", roles=("operations",), body=RegisterTerminal, returns=TerminalCredential,
           status=201)
    def register_terminal(self, call: Call) -> Answer:
        """Register a school's terminal and issue its client credentials."""
        command: RegisterTerminal = call.body
        school = school_view(command.school_id, self.store.read_stream(school_stream(command.school_id)))
        existing = self._terminal(command.terminal_id)
        event = domain.register_terminal(command, school, existing)
        secret = new_terminal_secret()
        credentials = self._credentials()
        if not credentials.create(event.terminal_id, event.school_id, secret_hash(secret)):
            raise Conflict("TERMINAL_EXISTS", f"terminal {event.terminal_id} is registered already")
        try:
            self.store.record(event, terminal_stream(event.terminal_id), call.actor(), expected_version=0)
        except BaseException:
            credentials.forget(event.terminal_id, secret_hash(secret))
            raise
        return 201, TerminalCredential(terminal_id=event.terminal_id, school_id=event.school_id,
                                       client_id=event.terminal_id, client_secret=secret)

    @route("POST", "/terminals/<terminal_id>/secret", roles=("operations",), returns=TerminalCredential)
    def rotate_secret(self, call: Call) -> Answer:
        """Replace a terminal's client secret."""
        view = self._terminal(call.path["terminal_id"])
        school_id = domain.active_terminal(view)
        secret = new_terminal_secret()
        if not self._credentials().rotate(view.terminal_id, secret_hash(secret)):
            raise Conflict("TERMINAL_REVOKED", f"terminal {view.terminal_id} is revoked")
        return 200, TerminalCredential(terminal_id=view.terminal_id, school_id=school_id,
                                       client_id=view.terminal_id, client_secret=secret)

    @route("POST", "/terminals/<terminal_id>/revoke", roles=("operations",), body=RevokeTerminal,
           returns=TerminalRevokedAnswer)
    def revoke_terminal(self, call: Call) -> Answer:
        """Revoke a terminal: no new token, and its live tokens are refused."""
        view = self._terminal(call.path["terminal_id"])
        event = domain.revoke_terminal(view, call.body)
        self._credentials().revoke(view.terminal_id)  # first: a failed append below leaves it refused
        self.store.record(event, terminal_stream(view.terminal_id), call.actor(),
                          expected_version=view.version)
        return 200, TerminalRevokedAnswer(terminal_id=event.terminal_id, school_id=event.school_id,
                                          revoked=True)

    @route("GET", "/terminals", roles=(*STAFF, "operations"), query=TerminalQuery, returns=Terminals)
    def terminals(self, call: Call) -> Answer:
        """List terminals (without secrets)."""
        query: TerminalQuery = call.query
        school_id = query.school_id
        if call.caller.role == "school":
            school_id = school_id or call.caller.school
            call.require_school(str(school_id))
        listed = []
        for terminal_id in self._credentials().terminal_ids(school_id):
            view = self._terminal(terminal_id)
            if view.school_id is not None:
                listed.append(Terminal(terminal_id=terminal_id, school_id=view.school_id, label=view.label,
                                       revoked=view.revoked))
        return 200, Terminals(terminals=listed)

    # ------------------------------------------------------------------------- students

    @route("POST", "/students", roles=(*STAFF, "operations"), body=RegisterStudent, returns=Registered,
           status=201, idempotent=True)
    def register(self, call: Call) -> Answer:
        """Register a proposed-aid student."""
        command: RegisterStudent = call.body
        school = school_for(call, self.store, command.school_id)
        stream = student_stream(command.student_id)
        existing = student_view(command.student_id, self.store.read_stream(stream))
        event = domain.register(command, school, SETTINGS.id_hash_key, existing)
        self.store.record(event, stream, call.actor(), expected_version=existing.version)
        return 201, Registered(student_id=event.student_id, id_number_masked=event.id_number_masked)

    @route("POST", "/students/import", roles=(*STAFF, "operations"), body=ImportStudents,
           returns=ImportReport, idempotent=True, max_body=ROSTER_MAX_BODY)
    def import_students(self, call: Call) -> Answer:
        """Register a school's proposed-aid students from a CSV or XLSX roster.

        Every row is checked (fields, duplicates within the file, student numbers and ID numbers
        registered already); each row that passes is registered as ``POST /students`` does, the
        others change nothing. The report names each row and the column of each problem, never
        an ID number or a name. A file that cannot be read is a 422 (NOT_A_WORKBOOK,
        WRONG_ENCODING, EMPTY_FILE, NO_ROWS, MISSING_COLUMN, ...)."""
        command: ImportStudents = call.body
        school = school_for(call, self.store, command.school_id)
        rows = roster.parse(command.format, command.file, command.school_id)

        def student_of(student_id: str) -> StudentView:
            return student_view(student_id, self.store.read_stream(student_stream(student_id)))

        planned = roster.decide(rows, school, SETTINGS.id_hash_key, student_of, self._id_number_owners)
        if not command.dry_run:
            for row, event in planned:
                try:
                    self.store.record(event, student_stream(event.student_id), call.actor(),
                                      expected_version=0)
                except ConcurrencyError:  # registered meanwhile by another request
                    row.refuse("exists", "student_id", "ALREADY_REGISTERED",
                               "this student number is registered already")
        return 200, roster.report(rows, dry_run=command.dry_run)

    def _id_number_owners(self, hashes: Sequence[str]) -> dict[str, str]:
        """The student number each ID-number hash is registered under (all schools; one lookup
        on the partial index events_student_id_number_hash_idx)."""
        if not hashes:
            return {}
        with self.store.pool.connection() as conn:
            found = conn.execute(
                "SELECT payload->>'id_number_hash', payload->>'student_id' FROM events"
                " WHERE type = 'StudentRegistered' AND payload->>'id_number_hash' = ANY(%s)",
                (list(hashes),)).fetchall()
        return {str(h): str(s) for h, s in found}

    @route("GET", "/students/<student_id>", roles=(*AREA_READERS, "student"), returns=Student, personal=True)
    def student(self, call: Call) -> Answer:
        """Read a student's registration and enrolment (masked)."""
        view = student_for(call, self.store, call.path["student_id"])
        r = view.registered
        assert r is not None  # student_for refuses unregistered students
        call.read_personal(view.student_id)
        return 200, Student(
            student_id=r.student_id, school_id=r.school.school_id, city=r.school.city, county=r.school.county,
            name_masked=r.name_masked, id_number_masked=r.id_number_masked, grade=r.grade,
            class_name=r.class_name, major=r.major, enrolment_year=r.enrolment_year,
            enrolment_season=r.enrolment_season, proposed_aid=r.proposed_aid, enrolled=view.enrolled_mode,
            semesters=list(view.enrolled_semesters), left_on=view.left.left_on if view.left else None,
            leaving_reason=view.left.reason if view.left else None,
            to_school_id=view.left.to_school_id if view.left else None)

    @route("POST", "/students/<student_id>/leave", roles=(*STAFF, "operations"), body=RecordLeaving,
           returns=Left, status=201, idempotent=True)
    def record_leaving(self, call: Call) -> Answer:
        """Record that a student left school (withdrawn, graduated, transferred).

        The student's own school or operations; once per student (409 ``ALREADY_LEFT``); the day
        is today or earlier (422 ``BAD_DATE``); ``to_school_id`` only for a transfer. Eligibility
        pays no aid from the month after ``left_on`` (``aid_stops_from``)."""
        command: RecordLeaving = call.body
        view = student_for(call, self.store, call.path["student_id"])
        event = domain.record_leaving(view, command, local_date(config.now()))
        self.store.record(event, student_stream(event.student_id), call.actor(),
                          expected_version=view.version)
        return 201, Left(student_id=event.student_id, school_id=event.school_id, reason=event.reason,
                         left_on=event.left_on, to_school_id=event.to_school_id,
                         aid_stops_from=domain.aid_stops_from(event.left_on))

    # ------------------------------------------------------------------------- captures
    # Photos are stored only once every check that can refuse the request has passed, and removed
    # again (those this request created) if the event cannot be recorded.

    @route("POST", "/enrolments/challenges", roles=("terminal",), body=challenges.IssueChallenge,
           returns=challenges.ChallengeAnswer, status=201)
    def issue_challenge(self, call: Call) -> Answer:
        """Draw the liveness action (blink, turn left, turn right) the next new-capture burst of
        this student must show; the capture names the challenge (docs/liveness.md)."""
        command: challenges.IssueChallenge = call.body
        student = student_for(call, self.store, command.student_id)
        station = domain.Station(school_id=str(call.caller.school), terminal_id=str(call.caller.terminal))
        domain.check_capture(student, station)
        event = challenges.issue(command.student_id, station.school_id, "enrolment", "terminal", config.now(),
                                 terminal_id=station.terminal_id)
        self.store.record(event, challenges.challenge_stream(event.challenge_id), call.actor(),
                          expected_version=0)
        return 201, challenges.answer(event)

    @route("POST", "/enrolments", roles=("terminal",), body=SubmitEnrolment, returns=Submitted, status=202,
           idempotent=True, max_body=CAPTURE_MAX_BODY)
    def capture(self, call: Call) -> Answer:
        """Submit a new capture (live frames and the ID-card photo) from a terminal, answering a
        liveness challenge (`challenge_id`, `frame_times_ms`)."""
        command: SubmitEnrolment = call.body
        student = student_for(call, self.store, command.student_id)
        station = domain.Station(school_id=str(call.caller.school), terminal_id=str(call.caller.terminal))
        domain.check_capture(student, station)
        issued, used = None, False
        if command.challenge_id is not None:
            issued, used = challenges.lookup(self.store, command.challenge_id)
        with self.blobs.staged() as photos:  # a failure from here on removes the photos stored
            frames = [photos.put(frame) for frame in command.frames]
            id_photo = photos.put(command.id_photo)
            now = config.now()
            event = domain.submit_enrolment(student, command, station, frames, id_photo, now)
            if command.challenge_id is not None:
                event = challenges.answered_by(event, issued, used, command.frame_times_ms, now)
            else:
                event = challenges.with_frame_times(event, command.frame_times_ms)
            self.store.record(event, capture_stream(event.capture_id), call.actor(),
                              expected_version=0)
        return 202, Submitted(capture_id=event.capture_id, status="submitted")

    @route("POST", "/enrolments/evidence", roles=("terminal", *STAFF), body=FileEvidence,
           returns=EvidenceFiled, status=201, idempotent=True, max_body=EVIDENCE_MAX_BODY)
    def evidence(self, call: Call) -> Answer:
        """File the evidence photo of a student whose ID card cannot be read."""
        command: FileEvidence = call.body
        student = student_for(call, self.store, command.student_id)
        domain.check_evidence(student)
        with self.blobs.staged() as photos:
            ref = photos.put(command.evidence_photo)
            event = domain.file_evidence(student, command, ref, config.now())
            self.store.record(event, student_stream(event.student_id), call.actor(),
                              expected_version=student.version)
        return 201, EvidenceFiled(student_id=event.student_id, mode=event.mode)

    # ------------------------------------------------------------------------- face-matching results

    @event_consumer("CaptureVerified", "CaptureRejected")
    def on_capture_result(self, envelope: Envelope) -> None:
        def effect(conn: Any) -> list[Envelope]:
            outcome = domain.enrolment_outcome(envelope)
            if outcome is None:
                return []
            return [build_envelope(outcome, stream=student_stream(outcome.student_id),
                                   actor=Actor(kind="service", id="enrolment", school=outcome.school_id),
                                   occurred_at=envelope.occurred_at,
                                   event_id=output_event_id("enrolment", envelope),
                                   correlation_id=envelope.correlation_id, causation_id=envelope.event_id)]

        self.store.handle_once("enrolment", envelope, effect)


SERVICE = EnrolmentService
