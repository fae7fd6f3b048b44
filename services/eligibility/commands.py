"""The eligibility service's queries: typed requests and answers of its HTTP routes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from backbone.fields import Id, Instant, Model, Name, text

Semester = Annotated[str, Field(pattern=r"^20\d{2}-(autumn|spring)$", examples=["2026-autumn"])]


class StudentQuery(Model):
    semester: Semester | None = None


class SummaryQuery(Model):
    """Narrow the summary to one school, county or city (an authority sees only its area)."""

    school_id: Id | None = None
    county: Name | None = None
    city: Name | None = None


class AreaQuery(Model):
    """Narrow a per-school list to one county or city (an authority sees only its area)."""

    county: Name | None = None
    city: Name | None = None


class SchoolCounts(Model):
    school_id: str
    county: str
    city: str
    students: int
    checked: int
    passed: int
    failed: int
    pending: int


class SummaryBySchool(Model):
    """A month's check counts school by school (a live view of a check day)."""

    month: str
    schools: list[SchoolCounts]


class AsOfQuery(Model):
    """An auditor's question: the status as the log stood at ``as_of`` (events recorded by then)."""

    as_of: Instant
    semester: Semester | None = None


class ReadsQuery(Model):
    student_id: Id | None = None
    caller: text(128) | None = None  # type: ignore[valid-type]
    since: Instant | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class Answer(Model):
    """Answers carry the status records of ``contracts/schemas/eligibility-status.v1.json``."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class StudentStatuses(Answer):
    student_id: str
    statuses: list[dict[str, Any]]


class SchoolMonth(Answer):
    school_id: str
    month: str


class Summary(Answer):
    month: str
    semester: str


class PersonalDataRead(Model):
    read_at: str
    service: str
    route: str
    caller: str
    caller_role: str
    student_id: str


class PersonalDataReads(Model):
    reads: list[PersonalDataRead]


class StudentAsOf(Model):
    """A student's statuses replayed from the log as of an instant, the live projection's, and
    every difference between a replay of the whole log and the live projection (none when the
    projection is sound)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    student_id: str
    as_of: str
    as_of_statuses: list[dict[str, Any]]
    live_statuses: list[dict[str, Any]]
    replay_vs_live: list[str]
