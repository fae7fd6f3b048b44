"""Routine (例行) and targeted (定向) spot checks as pure rules over the log.

A check is announced on the day, opens at 10:00 or later and closes by 15:00 (Asia/Shanghai),
never longer than 5 hours. Provincial, city and county authorities open routine checks (a city
or county names its schools; only the province may check every school); only the province opens
targeted checks, on named students of directly administered schools (直属学校). Captures outside
the window are refused. The school marks absences (leave, cognitive or shadowing internship); a
terminal records a forced pass after three failed confirmations, with an evidence photo. A
school publishes a month's results once; the objection period starts from that day.

The functions take the typed commands of :mod:`services.spotcheck.commands`, the read models of
the log and who acts (level, device), and return the event to record or raise a
:class:`~backbone.errors.DomainError`. Streams are named here, one function per stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from backbone.errors import Conflict, DomainError, Forbidden, NotFound
from contracts.calendar import SHANGHAI, local_date, parse_month, semester_of
from contracts.envelope import Envelope
from contracts.events import (
    AbsenceMarked,
    CaptureSubmitted,
    Channel,
    CheckClosed,
    CheckOpened,
    ForcedPassRecorded,
    MonthResultsPublished,
)
from contracts.readmodel import fold
from contracts.students import SchoolView, StudentView
from contracts.students import results_stream as results_stream  # a school's month publication
from contracts.workdays import WorkCalendarError, load_work_calendar, objection_window_end
from services.spotcheck.commands import ForcePass, MarkAbsence, OpenCheck, PublishResults, SubmitCapture

EARLIEST_OPEN = time(10, 0)
LATEST_CLOSE = time(15, 0)
MAX_DURATION = timedelta(hours=5)
FORCED_PASS_ATTEMPTS = 3
LEAVE_REPORT_LIMIT = timedelta(hours=2)
CLOCK_SKEW = timedelta(minutes=5)
LEVELS = ("province", "city", "county")
OBJECTION_WORKING_DAYS = 5  # 规程 十.4: 在结果生成的5个工作日内
Status = Literal["submitted", "verified", "rejected"]


# ----------------------------------------------------------------------------- streams


def check_stream(check_id: str) -> str:
    """A check: opened, absences, forced passes, closed."""
    return f"check-{check_id}"


# ----------------------------------------------------------------------------- read models


@dataclass
class CheckView:
    check_id: str
    opened: CheckOpened | None = None
    closed: bool = False
    forced: set[str] = field(default_factory=set)
    version: int = 0

    def window(self) -> tuple[datetime, datetime]:
        check = require_open(self)
        return datetime.fromisoformat(check.opens_at), datetime.fromisoformat(check.closes_at)


def check_view(check_id: str, events: Iterable[Envelope]) -> CheckView:
    return fold(CheckView(check_id), events, {
        "CheckOpened": lambda view, p: replace(view, opened=CheckOpened(**p)),
        "CheckClosed": lambda view, p: replace(view, closed=True),
        "ForcedPassRecorded": _forced_pass,
    })


def _forced_pass(view: CheckView, payload: dict[str, Any]) -> CheckView:
    view.forced.add(str(payload["student_id"]))  # in place: a check may hold many forced passes
    return view


@dataclass(frozen=True)
class CaptureState:
    """A capture and facematch's verdict on it, if any yet."""

    submitted: CaptureSubmitted
    status: Status = "submitted"
    reasons: tuple[str, ...] = ()
    decided_at: datetime | None = None


def capture_state(capture_id: str, events: Iterable[Envelope]) -> CaptureState:
    state: CaptureState | None = None
    for e in events:
        if e.type == "CaptureSubmitted":
            state = CaptureState(CaptureSubmitted(**e.payload))
        elif state is not None and e.type == "CaptureVerified":
            state = CaptureState(state.submitted, "verified", (), e.recorded_at)
        elif state is not None and e.type == "CaptureRejected":
            reasons = tuple(str(r) for r in e.payload.get("reasons", ()))
            state = CaptureState(state.submitted, "rejected", reasons, e.recorded_at)
    if state is None:
        raise NotFound("UNKNOWN_CAPTURE", f"no capture {capture_id}")
    return state


@dataclass(frozen=True)
class Device:
    """Where a capture comes from, as the caller's credential says: the school's terminal, or
    the student's app."""

    channel: Channel
    terminal_id: str | None = None


# ----------------------------------------------------------------------------- rules


def require_open(view: CheckView) -> CheckOpened:
    if view.opened is None:
        raise NotFound("UNKNOWN_CHECK", f"no check {view.check_id}")
    return view.opened


def in_scope(check: CheckOpened, student_id: str, school_id: str) -> bool:
    if check.kind == "targeted":
        in_schools = check.school_ids is None or school_id in check.school_ids
        return student_id in (check.student_ids or []) and in_schools
    return check.school_ids is None or school_id in check.school_ids


def enrolled_for(student: StudentView, semester: str) -> bool:
    """Has the student a face enrolment that counts in ``semester``? A provisional one (identity
    not confirmed) counts for the semester it was made in only."""
    if student.enrolled_mode is None:
        return False
    return student.enrolled_mode != "provisional" or semester in student.enrolled_semesters


def _school_of(student: StudentView) -> str:
    if student.registered is None:
        raise NotFound("UNKNOWN_STUDENT", f"no registered student {student.student_id}")
    return student.registered.school.school_id


def _require_at_school(student: StudentView, day: date) -> None:
    """Refuse (409 ``STUDENT_LEFT``) a student who left school before ``day``: checks after the
    leaving day do not concern them (eligibility does not count them)."""
    left = student.left
    if left is not None and day.isoformat() > left.left_on:
        raise Conflict("STUDENT_LEFT", f"student {student.student_id} left school on {left.left_on}")


def _unique(ids: Sequence[str] | None) -> list[str] | None:
    return None if ids is None else list(dict.fromkeys(ids))


def open_check(command: OpenCheck, level: str, now: datetime) -> CheckOpened:
    """The check an authority of ``level`` opens. Targets and areas are checked by
    :func:`require_targets` and the edge (each named school inside the caller's area)."""
    if level not in LEVELS:
        raise Forbidden("AUTHORITY_ONLY", "checks are opened by the province, a city or a county")
    opens, closes = command.opens_at.astimezone(SHANGHAI), command.closes_at.astimezone(SHANGHAI)
    if opens.date() != closes.date():
        raise DomainError("BAD_WINDOW", "a check opens and closes on the same day")
    if opens.time() < EARLIEST_OPEN or closes.time() > LATEST_CLOSE:
        raise DomainError("BAD_WINDOW", "a check runs within 10:00-15:00 Asia/Shanghai")
    if not opens < closes or closes - opens > MAX_DURATION:
        raise DomainError("BAD_WINDOW", "a check closes after it opens and lasts at most 5 hours")
    if opens.date() != local_date(now):
        raise Conflict("NOT_TODAY", "a check is announced on the day it runs (Asia/Shanghai)")
    if closes <= now:
        raise Conflict("WINDOW_PASSED", "the check's window has ended already")
    schools, students = _unique(command.school_ids), _unique(command.student_ids)
    if schools is not None and not schools:  # never "everyone": that is school_ids omitted
        raise DomainError("NO_SCHOOLS", "school_ids names at least one school, or is omitted")
    if command.kind == "targeted":
        if level != "province":
            raise Forbidden("TARGETED_BY_PROVINCE", "targeted checks are started by the provincial authority")
        if not students:
            raise DomainError("MISSING_FIELD", "a targeted check names its student_ids")
        if schools is not None:
            raise DomainError("BAD_FIELD", "a targeted check names students, not schools")
    else:
        if students is not None:
            raise DomainError("BAD_FIELD", "student_ids are for targeted checks")
        if schools is None and level != "province":
            raise DomainError("SCHOOLS_REQUIRED", "a city or county check names its schools (school_ids)")
    return CheckOpened(
        check_id=str(uuid.uuid4()), kind=command.kind, semester=semester_of(opens),
        month=f"{opens.year:04d}-{opens.month:02d}", opens_at=opens.isoformat(), closes_at=closes.isoformat(),
        initiated_by=level,  # type: ignore[arg-type]  # one of LEVELS, checked above
        school_ids=schools, student_ids=students,
    )


def require_targets(check: CheckOpened, students: Mapping[str, StudentView],
                    schools: Mapping[str, SchoolView]) -> None:
    """A targeted check's students are registered, at directly administered schools."""
    day = datetime.fromisoformat(check.opens_at).date()
    for student_id in check.student_ids or ():
        student = students.get(student_id, StudentView(student_id))
        school = schools.get(_school_of(student))
        _require_at_school(student, day)
        if school is None or school.registered is None or not school.registered.directly_administered:
            raise DomainError("NOT_DIRECTLY_ADMINISTERED",
                              f"student {student_id} is not at a directly administered school (直属学校);"
                              " targeted checks reach those only")


def closers_schools(view: CheckView, level: str) -> list[str]:
    """Who may close: the level that opened the check, or the province. Returns the schools a
    city or county closer must cover (all of the check's)."""
    check = require_open(view)
    if level == "province":
        return []
    if level != check.initiated_by or check.school_ids is None:
        raise Forbidden("NOT_CHECK_OWNER", "a check is closed by the level that opened it, or the province")
    return list(check.school_ids)


def close_check(view: CheckView, level: str, at: datetime) -> CheckClosed:
    closers_schools(view, level)
    if view.closed:
        raise Conflict("ALREADY_CLOSED", f"check {view.check_id} is closed already")
    return CheckClosed(check_id=view.check_id, closed_at=at.isoformat())


def _require_window(view: CheckView, at: datetime, what: str) -> CheckOpened:
    check = require_open(view)
    opens, closes = view.window()
    if view.closed or not opens <= at <= closes:
        raise Conflict("CAPTURE_OUTSIDE_WINDOW",
                       f"check {view.check_id} takes {what} from {check.opens_at} to {check.closes_at}")
    return check


def _require_in_scope(check: CheckOpened, student_id: str, school_id: str) -> None:
    if not in_scope(check, student_id, school_id):
        raise Forbidden("NOT_IN_SCOPE", f"student {student_id} is not part of check {check.check_id}")


def submit_capture(view: CheckView, command: SubmitCapture, student: StudentView, device: Device,
                   frame_refs: Sequence[str], at: datetime) -> CaptureSubmitted:
    """A check-in capture, decided before any frame is stored (``frame_refs`` are the references
    the frames will be stored under)."""
    check = _require_window(view, at, "captures")
    school_id = _school_of(student)
    _require_in_scope(check, student.student_id, school_id)
    _require_at_school(student, view.window()[0].date())
    if not enrolled_for(student, check.semester):
        raise Conflict("NOT_ENROLLED",
                       "the student has no face enrolment for this semester; captures cannot be matched")
    if device.channel == "terminal" and not device.terminal_id:
        raise DomainError("BAD_CHANNEL", "a terminal capture names its terminal")
    if not 1 <= len(frame_refs) <= 10 or len(frame_refs) != len(command.frames):
        raise DomainError("BAD_FRAMES", "send 1..10 frames")
    return CaptureSubmitted(
        capture_id=str(uuid.uuid4()), student_id=student.student_id, school_id=school_id,
        purpose="spot_check", channel=device.channel, frame_refs=list(frame_refs), captured_at=at.isoformat(),
        check_id=view.check_id, terminal_id=device.terminal_id if device.channel == "terminal" else None,
        attempt=command.attempt,
    )


def mark_absence(view: CheckView, command: MarkAbsence, student: StudentView,
                 at: datetime) -> tuple[AbsenceMarked, list[str]]:
    """The absence, and warnings (a leave reported after 2 hours will not excuse the student)."""
    check = require_open(view)
    school_id = _school_of(student)
    _require_in_scope(check, student.student_id, school_id)
    _require_at_school(student, view.window()[0].date())
    reported = command.reported_at or at
    if reported > at + CLOCK_SKEW:
        raise DomainError("BAD_TIME", "reported_at is in the future")
    warnings = []
    if command.reason == "leave" and reported - view.window()[0] > LEAVE_REPORT_LIMIT:
        warnings.append("LATE_LEAVE_REPORT: reported more than 2 hours after the check opened;"
                        " it will not excuse")
    return AbsenceMarked(check_id=view.check_id, student_id=student.student_id, school_id=school_id,
                         reason=command.reason, reported_at=reported.isoformat()), warnings


def failed_terminal_attempts(verdicts: Iterable[Envelope], check_id: str, student_id: str) -> int:
    """Failed confirmations at a terminal: captures of ``student_id`` in the check, taken at a
    terminal, that face matching rejected (each capture once)."""
    failed = {
        str(e.payload.get("capture_id")) for e in verdicts
        if e.type == "CaptureRejected" and e.payload.get("channel") == "terminal"
        and e.payload.get("check_id") == check_id and e.payload.get("student_id") == student_id
    }
    return len(failed)


def force_pass(view: CheckView, command: ForcePass, student: StudentView, terminal_id: str,
               verdicts: Sequence[Envelope], evidence_ref: str, at: datetime) -> ForcedPassRecorded:
    """A forced pass (强行确认通过) after three failed terminal confirmations, counted from the
    verdicts in the log; decided before the evidence photo is stored."""
    check = _require_window(view, at, "forced passes")
    school_id = _school_of(student)
    _require_in_scope(check, student.student_id, school_id)
    _require_at_school(student, view.window()[0].date())
    if student.student_id in view.forced:
        raise Conflict("ALREADY_FORCED",
                       f"student {student.student_id} was force-passed in this check already")
    if any(e.type == "CaptureVerified" and e.payload.get("check_id") == view.check_id for e in verdicts):
        raise Conflict("ALREADY_PASSED", f"student {student.student_id} passed this check already")
    failed = failed_terminal_attempts(verdicts, view.check_id, student.student_id)
    if failed < FORCED_PASS_ATTEMPTS:
        raise Conflict("FORCED_PASS_TOO_EARLY",
                       f"{failed} failed terminal confirmations; a forced pass needs {FORCED_PASS_ATTEMPTS}")
    return ForcedPassRecorded(check_id=view.check_id, student_id=student.student_id, school_id=school_id,
                              terminal_id=terminal_id, attempts=failed, evidence_ref=evidence_ref)


def publish_results(command: PublishResults, previous: Iterable[Envelope],
                    at: datetime) -> MonthResultsPublished:
    """A school's month results, published once (the first publication starts the objection
    period), not before the month has begun."""
    try:
        year, month = parse_month(command.month)
    except ValueError:
        raise DomainError("BAD_MONTH", "month is YYYY-MM: a year in 2000..2100, a month in 01..12") from None
    today = local_date(at)
    if (year, month) > (today.year, today.month):
        raise Conflict("MONTH_NOT_STARTED",
                       f"the results of {command.month} cannot be published before it begins")
    if any(e.type == "MonthResultsPublished" for e in previous):
        raise Conflict("ALREADY_PUBLISHED", f"the {command.month} results of school {command.school_id}"
                                            " were published already")
    return MonthResultsPublished(school_id=command.school_id, month=command.month,
                                 published_on=today.isoformat())


def objection_ends_on(published_on: str) -> str | None:
    """The last day a student may object to results published on ``published_on``: the 5th
    working day after it (Chinese working days, contracts.workdays); None when the working-day
    calendar lacks that year."""
    try:
        return objection_window_end(load_work_calendar(), date.fromisoformat(published_on),
                                    OBJECTION_WORKING_DAYS).isoformat()
    except WorkCalendarError:
        return None
