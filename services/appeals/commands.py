"""The appeals service's commands: typed requests, parsed at the edge, taken by the domain."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from backbone.fields import MAX_IMAGE_B64, Day, Id, Image, Model, Month, Note

FilingStatus = Literal["waiting", "ruled", "closed_unhandled"]
CheckResult = Literal["passed", "forced_pass", "excused", "failed", "open"]
ScanType = Literal["image/jpeg", "image/png", "application/octet-stream"]


class RecordObjection(Model):
    """The school's aid office records a student's written objection to a published month, with
    the day it was received (checked against the 5-working-day window now)."""

    student_id: Id
    month: Month
    received_on: Day
    reason: Note


class ObjectionAnswer(Model):
    objection_id: str
    student_id: str
    month: str
    received_on: str
    published_on: str
    window_ends_on: str
    filing_id: str


class ObjectionsQuery(Model):
    month: Month


class RecordedObjection(Model):
    """One objection recorded for the month: the student's class and masked name (张*) as
    registered, never the full name."""

    objection_id: str
    student_id: str
    class_name: str | None
    name_masked: str | None
    received_on: str
    reason: str
    window_ends_on: str


class Objections(Model):
    """A school's objections recorded for a month, before (or after) filing; ``filing_id`` is the
    month's filing (``filed``: whether it was filed)."""

    school_id: str
    month: str
    filing_id: str
    filed: bool
    objections: list[RecordedObjection]


class FileMonth(Model):
    """The school files its month: one filing with every objection, and the letter to sign."""

    month: Month


class FiledStudent(Model):
    """One student of a filing and what became of their appeal (``outcome``, with its Chinese and
    English text from ``contracts.reasons.APPEAL_OUTCOMES``; ``ruling_reason``: the authority's)."""

    student_id: str
    class_name: str | None
    name_masked: str | None
    objected_on: str
    objection_ids: list[str]
    reason: str | None
    outcome: Literal["pending", "approved", "rejected", "closed_unhandled"]
    outcome_zh: str
    outcome_en: str
    ruling_reason: str | None


class FilingAnswer(Model):
    filing_id: str
    school_id: str
    month: str
    filed_on: str | None
    authority_level: str | None
    students: list[FiledStudent]
    signed: bool
    status: FilingStatus


class LetterPdf(Model):
    """The filing's letter (公函), a PDF in base64, to print, sign and stamp."""

    filing_id: str
    filename: str
    content_type: Literal["application/pdf"] = "application/pdf"
    content_base64: str = Field(max_length=8 * 1024 * 1024, json_schema_extra={"contentEncoding": "base64"})


class SignedScan(Model):
    """The signed and stamped letter, scanned (JPEG or PNG)."""

    scan: Image


class Signed(Model):
    filing_id: str
    scan_ref: str


class SignedScanFile(Model):
    """The signed and stamped letter's scan, as the school attached it, in base64 (the type from its
    first bytes: JPEG, PNG, else application/octet-stream)."""

    filing_id: str
    filename: str
    content_type: ScanType
    content_base64: str = Field(max_length=MAX_IMAGE_B64, json_schema_extra={"contentEncoding": "base64"})


class Rule(Model):
    """The same-level authority's ruling on one student of a filing."""

    student_id: Id
    decision: Literal["approved", "rejected"]
    reason: Note


class Ruled(Model):
    filing_id: str
    student_id: str
    decision: str
    decided_by: str


class Check(Model):
    """One check of the month and what the log holds of the student in it."""

    check_id: str
    kind: str
    opens_at: str
    closes_at: str
    closed: bool
    result: CheckResult
    verdicts: list[dict[str, object]]
    absences: list[dict[str, object]]
    forced_passes: list[dict[str, object]]


class InboxStudent(Model):
    student_id: str
    class_name: str | None
    name_masked: str | None
    objected_on: str
    reason: str | None
    ruling: str | None
    failed_checks: list[Check]
    other_checks: list[Check]


class InboxFiling(Model):
    filing_id: str
    school_id: str
    month: str
    filed_on: str | None
    signed: bool
    students: list[InboxStudent]


class Inbox(Model):
    """The filings waiting for the caller's ruling (its level, its area)."""

    filings: list[InboxFiling]
