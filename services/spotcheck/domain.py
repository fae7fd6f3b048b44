"""Routine (例行) and targeted (定向) spot checks as pure rules over a check's stream.

A check is announced on the day, opens at 10:00 or later and closes by 15:00 (Asia/Shanghai),
never longer than 5 hours. Captures outside the window are refused. The school marks absences
(leave, cognitive or shadowing internship); a terminal records a forced pass after three
failed confirmations, with an evidence photo.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from backbone.errors import Conflict, DomainError, Forbidden, NotFound
from contracts.calendar import SHANGHAI, semester_of
from contracts.envelope import Envelope
from contracts.events import (
    AbsenceMarked,
    CaptureSubmitted,
    CheckClosed,
    CheckOpened,
    ForcedPassRecorded,
    MonthResultsPublished,
)

EARLIEST_OPEN = time(10, 0)
LATEST_CLOSE = time(15, 0)
MAX_DURATION = timedelta(hours=5)
FORCED_PASS_ATTEMPTS = 3
ABSENCE_REASONS = ("leave", "cognitive_internship", "shadowing_internship")
LEAVE_REPORT_LIMIT = timedelta(hours=2)


def check_stream(check_id: str) -> str:
    return f"check-{check_id}"


def parse_instant(value: Any, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise DomainError("BAD_TIME", f"{name} is not an ISO-8601 instant") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHANGHAI)  # local school time when no offset is given
    return parsed


@dataclass
class CheckView:
    check_id: str
    opened: CheckOpened | None = None
    closed: bool = False
    version: int = 0

    def window(self) -> tuple[datetime, datetime]:
        assert self.opened is not None
        return parse_instant(self.opened.opens_at, "opens_at"), parse_instant(self.opened.closes_at, "closes_at")


def check_view(check_id: str, events: list[Envelope]) -> CheckView:
    view = CheckView(check_id)
    for e in events:
        view.version = e.stream_version
        if e.type == "CheckOpened":
            view.opened = CheckOpened(**e.payload)
        elif e.type == "CheckClosed":
            view.closed = True
    return view


def open_check(body: dict[str, Any]) -> CheckOpened:
    opens = parse_instant(body.get("opens_at"), "opens_at")
    closes = parse_instant(body.get("closes_at"), "closes_at")
    lo, lc = opens.astimezone(SHANGHAI), closes.astimezone(SHANGHAI)
    if lo.date() != lc.date():
        raise DomainError("BAD_WINDOW", "a check opens and closes on the same day")
    if lo.time() < EARLIEST_OPEN or lc.time() > LATEST_CLOSE:
        raise DomainError("BAD_WINDOW", "a check runs within 10:00-15:00 Asia/Shanghai")
    if not lo < lc or lc - lo > MAX_DURATION:
        raise DomainError("BAD_WINDOW", "a check closes after it opens and lasts at most 5 hours")
    kind = body.get("kind", "routine")
    initiated_by = body.get("initiated_by", "province")
    if kind not in ("routine", "targeted") or initiated_by not in ("province", "city", "county"):
        raise DomainError("BAD_FIELD", "kind is routine|targeted; initiated_by is province|city|county")
    students = body.get("student_ids")
    if kind == "targeted":
        if initiated_by != "province":
            raise Forbidden("TARGETED_BY_PROVINCE", "targeted checks are started by the provincial authority")
        if not students:
            raise DomainError("MISSING_FIELD", "a targeted check names its student_ids")
    schools = body.get("school_ids")
    return CheckOpened(
        check_id=str(body.get("check_id") or uuid.uuid4()), kind=kind, semester=semester_of(lo),
        month=f"{lo.year:04d}-{lo.month:02d}", opens_at=lo.isoformat(), closes_at=lc.isoformat(),
        initiated_by=initiated_by, school_ids=[str(s) for s in schools] if schools else None,
        student_ids=[str(s) for s in students] if students else None,
    )


def require_open(view: CheckView) -> CheckOpened:
    if view.opened is None:
        raise NotFound("UNKNOWN_CHECK", f"no check {view.check_id}")
    return view.opened


def in_scope(check: CheckOpened, student_id: str, school_id: str) -> bool:
    if check.kind == "targeted":
        return student_id in (check.student_ids or [])
    return check.school_ids is None or school_id in check.school_ids


def submit_capture(view: CheckView, student_id: str, school_id: str, enrolled: bool, channel: str,
                   frame_refs: list[str], terminal_id: str | None, at: datetime, attempt: int) -> CaptureSubmitted:
    check = require_open(view)
    opens, closes = view.window()
    if view.closed or not opens <= at <= closes:
        raise Conflict("CAPTURE_OUTSIDE_WINDOW",
                       f"check {view.check_id} accepts captures from {check.opens_at} to {check.closes_at}")
    if not in_scope(check, student_id, school_id):
        raise Forbidden("NOT_IN_SCOPE", f"student {student_id} is not part of check {view.check_id}")
    if not enrolled:
        raise Conflict("NOT_ENROLLED", "the student has no face enrolment; captures cannot be matched")
    if channel not in ("terminal", "app") or (channel == "terminal" and not terminal_id):
        raise DomainError("BAD_CHANNEL", "channel is app, or terminal with a terminal_id")
    if not 1 <= len(frame_refs) <= 10:
        raise DomainError("BAD_FRAMES", "send 1..10 frames")
    return CaptureSubmitted(
        capture_id=str(uuid.uuid4()), student_id=student_id, school_id=school_id, purpose="spot_check",
        channel=channel, frame_refs=frame_refs, captured_at=at.isoformat(), check_id=view.check_id,  # type: ignore[arg-type]
        terminal_id=terminal_id, attempt=attempt,
    )


def mark_absence(view: CheckView, student_id: str, school_id: str, reason: str,
                 reported_at: datetime) -> tuple[AbsenceMarked, list[str]]:
    """The absence, and warnings (a leave reported after 2 hours will not excuse the student)."""
    check = require_open(view)
    if reason not in ABSENCE_REASONS:
        raise DomainError("BAD_REASON", f"reason is one of {list(ABSENCE_REASONS)}")
    if not in_scope(check, student_id, school_id):
        raise Forbidden("NOT_IN_SCOPE", f"student {student_id} is not part of check {view.check_id}")
    warnings = []
    if reason == "leave" and reported_at - view.window()[0] > LEAVE_REPORT_LIMIT:
        warnings.append("LATE_LEAVE_REPORT: reported more than 2 hours after the check opened; it will not excuse")
    return AbsenceMarked(check_id=view.check_id, student_id=student_id, school_id=school_id,
                         reason=reason, reported_at=reported_at.isoformat()), warnings  # type: ignore[arg-type]


def force_pass(view: CheckView, student_id: str, school_id: str, terminal_id: str, failed_attempts: int,
               evidence_ref: str, at: datetime) -> ForcedPassRecorded:
    require_open(view)
    opens, closes = view.window()
    if not opens <= at <= closes:
        raise Conflict("CAPTURE_OUTSIDE_WINDOW", "a forced pass is recorded while the check is open")
    if failed_attempts < FORCED_PASS_ATTEMPTS:
        raise Conflict("FORCED_PASS_TOO_EARLY",
                       f"{failed_attempts} failed terminal confirmations; a forced pass needs {FORCED_PASS_ATTEMPTS}")
    return ForcedPassRecorded(check_id=view.check_id, student_id=student_id, school_id=school_id,
                              terminal_id=terminal_id, attempts=failed_attempts, evidence_ref=evidence_ref)


def close_check(view: CheckView, at: datetime) -> CheckClosed:
    require_open(view)
    if view.closed:
        raise Conflict("ALREADY_CLOSED", f"check {view.check_id} is closed already")
    return CheckClosed(check_id=view.check_id, closed_at=at.isoformat())


def publish_results(school_id: str, month: str, at: datetime) -> MonthResultsPublished:
    if len(month) != 7 or month[4] != "-":
        raise DomainError("BAD_MONTH", "month is YYYY-MM")
    return MonthResultsPublished(school_id=school_id, month=month, published_on=at.astimezone(SHANGHAI).date().isoformat())
