"""New capture (新增采集) and student registration, as pure rules over a student's stream.

- A proposed-aid student is registered once (StudentRegistered); the ID number is validated
  (MOD 11-2) and only its keyed hash and masked form go into the event.
- Enrolment captures are taken at a terminal: live frames plus the ID-card photo.
- Face matching answers with CaptureVerified or CaptureRejected; :func:`enrolment_outcome`
  turns that into StudentEnrolled: ``verified``; ``provisional`` when the identity could not be
  confirmed (the only reason is NO_MATCH) and the usable live face was stored as the template
  (takes part in this semester's checks only); nothing otherwise (no usable face, unreadable
  ID-card photo, duplicate identity: the student retries). ``evidence_filed`` comes from the evidence-photo
  path at semester end when the ID card cannot be read.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backbone.errors import Conflict, DomainError, Forbidden, NotFound
from contracts.calendar import semester_of
from contracts.envelope import Envelope
from contracts.events import CaptureSubmitted, SchoolRef, StudentEnrolled, StudentRegistered
from contracts.identity import InvalidIdNumber, hash_id_number, mask_id_number, mask_name, normalise_id_number

STUDENT_NUMBER = re.compile(r"^[A-Za-z0-9]{4,40}$")
SEASONS = {"autumn": "autumn", "spring": "spring", "秋季": "autumn", "春季": "spring"}
MAX_FRAMES = 10


def student_stream(student_id: str) -> str:
    return f"student-{student_id}"


@dataclass
class StudentView:
    student_id: str
    registered: StudentRegistered | None = None
    enrolled_mode: str | None = None
    enrolled_semesters: list[str] = field(default_factory=list)
    version: int = 0

    @property
    def school_id(self) -> str | None:
        return self.registered.school.school_id if self.registered else None


def student_view(student_id: str, events: list[Envelope]) -> StudentView:
    view = StudentView(student_id)
    for e in events:
        view.version = e.stream_version
        if e.type == "StudentRegistered":
            p = dict(e.payload)
            view.registered = StudentRegistered(**{**p, "school": SchoolRef(**p["school"])})
        elif e.type == "StudentEnrolled":
            view.enrolled_mode = e.payload["mode"]
            view.enrolled_semesters.append(e.payload["semester"])
    return view


def _field(body: dict[str, Any], name: str) -> Any:
    if body.get(name) in (None, ""):
        raise DomainError("MISSING_FIELD", f"missing field {name!r}")
    return body[name]


def register(body: dict[str, Any], hash_key: bytes, existing: StudentView) -> StudentRegistered:
    student_id = str(_field(body, "student_id"))
    if not STUDENT_NUMBER.match(student_id):
        raise DomainError("BAD_STUDENT_NUMBER", "student_id is the national student number: 4-40 letters or digits")
    if existing.registered is not None:
        raise Conflict("ALREADY_REGISTERED", f"student {student_id} is registered already")
    try:
        id_number = normalise_id_number(str(_field(body, "id_number")))
    except InvalidIdNumber as exc:
        raise DomainError("INVALID_ID_NUMBER", str(exc)) from exc
    school = _field(body, "school")
    if not isinstance(school, dict):
        raise DomainError("BAD_FIELD", "school is an object {school_id, city, county}")
    season = SEASONS.get(str(_field(body, "enrolment_season")))
    if season is None:
        raise DomainError("BAD_FIELD", "enrolment_season is autumn/秋季 or spring/春季")
    try:
        grade, year = int(_field(body, "grade")), int(_field(body, "enrolment_year"))
    except (TypeError, ValueError) as exc:
        raise DomainError("BAD_FIELD", "grade and enrolment_year are integers") from exc
    if not 1 <= grade <= 4:
        raise DomainError("BAD_FIELD", "grade is 1..4")
    return StudentRegistered(
        student_id=student_id,
        school=SchoolRef(school_id=str(_field(school, "school_id")), city=str(_field(school, "city")),
                         county=str(_field(school, "county"))),
        name_masked=mask_name(str(_field(body, "name"))),
        id_number_hash=hash_id_number(hash_key, id_number),
        id_number_masked=mask_id_number(id_number),
        grade=grade,
        class_name=str(_field(body, "class_name")),
        major=str(_field(body, "major")),
        enrolment_year=year,
        enrolment_season=season,  # type: ignore[arg-type]
        proposed_aid=bool(body.get("proposed_aid", True)),
    )


def require_student(view: StudentView, school_id: str) -> StudentRegistered:
    if view.registered is None:
        raise NotFound("UNKNOWN_STUDENT", f"no registered student {view.student_id}")
    if view.registered.school.school_id != school_id:
        raise Forbidden("WRONG_SCHOOL", f"student {view.student_id} is not registered at school {school_id}")
    return view.registered


def submit_enrolment(view: StudentView, school_id: str, channel: str, frame_refs: list[str],
                     id_photo_ref: str | None, terminal_id: str | None, now: datetime) -> CaptureSubmitted:
    require_student(view, school_id)
    if view.enrolled_mode in ("verified", "evidence_filed"):
        raise Conflict("ALREADY_ENROLLED", "a student is captured once during their time at school")
    if channel != "terminal" or not terminal_id:
        raise DomainError("TERMINAL_REQUIRED", "new capture is done at a school terminal (terminal_id)")
    if not 1 <= len(frame_refs) <= MAX_FRAMES:
        raise DomainError("BAD_FRAMES", f"send 1..{MAX_FRAMES} frames")
    if id_photo_ref is None:
        raise DomainError("ID_PHOTO_REQUIRED", "the ID-card photo read by the terminal is required")
    return CaptureSubmitted(
        capture_id=str(uuid.uuid4()), student_id=view.student_id, school_id=school_id, purpose="enrolment",
        channel="terminal", frame_refs=frame_refs, captured_at=now.isoformat(), terminal_id=terminal_id,
        id_photo_ref=id_photo_ref,
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


def file_evidence(view: StudentView, school_id: str, evidence_ref: str, now: datetime) -> StudentEnrolled:
    """ID card still unreadable at semester end: the evidence photo (佐证照片) is filed (备案)."""
    require_student(view, school_id)
    if view.enrolled_mode == "verified":
        raise Conflict("ALREADY_ENROLLED", "the student is enrolled already")
    return StudentEnrolled(student_id=view.student_id, school_id=school_id, semester=semester_of(now),
                           mode="evidence_filed", capture_id=evidence_ref)
