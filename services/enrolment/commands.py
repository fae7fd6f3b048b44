"""The enrolment service's commands and answers: typed requests, parsed at the edge
(:mod:`backbone.edge`), taken by the domain functions. No command carries an actor or an
operator: who acts comes from the caller's token."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from backbone.challenges import FrameTime
from backbone.fields import BASE64_PATTERN, Day, Id, Image, Model, Name, Note

StudentNumber = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{4,40}$", examples=["G41010220070307001X"])]
"""The national student number (全国学籍系统学号): 4-40 letters or digits."""
Season = Literal["autumn", "spring", "秋季", "春季"]
IdNumber = Annotated[str, Field(min_length=1, max_length=32, json_schema_extra={
    "pattern": r"^[0-9]{17}[0-9X]$", "description": "18 characters, the last a MOD 11-2 check digit or X; "
    "checked by the rules (422 INVALID_ID_NUMBER, the number never repeated)"})]
"""A resident ID number (身份证号码)."""
MAX_FRAMES = 10


# ----------------------------------------------------------------------------- schools


class RegisterSchool(Model):
    """Operations record a school, or correct it (the latest registration wins). The school's
    same-level authority (同级资助管理部门) is the province for a directly administered school
    (直属), else ``administered_by``: its county (the default) or its city."""

    school_id: Id
    name: Name
    city: Name
    county: Name
    directly_administered: bool = False
    administered_by: Literal["city", "county"] = Field(
        "county", description="for a school not directly administered; the province rules for a 直属 school")


class SchoolRegisteredAnswer(Model):
    school_id: str


class School(Model):
    school_id: str
    name: str
    city: str
    county: str
    administered_by: str
    directly_administered: bool


# ----------------------------------------------------------------------------- terminals


class RegisterTerminal(Model):
    """Operations register a capture terminal (终端机) to a registered school."""

    terminal_id: Id
    school_id: Id
    label: Name


class TerminalCredential(Model):
    """The terminal's OAuth client credentials; the secret is shown once, never stored."""

    terminal_id: str
    school_id: str
    client_id: str
    client_secret: str


class RevokeTerminal(Model):
    reason: Note


class TerminalRevokedAnswer(Model):
    terminal_id: str
    school_id: str
    revoked: bool


class TerminalQuery(Model):
    school_id: Id | None = None


class Terminal(Model):
    terminal_id: str
    school_id: str
    label: str
    revoked: bool


class Terminals(Model):
    terminals: list[Terminal]


# ----------------------------------------------------------------------------- students


class RegisterStudent(Model):
    """A school registers a proposed-aid student (拟受助学生). City and county come from the
    school registry; the ID number is validated and kept only hashed and masked."""

    student_id: StudentNumber
    school_id: Id
    name: Name
    id_number: IdNumber
    grade: Annotated[int, Field(ge=1, le=4)]
    class_name: Name
    major: Name
    enrolment_year: Annotated[int, Field(ge=2000, le=2100)]
    enrolment_season: Season
    proposed_aid: bool = True


class Registered(Model):
    student_id: str
    id_number_masked: str


class Student(Model):
    """A registered student, masked: no full name, no full ID number."""

    student_id: str
    school_id: str
    city: str
    county: str
    name_masked: str
    id_number_masked: str
    grade: int
    class_name: str
    major: str
    enrolment_year: int
    enrolment_season: str
    proposed_aid: bool
    enrolled: str | None
    semesters: list[str]
    left_on: str | None = Field(None, description="the day the student left school (离校), if recorded")
    leaving_reason: Literal["withdrawn", "graduated", "transferred"] | None = None
    to_school_id: str | None = Field(None, description="the destination of a transfer, when known")


# ----------------------------------------------------------------------------- leaving school


class RecordLeaving(Model):
    """The student left school on ``left_on`` (today or earlier): withdrew or dropped out
    (``withdrawn``, 退学), graduated (``graduated``, 毕业) or transferred (``transferred``, 转学) to
    another school, ``to_school_id`` when known (only for a transfer). Aid stops from the next month."""

    reason: Literal["withdrawn", "graduated", "transferred"]
    left_on: Day
    to_school_id: Id | None = None


class Left(Model):
    student_id: str
    school_id: str
    reason: str
    left_on: str
    to_school_id: str | None
    aid_stops_from: str = Field(description="the first month (YYYY-MM) without aid: the month after left_on")


# ----------------------------------------------------------------------------- captures


class SubmitEnrolment(Model):
    """New capture (新增采集) at a terminal: the live frames and the ID-card photo it read. The
    school and the terminal are those of the terminal's token."""

    student_id: Id
    frames: list[Image] = Field(min_length=1, max_length=MAX_FRAMES)
    id_photo: Image
    challenge_id: Id | None = Field(default=None, description="the liveness challenge this burst answers "
                                    "(POST /enrolments/challenges)")
    frame_times_ms: list[FrameTime] | None = Field(
        default=None, min_length=1, max_length=MAX_FRAMES,
        description="client timestamp of each frame, ms of a monotonic clock, in frame order")


class Submitted(Model):
    capture_id: str
    status: Literal["submitted"]


class FileEvidence(Model):
    """The evidence photo (佐证照片) of a student whose ID card is still unreadable at semester end."""

    student_id: Id
    evidence_photo: Image


class EvidenceFiled(Model):
    student_id: str
    mode: str


# ----------------------------------------------------------------------------- rosters

MAX_ROSTER_BYTES = 3 * 1024 * 1024
MAX_ROSTER_B64 = (MAX_ROSTER_BYTES + 2) // 3 * 4


def _decode_file(value: Any) -> bytes:
    """Any bytes, base64; an empty file is let through for the roster reader to name (EMPTY_FILE)."""
    if not isinstance(value, str):
        raise ValueError("a file is a base64 string")
    if len(value) > MAX_ROSTER_B64:
        raise ValueError(f"a roster file is at most {MAX_ROSTER_BYTES // (1024 * 1024)} MiB")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64") from exc


RosterFile = Annotated[
    bytes, BeforeValidator(_decode_file),
    WithJsonSchema({"type": "string", "contentEncoding": "base64", "maxLength": MAX_ROSTER_B64,
                    "pattern": BASE64_PATTERN}),
]


class ImportStudents(Model):
    """A school's roster of proposed-aid students (CSV: UTF-8 with or without BOM, or GB18030;
    XLSX: the first sheet), a header row then one student a row. Columns, Chinese or English:
    学号/student_id, 姓名/name, 身份证号/id_number, 年级/grade, 班级/class_name, 专业/major,
    入学年份/enrolment_year, 入学季节/enrolment_season, 拟受助/proposed_aid (optional, default yes).
    With ``dry_run`` nothing is written: the report says what would be."""

    school_id: Id
    format: Literal["csv", "xlsx"]
    file: RosterFile
    dry_run: bool = False


class RowIssue(Model):
    """What is wrong with one field of a row: the column and a code, never the value."""

    field: str
    code: str
    message: str


class RosterRow(Model):
    """One data row of the file (``row`` is its line in the sheet, the header being row 1).
    ``registered``: recorded (or, in a dry run, would be); ``invalid``: a field is refused;
    ``duplicate``: an earlier row of the file has the same student number or ID number;
    ``exists``: the student number, or the ID number under another student number, is
    registered already."""

    row: int
    student_id: str | None = None
    status: Literal["registered", "invalid", "duplicate", "exists"]
    errors: list[RowIssue]


class ImportReport(Model):
    rows: list[RosterRow]
    registered: int
    refused: int
    dry_run: bool
