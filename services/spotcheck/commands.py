"""The spotcheck service's commands and answers: typed requests, parsed at the edge, taken by
the domain. Who acts (initiating level, school, terminal, channel) comes from the caller's
credential, never from these bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from backbone.fields import Id, Image, Instant, Model, Month

MAX_SCHOOLS = 5000
MAX_STUDENTS = 5000
MAX_FRAMES = 10
MAX_ATTEMPT = 10
MAX_WAIT_SECONDS = 30
AbsenceReason = Literal["leave", "cognitive_internship", "shadowing_internship"]
CaptureStatus = Literal["submitted", "verified", "rejected"]


class OpenCheck(Model):
    """An authority opens a routine check (named schools; province-wide only for the province)
    or the province a targeted check (named students of directly administered schools)."""

    opens_at: Instant
    closes_at: Instant
    kind: Literal["routine", "targeted"] = "routine"
    school_ids: list[Id] | None = Field(default=None, min_length=1, max_length=MAX_SCHOOLS)
    student_ids: list[Id] | None = Field(default=None, min_length=1, max_length=MAX_STUDENTS)


class CheckAnswer(Model):
    check_id: str
    kind: str
    initiated_by: str
    semester: str
    month: str
    opens_at: str
    closes_at: str
    schools: int | None = Field(description="how many schools the check names; null: every school")
    students: int | None = Field(description="how many students a targeted check names")


class Closed(Model):
    check_id: str
    closed_at: str


class SubmitCapture(Model):
    """A check-in: live frames of one student, from the school's terminal or the student's app."""

    student_id: Id
    frames: list[Image] = Field(min_length=1, max_length=MAX_FRAMES)
    attempt: Annotated[int, Field(ge=1, le=MAX_ATTEMPT)] = 1


class Accepted(Model):
    capture_id: str
    status: CaptureStatus


class WaitQuery(Model):
    wait: Annotated[int, Field(ge=0, le=MAX_WAIT_SECONDS, description="seconds to wait for the verdict")] = 0


class Reason(Model):
    code: str
    message_zh: str
    message_en: str


class Verdict(Model):
    """A capture and, once face matching decided, its verdict."""

    capture_id: str
    status: CaptureStatus
    reasons: list[Reason]
    student_id: str
    school_id: str
    check_id: str | None
    channel: str
    attempt: int
    captured_at: str
    decided_at: str | None


class MarkAbsence(Model):
    """The school marks why a student misses a check; ``reported_at`` is when the papers reached
    the aid office (now when omitted)."""

    student_id: Id
    reason: AbsenceReason
    reported_at: Instant | None = None


class AbsenceAnswer(Model):
    check_id: str
    student_id: str
    reason: str
    warnings: list[str]


class ForcePass(Model):
    """After three failed confirmations at the terminal: the evidence photo, and a forced pass."""

    student_id: Id
    evidence_photo: Image


class ForcedPass(Model):
    check_id: str
    student_id: str
    forced_pass: bool
    attempts: int


class PublishResults(Model):
    """The school publishes a month's check results (the objection period starts)."""

    school_id: Id
    month: Month


class Published(Model):
    school_id: str
    month: str
    published_on: str
