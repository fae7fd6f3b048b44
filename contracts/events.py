"""Python models of every event type, one frozen dataclass per (type, version).

These classes are the source of the JSON Schemas in ``contracts/schemas/``
(regenerate with ``aid contracts generate``; a test fails when the files are stale).
Payloads never carry images, face templates or raw ID numbers: they carry
references (``blob:<sha256>``), scores, reasons, an HMAC of the ID number and its
masked form.

Identifiers:
- ``student_id``: the national student number (全国学籍系统学号), never the ID-card number.
- ``semester``: ``"2026-autumn"`` (Sep 2026 .. Jan 2027) or ``"2027-spring"`` (Mar .. Jul 2027).
- ``month``: ``"YYYY-MM"``.
- dates are ISO ``YYYY-MM-DD``; instants are ISO-8601 with an offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Channel = Literal["terminal", "app"]
Purpose = Literal["enrolment", "spot_check"]
SemesterSeason = Literal["autumn", "spring"]
CheckKind = Literal["routine", "targeted"]
AbsenceReason = Literal["leave", "cognitive_internship", "shadowing_internship"]
HardshipLevel = Literal["especially_difficult", "difficult", "not_difficult"]
AuthorityLevel = Literal["province", "city", "county"]


@dataclass(frozen=True)
class Event:
    """Base of every payload model. ``TYPE`` and ``VERSION`` name the schema."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def to_payload(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


# --------------------------------------------------------------------------- students


@dataclass(frozen=True)
class SchoolRef:
    school_id: str
    city: str
    county: str


@dataclass(frozen=True)
class StudentRegisteredV1(Event):
    """v1 carried only the school id; kept so old logs stay readable (see upcasters)."""

    TYPE: ClassVar[str] = "StudentRegistered"
    VERSION: ClassVar[int] = 1
    student_id: str
    school_id: str
    name_masked: str
    id_number_hash: str
    id_number_masked: str
    grade: int
    class_name: str
    major: str
    enrolment_year: int
    enrolment_season: SemesterSeason
    proposed_aid: bool


@dataclass(frozen=True)
class StudentRegistered(Event):
    """A proposed-aid student (拟受助学生) is known to the system, with school, city, county."""

    TYPE: ClassVar[str] = "StudentRegistered"
    VERSION: ClassVar[int] = 2
    student_id: str
    school: SchoolRef
    name_masked: str
    id_number_hash: str
    id_number_masked: str
    grade: int
    class_name: str
    major: str
    enrolment_year: int
    enrolment_season: SemesterSeason
    proposed_aid: bool


# --------------------------------------------------------------------------- schools, terminals


@dataclass(frozen=True)
class SchoolRegistered(Event):
    """Operations record a school with its city and county (the area its authorities cover) and
    the level of its same-level authority (同级资助管理部门), which rules on its appeals:
    ``province`` for a directly administered school (直属, the only schools targeted checks
    reach), else ``city`` or ``county``. A later event for the same school replaces the earlier."""

    TYPE: ClassVar[str] = "SchoolRegistered"
    school_id: str
    name: str
    city: str
    county: str
    administered_by: AuthorityLevel

    @property
    def directly_administered(self) -> bool:
        return self.administered_by == "province"


@dataclass(frozen=True)
class TerminalRegistered(Event):
    """Operations register a capture terminal (kiosk) to one school; its credential is issued
    outside the log (only a hash is kept, in ``terminal_credentials``)."""

    TYPE: ClassVar[str] = "TerminalRegistered"
    terminal_id: str
    school_id: str
    label: str


@dataclass(frozen=True)
class TerminalRevoked(Event):
    """The terminal may no longer act: its tokens are refused from now on."""

    TYPE: ClassVar[str] = "TerminalRevoked"
    terminal_id: str
    school_id: str
    reason: str


# --------------------------------------------------------------------------- captures


@dataclass(frozen=True)
class CaptureSubmitted(Event):
    """A terminal or the app sent a live capture (frames are stored; the event holds references)."""

    TYPE: ClassVar[str] = "CaptureSubmitted"
    capture_id: str
    student_id: str
    school_id: str
    purpose: Purpose
    channel: Channel
    frame_refs: list[str]
    captured_at: str
    check_id: str | None = None
    terminal_id: str | None = None
    id_photo_ref: str | None = None
    attempt: int = 1


@dataclass(frozen=True)
class CaptureVerified(Event):
    """Face matching accepted the capture (enrolment: live face == ID photo; spot check: == template)."""

    TYPE: ClassVar[str] = "CaptureVerified"
    capture_id: str
    student_id: str
    school_id: str
    purpose: Purpose
    channel: Channel
    distance: float
    threshold: float
    quality: dict[str, Any]
    liveness: dict[str, Any]
    model_version: str
    check_id: str | None = None
    template_ref: str | None = None


@dataclass(frozen=True)
class CaptureRejected(Event):
    """Face matching refused the capture, with machine-readable reasons (NO_FACE, NO_MATCH, ...)."""

    TYPE: ClassVar[str] = "CaptureRejected"
    capture_id: str
    student_id: str
    school_id: str
    purpose: Purpose
    channel: Channel
    reasons: list[str]
    quality: dict[str, Any]
    liveness: dict[str, Any]
    model_version: str
    check_id: str | None = None
    distance: float | None = None
    threshold: float | None = None
    suspected_student_id: str | None = None


@dataclass(frozen=True)
class StudentEnrolled(Event):
    """New capture (新增采集) finished: verified, provisional (this semester only) or evidence filed."""

    TYPE: ClassVar[str] = "StudentEnrolled"
    student_id: str
    school_id: str
    semester: str
    mode: Literal["verified", "provisional", "evidence_filed"]
    capture_id: str


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class CheckOpened(Event):
    """A routine (例行) or targeted (定向) spot check opens (10:00 .. at most 15:00, Asia/Shanghai)."""

    TYPE: ClassVar[str] = "CheckOpened"
    check_id: str
    kind: CheckKind
    semester: str
    month: str
    opens_at: str
    closes_at: str
    initiated_by: AuthorityLevel
    school_ids: list[str] | None = None
    student_ids: list[str] | None = None


@dataclass(frozen=True)
class CheckClosed(Event):
    TYPE: ClassVar[str] = "CheckClosed"
    check_id: str
    closed_at: str


@dataclass(frozen=True)
class AbsenceMarked(Event):
    """The school marks an absence reason; ``reported_at`` is when the papers reached the aid office.

    For an internship reason, ``internship_starts_on``/``internship_ends_on`` (optional, added
    compatibly) give the internship's period: 3+ full months away needs an InternshipPlanFiled.
    """

    TYPE: ClassVar[str] = "AbsenceMarked"
    check_id: str
    student_id: str
    school_id: str
    reason: AbsenceReason
    reported_at: str
    internship_starts_on: str | None = None
    internship_ends_on: str | None = None


@dataclass(frozen=True)
class ForcedPassRecorded(Event):
    """Three failed confirmations at a terminal: evidence photo taken, check force-passed (强行确认通过)."""

    TYPE: ClassVar[str] = "ForcedPassRecorded"
    check_id: str
    student_id: str
    school_id: str
    terminal_id: str
    attempts: int
    evidence_ref: str


@dataclass(frozen=True)
class MonthResultsPublished(Event):
    """A school published a month's check results; the 5-working-day objection period starts."""

    TYPE: ClassVar[str] = "MonthResultsPublished"
    school_id: str
    month: str
    published_on: str


# --------------------------------------------------------------------------- internships


@dataclass(frozen=True)
class InternshipPlanFiled(Event):
    """An internship away from school of 3+ full months was filed (实习计划备案)."""

    TYPE: ClassVar[str] = "InternshipPlanFiled"
    plan_id: str
    student_id: str
    school_id: str
    kind: Literal["cognitive", "shadowing"]
    starts_on: str
    ends_on: str
    filed_on: str


@dataclass(frozen=True)
class PlacementConfirmed(Event):
    """Placement internship (顶岗实习) confirmed at a terminal before leaving (离校前确认)."""

    TYPE: ClassVar[str] = "PlacementConfirmed"
    placement_id: str
    student_id: str
    school_id: str
    grade: int
    class_name: str
    company: str
    location: str
    supervisor: str
    supervisor_contact_masked: str
    starts_on: str
    ends_on: str
    filed_on: str | None = None


@dataclass(frozen=True)
class PlacementUpdated(Event):
    TYPE: ClassVar[str] = "PlacementUpdated"
    placement_id: str
    student_id: str
    changes: dict[str, str]


@dataclass(frozen=True)
class PlacementEnded(Event):
    TYPE: ClassVar[str] = "PlacementEnded"
    placement_id: str
    student_id: str
    ended_on: str


# --------------------------------------------------------------------------- appeals


@dataclass(frozen=True)
class AppealFiled(Event):
    """The school files an appeal (申诉) for a student's month, with the student's objection date."""

    TYPE: ClassVar[str] = "AppealFiled"
    appeal_id: str
    student_id: str
    school_id: str
    month: str
    objected_on: str
    letter_ref: str


@dataclass(frozen=True)
class AppealResolved(Event):
    TYPE: ClassVar[str] = "AppealResolved"
    appeal_id: str
    student_id: str
    month: str
    decision: Literal["approved", "rejected"]
    decided_by: AuthorityLevel


# --------------------------------------------------------------------------- roster, hardship


@dataclass(frozen=True)
class RosterEntry:
    student_id: str
    id_number_hash: str


@dataclass(frozen=True)
class NationalRosterImported(Event):
    """One part of the national student-aid system's list (全国系统名单) for a semester."""

    TYPE: ClassVar[str] = "NationalRosterImported"
    import_id: str
    semester: str
    part: int
    parts: int
    source_sha256: str
    entries: list[RosterEntry]


@dataclass(frozen=True)
class HardshipDetermined(Event):
    """Family-hardship identification (家庭经济困难学生认定) result in force from ``effective_semester``."""

    TYPE: ClassVar[str] = "HardshipDetermined"
    determination_id: str
    student_id: str
    school_id: str
    level: HardshipLevel
    categories: list[int]
    effective_semester: str
    methods: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HardshipRevoked(Event):
    """False information found: the status is revoked from ``effective_semester`` on."""

    TYPE: ClassVar[str] = "HardshipRevoked"
    determination_id: str
    student_id: str
    effective_semester: str
    reason: str


ALL_EVENTS: tuple[type[Event], ...] = (
    SchoolRegistered,
    TerminalRegistered,
    TerminalRevoked,
    StudentRegisteredV1,
    StudentRegistered,
    CaptureSubmitted,
    CaptureVerified,
    CaptureRejected,
    StudentEnrolled,
    CheckOpened,
    CheckClosed,
    AbsenceMarked,
    ForcedPassRecorded,
    MonthResultsPublished,
    InternshipPlanFiled,
    PlacementConfirmed,
    PlacementUpdated,
    PlacementEnded,
    AppealFiled,
    AppealResolved,
    NationalRosterImported,
    HardshipDetermined,
    HardshipRevoked,
)
