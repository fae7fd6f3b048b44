"""The enrolment service's commands and answers: typed requests, parsed at the edge
(:mod:`backbone.edge`), taken by the domain functions. No command carries an actor or an
operator: who acts comes from the caller's token."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from backbone.fields import Id, Image, Model, Name, Note

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


# ----------------------------------------------------------------------------- captures


class SubmitEnrolment(Model):
    """New capture (新增采集) at a terminal: the live frames and the ID-card photo it read. The
    school and the terminal are those of the terminal's token."""

    student_id: Id
    frames: list[Image] = Field(min_length=1, max_length=MAX_FRAMES)
    id_photo: Image


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
