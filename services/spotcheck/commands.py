"""The spotcheck service's commands and answers: typed requests, parsed at the edge, taken by
the domain. Who acts (initiating level, school, terminal, channel) comes from the caller's
credential, never from these bodies."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import Field, create_model

from backbone.challenges import FrameTime
from backbone.fields import Day, Id, Image, Instant, Model, Month, Name, Note
from contracts.events import PlacementConfirmed

MAX_SCHOOLS = 5000
MAX_STUDENTS = 5000
MAX_FRAMES = 10
MAX_ATTEMPT = 10
MAX_WAIT_SECONDS = 30
MAX_ATTACHMENT_B64 = 64 * 1024 * 1024
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


class CheckQuery(Model):
    """Which checks to list: those open now (the default) or every one, newest first."""

    state: Literal["open", "all"] = "open"


class CheckItem(Model):
    check_id: str
    kind: str
    initiated_by: str
    semester: str
    month: str
    opens_at: str
    closes_at: str
    closed: bool
    open_now: bool = Field(description="not closed, and now is within its window")
    schools: int | None = Field(description="how many schools the check names; null: every school")
    students: int | None = Field(description="how many students a targeted check names")


class Checks(Model):
    checks: list[CheckItem]


class Closed(Model):
    check_id: str
    closed_at: str


class SubmitCapture(Model):
    """A check-in: live frames of one student, from the school's terminal or the student's app."""

    student_id: Id
    frames: list[Image] = Field(min_length=1, max_length=MAX_FRAMES)
    attempt: Annotated[int, Field(ge=1, le=MAX_ATTEMPT)] = 1
    challenge_id: Id | None = Field(default=None, description="the liveness challenge this burst answers "
                                    "(POST /checks/<check_id>/challenges)")
    frame_times_ms: list[FrameTime] | None = Field(
        default=None, min_length=1, max_length=MAX_FRAMES,
        description="client timestamp of each frame, ms of a monotonic clock, in frame order")


class Accepted(Model):
    capture_id: str
    status: CaptureStatus


class WaitQuery(Model):
    wait: Annotated[int, Field(ge=0, le=MAX_WAIT_SECONDS, description=(
        "seconds to wait for the verdict (answered as soon as it is recorded; 503 TOO_MANY_WAITING"
        " when too many requests wait already, retry after Retry-After)"))] = 0


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
    """The publication, and the last day a student may object to the month's results (the 5th
    working day after it, 规程 十.4; null when the working-day calendar lacks that year)."""

    school_id: str
    month: str
    published_on: str
    objection_ends_on: str | None = None


# ----------------------------------------------------------------------------- internships, placements

InternshipKind = Literal["cognitive", "shadowing"]
Contact = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{5,23}$", min_length=6, max_length=24,
                               description="a telephone number; kept only masked")]


class FileInternshipPlan(Model):
    """The school files an external internship plan of 3 full months or more (实习计划备案):
    departure and return dates and the day of each filing, with the same-level education
    department and with the aid authority."""

    student_id: Id
    kind: InternshipKind
    starts_on: Day = Field(description="the day the student leaves school (departure)")
    ends_on: Day = Field(description="the last day of the internship")
    education_filed_on: Day = Field(description="filed with the same-level education department")
    aid_authority_filed_on: Day = Field(description="filed with the same-level aid authority")


class PlanFiled(Model):
    plan_id: str
    student_id: str
    kind: str
    starts_on: str
    ends_on: str
    filed_on: str
    filed_late: bool
    warnings: list[str]


class Departure(Model):
    """The student left school for the internship on ``on``."""

    on: Day


class Return(Model):
    """The student came back to school on ``on``."""

    on: Day


class PlanMovement(Model):
    plan_id: str
    student_id: str
    departed_on: str | None
    returned_on: str | None


class ConfirmPlacement(Model):
    """At the school's terminal, before leaving (离校前确认): the placement internship (顶岗实习)
    with every field of Attachment 2 that the registration does not hold already (name, ID
    number, grade, class, major, enrolment year and season come from it)."""

    student_id: Id
    company: Note = Field(description="实习所在公司: the full name, as on its seal")
    location: Note = Field(description="实习所在地: down to the village or house number")
    supervisor: Name = Field(description="学校实习负责人姓名")
    supervisor_contact: Contact = Field(description="学校实习负责人联系方式")
    starts_on: Day
    ends_on: Day
    remark: Note | None = Field(default=None, description="备注")


# The answer about a placement: every field of PlacementConfirmed (one list of fields, the
# event's), and when it ended early.
_PLACEMENT_FIELDS: dict[str, Any] = {
    f.name: (hint, None if f.default is None else ...)
    for hints in [get_type_hints(PlacementConfirmed)] for f in dataclasses.fields(PlacementConfirmed)
    for hint in [hints[f.name]]
}
PlacementAnswer = create_model("PlacementAnswer", __base__=Model, ended_on=(str | None, None),
                               **_PLACEMENT_FIELDS)


class PlacementsQuery(Model):
    """Which placements to list: those under way on some day of ``month`` (to their early end, if
    any), or every one of the school (no month)."""

    month: Month | None = None


# A listed placement: the answer about it, and the student's name and ID number masked as in Attachment 2.
PlacementItem = create_model("PlacementItem", __base__=PlacementAnswer, name_masked=(str, ""),
                             id_number_masked=(str, ""))
Placements = create_model(
    "Placements", __base__=Model, __doc__="A school's placement internships, by start.",
    school_id=(str, ...), month=(str | None, None), placements=(list[PlacementItem], ...))  # type: ignore[valid-type]


class UpdatePlacement(Model):
    """Changes of company, place, supervisor or dates (at least one field)."""

    company: Note | None = None
    location: Note | None = None
    supervisor: Name | None = None
    supervisor_contact: Contact | None = None
    starts_on: Day | None = None
    ends_on: Day | None = None


class EndPlacement(Model):
    """The placement ended early, on ``ended_on``."""

    ended_on: Day


class Attachment2(Model):
    """Attachment 2 (备案确认明细表) of a school and month, as an XLSX file in base64."""

    filename: str
    content_base64: str = Field(max_length=MAX_ATTACHMENT_B64,
                                json_schema_extra={"contentEncoding": "base64"})
    rows: int
