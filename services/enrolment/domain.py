"""Schools, terminals, student registration and new capture (新增采集), as pure rules over the
log's streams. Every function takes a typed command (:mod:`services.enrolment.commands`) and the
state it decides on, and returns the event to record; who acts comes from the caller's token.

- Operations register schools (area and same-level authority) and their terminals.
- A proposed-aid student is registered once (StudentRegistered) at a registered school, whose
  city and county the event copies; the ID number is validated (MOD 11-2) and only its keyed
  hash and masked form go into the event.
- Enrolment captures are taken at a terminal: live frames plus the ID-card photo.
- Face matching answers with CaptureVerified or CaptureRejected; :func:`enrolment_outcome`
  turns that into StudentEnrolled: ``verified``; ``provisional`` when the identity could not be
  confirmed (the only reason is NO_MATCH) and the usable live face was stored as the template
  (takes part in this semester's checks only); nothing otherwise (no usable face, unreadable
  ID-card photo, duplicate identity: the student retries). ``evidence_filed`` comes from the
  evidence-photo path at semester end when the ID card cannot be read.

The student and school read models are shared: :mod:`contracts.students`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime

from backbone.errors import Conflict, DomainError, Forbidden, NotFound
from contracts.calendar import semester_of
from contracts.envelope import Envelope
from contracts.events import (
    CaptureSubmitted,
    SchoolRef,
    SchoolRegistered,
    StudentEnrolled,
    StudentLeft,
    StudentRegistered,
    TerminalRegistered,
    TerminalRevoked,
)
from contracts.identity import InvalidIdNumber, hash_id_number, mask_id_number, mask_name, normalise_id_number
from contracts.readmodel import fold
from contracts.students import SchoolView, StudentView
from services.enrolment.commands import (
    FileEvidence,
    RecordLeaving,
    RegisterSchool,
    RegisterStudent,
    RegisterTerminal,
    RevokeTerminal,
    SubmitEnrolment,
)

SEASONS = {"autumn": "autumn", "spring": "spring", "秋季": "autumn", "春季": "spring"}
FINAL_MODES = ("verified", "evidence_filed")


class Unprocessable(DomainError):
    """Well-formed, but a rule refuses the value (HTTP 422)."""

    status = 422



# ----------------------------------------------------------------------------- schools


def register_school(command: RegisterSchool) -> SchoolRegistered:
    """A school's registration; a later one for the same school replaces it."""
    level = "province" if command.directly_administered else command.administered_by
    return SchoolRegistered(school_id=command.school_id, name=command.name, city=command.city,
                            county=command.county, administered_by=level)  # type: ignore[arg-type]


def registered_school(school: SchoolView) -> SchoolRegistered:
    if school.registered is None:
        raise NotFound("UNKNOWN_SCHOOL", f"no registered school {school.school_id}")
    return school.registered


# ----------------------------------------------------------------------------- terminals


@dataclass
class TerminalView:
    terminal_id: str
    school_id: str | None = None
    label: str = ""
    revoked: bool = False
    version: int = 0


def terminal_view(terminal_id: str, events: Iterable[Envelope]) -> TerminalView:
    return fold(TerminalView(terminal_id), events, {
        "TerminalRegistered": lambda view, p: replace(
            view, school_id=str(p["school_id"]), label=str(p["label"]), revoked=False),
        "TerminalRevoked": lambda view, p: replace(view, revoked=True),
    })


def register_terminal(command: RegisterTerminal, school: SchoolView,
                      existing: TerminalView) -> TerminalRegistered:
    """A new terminal of a registered school; a terminal id is used once (revoked ones included)."""
    registered_school(school)
    if existing.school_id is not None:
        raise Conflict("TERMINAL_EXISTS", f"terminal {command.terminal_id} is registered already")
    return TerminalRegistered(terminal_id=command.terminal_id, school_id=command.school_id,
                              label=command.label)


def active_terminal(view: TerminalView) -> str:
    """The school of a registered, unrevoked terminal (its secret may be rotated)."""
    if view.school_id is None:
        raise NotFound("UNKNOWN_TERMINAL", f"no registered terminal {view.terminal_id}")
    if view.revoked:
        raise Conflict("TERMINAL_REVOKED", f"terminal {view.terminal_id} is revoked")
    return view.school_id


def revoke_terminal(view: TerminalView, command: RevokeTerminal) -> TerminalRevoked:
    if view.school_id is None:
        raise NotFound("UNKNOWN_TERMINAL", f"no registered terminal {view.terminal_id}")
    if view.revoked:
        raise Conflict("ALREADY_REVOKED", f"terminal {view.terminal_id} is revoked already")
    return TerminalRevoked(terminal_id=view.terminal_id, school_id=view.school_id, reason=command.reason)


# ----------------------------------------------------------------------------- students


def register(command: RegisterStudent, school: SchoolView, hash_key: bytes,
             existing: StudentView) -> StudentRegistered:
    """Register a proposed-aid student at a registered school (its area comes from the school
    registry). The ID number is validated and kept only as a keyed hash and masked."""
    where = registered_school(school)
    if existing.registered is not None:
        raise Conflict("ALREADY_REGISTERED", f"student {command.student_id} is registered already")
    try:
        id_number = normalise_id_number(command.id_number)
    except InvalidIdNumber as exc:
        raise Unprocessable("INVALID_ID_NUMBER", str(exc)) from exc
    return StudentRegistered(
        student_id=command.student_id,
        school=SchoolRef(school_id=where.school_id, city=where.city, county=where.county),
        name_masked=mask_name(command.name),
        id_number_hash=hash_id_number(hash_key, id_number),
        id_number_masked=mask_id_number(id_number),
        grade=command.grade,
        class_name=command.class_name,
        major=command.major,
        enrolment_year=command.enrolment_year,
        enrolment_season=SEASONS[command.enrolment_season],  # type: ignore[arg-type]
        proposed_aid=command.proposed_aid,
    )


def registered_at(view: StudentView, school_id: str) -> StudentRegistered:
    """The registration of a student of ``school_id`` (404 unknown, 403 another school's)."""
    if view.registered is None:
        raise NotFound("UNKNOWN_STUDENT", f"no registered student {view.student_id}")
    if view.registered.school.school_id != school_id:
        raise Forbidden("OUTSIDE_AREA", f"student {view.student_id} is not registered at school {school_id}")
    return view.registered


# ----------------------------------------------------------------------------- leaving school


def record_leaving(view: StudentView, command: RecordLeaving, today: date) -> StudentLeft:
    """The student's leaving (离校: withdrawn, graduated, transferred), recorded once, on a day that
    has come (Asia/Shanghai). Who may record it (the student's school, operations) is the edge's."""
    if view.registered is None:
        raise NotFound("UNKNOWN_STUDENT", f"no registered student {view.student_id}")
    if view.left is not None:
        raise Conflict("ALREADY_LEFT",
                       f"student {view.student_id} left school on {view.left.left_on} already")
    if command.left_on > today:
        raise Unprocessable("BAD_DATE", "left_on is in the future; record a leaving on or after its day")
    school_id = view.registered.school.school_id
    if command.to_school_id is not None and command.reason != "transferred":
        raise Unprocessable("BAD_FIELD", "to_school_id names the destination of a transfer only")
    if command.to_school_id == school_id:
        raise Unprocessable("SAME_SCHOOL", "a transfer goes to another school")
    return StudentLeft(student_id=view.student_id, school_id=school_id, reason=command.reason,
                       left_on=command.left_on.isoformat(), to_school_id=command.to_school_id)


def aid_stops_from(left_on: str) -> str:
    """The first month without aid: the month after the leaving day (``YYYY-MM``)."""
    day = date.fromisoformat(left_on)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return f"{year:04d}-{month:02d}"


def require_at_school(view: StudentView) -> None:
    """Refuse (409 ``STUDENT_LEFT``) what only a student still at school does."""
    if view.left is not None:
        raise Conflict("STUDENT_LEFT", f"student {view.student_id} left school on {view.left.left_on}")


# ----------------------------------------------------------------------------- captures


@dataclass(frozen=True)
class Station:
    """Where a capture is taken: a terminal and its school, both from the terminal's token."""

    school_id: str
    terminal_id: str


def check_capture(view: StudentView, station: Station) -> None:
    """Every refusal of a new capture, decided before any photo is stored."""
    registered_at(view, station.school_id)
    require_at_school(view)
    if view.enrolled_mode in FINAL_MODES:
        raise Conflict("ALREADY_ENROLLED", "a student is captured once during their time at school")


def submit_enrolment(view: StudentView, command: SubmitEnrolment, station: Station, frame_refs: list[str],
                     id_photo_ref: str, now: datetime) -> CaptureSubmitted:
    """The new capture of ``command``'s student at ``station``, its photos stored as ``frame_refs``
    and ``id_photo_ref``."""
    if command.student_id != view.student_id or len(frame_refs) != len(command.frames):
        raise ValueError("the view and the stored photos must be those of the command")
    check_capture(view, station)
    return CaptureSubmitted(
        capture_id=str(uuid.uuid4()), student_id=view.student_id, school_id=station.school_id,
        purpose="enrolment", channel="terminal", frame_refs=list(frame_refs), captured_at=now.isoformat(),
        terminal_id=station.terminal_id, id_photo_ref=id_photo_ref,
    )


def enrolment_outcome(result: Envelope) -> StudentEnrolled | None:
    """StudentEnrolled for a face-matching result of an enrolment capture, or None (retry)."""
    p = result.payload
    if p.get("purpose") != "enrolment":
        return None
    semester = semester_of(result.occurred_at)
    if result.type == "CaptureVerified":
        mode = "verified"
    elif set(p.get("reasons", [])) == {"NO_MATCH"}:
        mode = "provisional"  # a usable live face that does not match the ID photo was stored
    else:
        return None  # no usable face, unreadable ID photo, duplicate identity...: retry
    return StudentEnrolled(student_id=p["student_id"], school_id=p["school_id"], semester=semester,
                           mode=mode, capture_id=p["capture_id"])  # type: ignore[arg-type]


def check_evidence(view: StudentView) -> str:
    """Every refusal of an evidence filing, before the photo is stored; the student's school."""
    if view.registered is None:
        raise NotFound("UNKNOWN_STUDENT", f"no registered student {view.student_id}")
    require_at_school(view)
    if view.enrolled_mode in FINAL_MODES:
        raise Conflict("ALREADY_ENROLLED", f"the student is enrolled already ({view.enrolled_mode})")
    return view.registered.school.school_id


def file_evidence(view: StudentView, command: FileEvidence, evidence_ref: str,
                  now: datetime) -> StudentEnrolled:
    """ID card still unreadable at semester end: the evidence photo (佐证照片) is filed (备案)."""
    if command.student_id != view.student_id:
        raise ValueError("the view must be that of the command's student")
    school_id = check_evidence(view)
    return StudentEnrolled(student_id=view.student_id, school_id=school_id, semester=semester_of(now),
                           mode="evidence_filed", capture_id=evidence_ref)
