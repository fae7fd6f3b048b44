"""Python models of every event type, one frozen dataclass per (type, version), declared with
:func:`event`.

These classes are the source of the JSON Schemas in ``contracts/schemas/``
(regenerate with ``aid contracts generate``; a test fails when the files are stale).
Payloads never carry images, face templates or raw ID numbers: they carry
references (``blob:<sha256>``), scores, reasons, an HMAC of the ID number and its
masked form.

Identifiers:
- ``student_id``: the national student number (全国学籍系统学号), never the ID-card number.
- ``semester``: ``"2026-autumn"`` (aid Sep 2026 .. Jan 2027) or ``"2027-spring"`` (aid Mar .. Jul
  2027); a day's semester is :func:`contracts.calendar.semester_of` (Feb and Aug: the next one).
- ``month``: ``"YYYY-MM"``.
- dates are ISO ``YYYY-MM-DD``; instants are ISO-8601 with an offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, dataclass_transform

Channel = Literal["terminal", "app"]
Purpose = Literal["enrolment", "spot_check"]
SemesterSeason = Literal["autumn", "spring"]
CheckKind = Literal["routine", "targeted"]
AbsenceReason = Literal["leave", "cognitive_internship", "shadowing_internship"]
HardshipLevel = Literal["especially_difficult", "difficult", "not_difficult"]
AuthorityLevel = Literal["province", "city", "county"]
LeavingReason = Literal["withdrawn", "graduated", "transferred"]


@dataclass(frozen=True)
class Event:
    """Base of every payload model. ``TYPE`` and ``VERSION`` name the schema."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def to_payload(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


E = TypeVar("E", bound=Event)


@dataclass_transform(frozen_default=True)
def event(cls: type[E]) -> type[E]:
    """Declare a payload model: a frozen dataclass whose ``TYPE`` is its class name, unless the
    class names its type itself (an older version's model)."""
    if "TYPE" not in vars(cls):
        cls.TYPE = cls.__name__
    return dataclass(frozen=True)(cls)


# --------------------------------------------------------------------------- students


@dataclass(frozen=True)
class StudentDetails(Event):
    """What every version of StudentRegistered says besides the school."""

    student_id: str
    name_masked: str
    id_number_hash: str
    id_number_masked: str
    grade: int
    class_name: str
    major: str
    enrolment_year: int
    enrolment_season: SemesterSeason
    proposed_aid: bool


@event
class StudentRegisteredV1(StudentDetails):
    """v1 carried only the school id; kept so old logs stay readable (see upcasters)."""

    TYPE: ClassVar[str] = "StudentRegistered"
    school_id: str


@dataclass(frozen=True)
class SchoolRef:
    school_id: str
    city: str
    county: str


@event
class StudentRegistered(StudentDetails):
    """A proposed-aid student (拟受助学生) is known to the system, with school, city, county."""

    VERSION: ClassVar[int] = 2
    school: SchoolRef


@event
class StudentLeft(Event):
    """The student left school (离校) on ``left_on``: withdrew or dropped out (``withdrawn``, 退学),
    graduated (``graduated``, 毕业) or transferred to another school (``transferred``, 转学;
    ``to_school_id`` names the destination when it is known). Recorded by the student's school or by
    operations, once; eligibility pays no aid from the month after ``left_on`` (the leaving month
    itself is paid), and checks opened after ``left_on`` do not concern the student."""

    student_id: str
    school_id: str
    reason: LeavingReason
    left_on: str
    to_school_id: str | None = None


# --------------------------------------------------------------------------- schools, terminals


@event
class SchoolRegistered(Event):
    """Operations record a school with its city and county (the area its authorities cover) and
    the level of its same-level authority (同级资助管理部门), which rules on its appeals:
    ``province`` for a directly administered school (直属, the only schools targeted checks
    reach), else ``city`` or ``county``. A later event for the same school replaces the earlier."""

    school_id: str
    name: str
    city: str
    county: str
    administered_by: AuthorityLevel

    @property
    def directly_administered(self) -> bool:
        return self.administered_by == "province"


@event
class TerminalRegistered(Event):
    """Operations register a capture terminal (kiosk) to one school; its credential is issued
    outside the log (only a hash is kept, in ``terminal_credentials``)."""

    terminal_id: str
    school_id: str
    label: str


@event
class TerminalRevoked(Event):
    """The terminal may no longer act: its tokens are refused from now on."""

    terminal_id: str
    school_id: str
    reason: str


# --------------------------------------------------------------------------- captures


@dataclass(frozen=True)
class CaptureEvent(Event):
    """What every event of a capture's stream says of the capture; ``check_id`` names the spot
    check a ``spot_check`` capture answers."""

    capture_id: str
    student_id: str
    school_id: str
    purpose: Purpose
    channel: Channel
    check_id: str | None = field(default=None, kw_only=True)


@event
class CaptureSubmitted(CaptureEvent):
    """A terminal or the app sent a live capture (frames are stored; the event holds references)."""

    frame_refs: list[str]
    captured_at: str
    terminal_id: str | None = None
    id_photo_ref: str | None = None
    attempt: int = 1
    #: (optional, added compatibly) the liveness challenge the burst answers
    #: (LivenessChallengeIssued), its action, and the client's timestamp of each frame in ms
    challenge_id: str | None = None
    challenge_action: str | None = None
    frame_times_ms: list[int] | None = None


@event
class LivenessChallengeIssued(Event):
    """The service a terminal or the app talks to asked for a liveness action before a capture
    (``blink``, ``turn_left``, ``turn_right``, drawn at random); the capture that answers it
    names ``challenge_id`` (and takes it as its capture id: one capture per challenge)."""

    challenge_id: str
    action: Literal["blink", "turn_left", "turn_right"]
    student_id: str
    school_id: str
    purpose: Purpose
    channel: Channel
    issued_at: str
    expires_at: str
    terminal_id: str | None = None
    check_id: str | None = None


@event
class DuplicateFaceHeld(Event):
    """A new capture's face is already enrolled for another student of the province: the
    enrolment is held for the province to review; both students are named (no template, no
    image)."""

    capture_id: str
    student_id: str
    school_id: str
    other_student_id: str
    other_school_id: str
    distance: float
    threshold: float
    model_version: str


@event
class CaptureVerified(CaptureEvent):
    """Face matching accepted the capture (enrolment: live face == ID photo; spot check: == template).

    ``captured_at`` (optional, added compatibly): the CaptureSubmitted's ``captured_at``, when the
    face was taken; a check is passed by a capture taken in its window, whenever the verdict comes."""

    distance: float
    threshold: float
    quality: dict[str, Any]
    liveness: dict[str, Any]
    model_version: str
    template_ref: str | None = None
    captured_at: str | None = None


@event
class CaptureRejected(CaptureEvent):
    """Face matching refused the capture, with machine-readable reasons (NO_FACE, NO_MATCH, ...).

    ``captured_at`` (optional, added compatibly): the CaptureSubmitted's ``captured_at``."""

    reasons: list[str]
    quality: dict[str, Any]
    liveness: dict[str, Any]
    model_version: str
    distance: float | None = None
    threshold: float | None = None
    suspected_student_id: str | None = None
    captured_at: str | None = None


@event
class StudentEnrolled(Event):
    """New capture (新增采集) finished: verified, provisional (this semester only) or evidence filed."""

    student_id: str
    school_id: str
    semester: str
    mode: Literal["verified", "provisional", "evidence_filed"]
    capture_id: str


# --------------------------------------------------------------------------- checks


@event
class CheckOpened(Event):
    """A routine (例行) or targeted (定向) spot check opens (10:00 .. at most 15:00, Asia/Shanghai)."""

    check_id: str
    kind: CheckKind
    semester: str
    month: str
    opens_at: str
    closes_at: str
    initiated_by: AuthorityLevel
    school_ids: list[str] | None = None
    student_ids: list[str] | None = None


@event
class CheckClosed(Event):
    check_id: str
    closed_at: str


@event
class AbsenceMarked(Event):
    """The school marks an absence reason; ``reported_at`` is when the papers reached the aid office.

    For an internship reason, ``internship_starts_on``/``internship_ends_on`` (optional, added
    compatibly) give the internship's period: 3+ full months away needs an InternshipPlanFiled.
    """

    check_id: str
    student_id: str
    school_id: str
    reason: AbsenceReason
    reported_at: str
    internship_starts_on: str | None = None
    internship_ends_on: str | None = None


@event
class ForcedPassRecorded(Event):
    """Three failed confirmations at a terminal: evidence photo taken, check force-passed (强行确认通过).

    ``attempts`` counts the failed terminal confirmations in the log; ``evidence_ref`` is the photo."""

    check_id: str
    student_id: str
    school_id: str
    terminal_id: str
    attempts: int
    evidence_ref: str


@event
class MonthResultsPublished(Event):
    """A school published a month's check results; the 5-working-day objection period starts."""

    school_id: str
    month: str
    published_on: str


# --------------------------------------------------------------------------- internships


@event
class InternshipPlanFiled(Event):
    """An internship away from school of 3+ full months was filed (实习计划备案).

    ``filed_on`` is the day the filing was complete (the later of the two filings). Added
    compatibly (absent in older events): the day of each filing, with the same-level education
    department and with the aid authority, and ``filed_late``: filed fewer than 15 days before
    ``starts_on`` (the departure)."""

    plan_id: str
    student_id: str
    school_id: str
    kind: Literal["cognitive", "shadowing"]
    starts_on: str
    ends_on: str
    filed_on: str
    education_filed_on: str | None = None
    aid_authority_filed_on: str | None = None
    filed_late: bool | None = None


@event
class InternshipDeparted(Event):
    """The student of a filed internship plan left school on ``departed_on``."""

    plan_id: str
    student_id: str
    school_id: str
    departed_on: str


@event
class InternshipReturned(Event):
    """The student of a filed internship plan came back to school on ``returned_on``."""

    plan_id: str
    student_id: str
    school_id: str
    returned_on: str


@event
class PlacementConfirmed(Event):
    """Placement internship (顶岗实习) confirmed at a terminal before leaving (离校前确认)."""

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
    remark: str | None = None


@event
class PlacementRefused(Event):
    """A placement confirmation refused at a terminal, kept for audit: ``reason`` ``FIRST_YEAR``
    (一年级学生不得顶岗实习); ``grade`` as registered."""

    placement_id: str
    student_id: str
    school_id: str
    grade: int
    reason: Literal["FIRST_YEAR"]
    refused_on: str
    terminal_id: str | None = None


@event
class PlacementUpdated(Event):
    placement_id: str
    student_id: str
    changes: dict[str, str]


@event
class PlacementEnded(Event):
    placement_id: str
    student_id: str
    ended_on: str


# --------------------------------------------------------------------------- appeals


@event
class ObjectionRecorded(Event):
    """The school's aid office received a student's written objection (异议) to the published
    results of ``month`` on ``received_on``, inside the objection window: ``window_ends_on`` is
    the ``working_days``-th working day after ``published_on`` (contracts/workdays.py). Late or
    future-dated objections are refused, not recorded. ``reason`` is the student's, as written."""

    objection_id: str
    student_id: str
    school_id: str
    month: str
    received_on: str
    reason: str
    published_on: str
    window_ends_on: str
    working_days: int


@event
class AppealFiledV1(Event):
    """Version 1: one appeal per student, with an uploaded letter (kept so old logs stay readable).

    An upcaster makes each a filing of one student, ``filing_id`` = ``appeal_id``."""

    TYPE: ClassVar[str] = "AppealFiled"
    appeal_id: str
    student_id: str
    school_id: str
    month: str
    objected_on: str
    letter_ref: str


@dataclass(frozen=True)
class AppealStudent:
    """One student of a filing. ``objected_on``: the earliest day an objection of the student
    reached the aid office (the one the window is judged by); ``objection_ids``: every objection
    recorded for the student and month (a second letter adds its reason). ``class_name`` and
    ``name_masked`` (张*) as registered; None in filings upcast from v1."""

    student_id: str
    objected_on: str
    objection_ids: list[str]
    reason: str | None
    class_name: str | None
    name_masked: str | None


@event
class AppealFiled(Event):
    """The school files one appeal (申诉) per month: a formal letter (公函) to its same-level
    authority listing the month's objections. ``letter_ref``: the generated letter (PDF) to print
    and sign; ``authority_level``/``city``/``county``: who rules (the school's same-level
    authority, its area); ``filed_on``: the day filed (the ruling is due within that month).
    Fields a v1 appeal lacks are None."""

    VERSION: ClassVar[int] = 2
    filing_id: str
    school_id: str
    month: str
    students: list[AppealStudent]
    letter_ref: str | None
    filed_on: str | None
    authority_level: AuthorityLevel | None
    city: str | None
    county: str | None


@event
class AppealLetterSigned(Event):
    """The signed and stamped letter of a filing, scanned, attached after filing (``scan_ref``)."""

    filing_id: str
    school_id: str
    month: str
    scan_ref: str


@event
class AppealResolved(Event):
    """The same-level authority's ruling on one student of an appeal filing.

    ``appeal_id`` is the filing's id; ``reason`` (optional, added compatibly): why, as the
    authority wrote it."""

    appeal_id: str
    student_id: str
    month: str
    decision: Literal["approved", "rejected"]
    decided_by: AuthorityLevel
    reason: str | None = None


@event
class AppealClosedUnhandled(Event):
    """A filing not ruled within the month it was filed in is closed at that month's end
    (当月未予处理): its students without a ruling (``student_ids``) keep their original status."""

    filing_id: str
    school_id: str
    month: str
    student_ids: list[str]
    closed_on: str
    reason: str


# --------------------------------------------------------------------------- roster, hardship


@dataclass(frozen=True)
class RosterEntry:
    student_id: str
    id_number_hash: str


@event
class NationalRosterImported(Event):
    """One part of the national student-aid system's list (全国系统名单) for a semester."""

    import_id: str
    semester: str
    part: int
    parts: int
    source_sha256: str
    entries: list[RosterEntry]


# ---- hardship cases (issue 12): the yearly procedure of seed 004, one stream per case
# (``hardship-case-{student}-{year}``) and one per school and year for its notices and archive.
# Income, illness, disability, certificates and remarks travel only sealed (``sealed``: AES-GCM,
# base64, opened by the hardship service alone).

HardshipStage = Literal["preschool", "primary", "junior", "senior", "vocational"]
HouseholdRegistration = Literal["in_province", "out_of_province"]


@dataclass(frozen=True)
class CategoryClaim:
    """A claimed category (1..8) and whether a certificate was shown (its type, number and
    issuer are in the case's sealed part)."""

    category: int
    certificate: bool


@dataclass(frozen=True)
class ComparisonResult:
    """Information comparison (信息比对) of one claimed category: ``confirmed`` (a record in the
    registry list of the system the seed names), ``no_record`` (the school decides by its own
    methods) or ``school_methods`` (categories the seed leaves to the school)."""

    category: int
    outcome: Literal["confirmed", "no_record", "school_methods"]
    system: str | None = None
    registry: str | None = None
    import_id: str | None = None


@event
class HardshipNoticeIssued(Event):
    """Advance notice (提前告知) of a school's identification for a school year."""

    notice_id: str
    school_id: str
    school_year: str
    issued_on: str
    channels: list[str]


@event
class HardshipCaseOpened(Event):
    """A case opens: a student's application, a pre-school guardian's home-visit form (附件1,
    with its tier) or, in compulsory education, the school's own comparison."""

    case_id: str
    student_id: str
    school_id: str
    school_year: str
    stage: HardshipStage
    route: Literal["application", "home_visit", "comparison"]
    household_registration: HouseholdRegistration
    claims: list[CategoryClaim]
    sealed: str
    guardian_id_hash: str | None = None
    tier: int | None = None


@event
class HardshipRegistryImported(Event):
    """A registry list for a school year (poor households, minimum living allowance, ...), from the
    province's comparison system or the national one, as keyed ID-number hashes. A later import
    of the same list and system replaces the earlier."""

    import_id: str
    registry: str
    system: Literal["province", "national"]
    school_year: str
    id_number_hashes: list[str]


@event
class HardshipCompared(Event):
    case_id: str
    student_id: str
    results: list[ComparisonResult]


@event
class HardshipAssessed(Event):
    """Quantitative assessment (量化评估): the questionnaire's score under a policy version; the
    answers and the factor-by-factor explanation are sealed."""

    case_id: str
    student_id: str
    policy_version: str
    score: float
    suggested_level: HardshipLevel
    sealed: str


@event
class HardshipReviewRecorded(Event):
    """Democratic review (民主评议) or investigation (调查: home visit, interview, phone); who, when,
    votes, remarks and findings sealed; ``proposed_level`` when it argues for a level."""

    case_id: str
    student_id: str
    review_id: str
    kind: Literal["democratic_review", "investigation"]
    sealed: str
    proposed_level: HardshipLevel | None = None


@event
class HardshipChangeReported(Event):
    """A family's situation changed: the case is due for re-assessment."""

    case_id: str
    student_id: str
    reported_on: str
    sealed: str


@event
class HardshipNoticePublished(Event):
    """Public notice (公示) of a school's determinations, open to objections until
    ``objections_until`` (inclusive)."""

    notice_id: str
    school_id: str
    school_year: str
    case_ids: list[str]
    published_on: str
    objections_until: str
    determination_ids: list[str] = field(default_factory=list)


@event
class HardshipObjectionFiled(Event):
    objection_id: str
    case_id: str
    student_id: str
    notice_id: str
    filed_on: str
    sealed: str


@event
class HardshipObjectionReviewed(Event):
    """The review of an objection (复核): ``upheld`` changes the level (a new determination)."""

    objection_id: str
    case_id: str
    student_id: str
    outcome: Literal["upheld", "dismissed"]
    sealed: str
    determination_id: str | None = None


@event
class HardshipArchived(Event):
    """Archive and report (建档备案) of a school's year once the notice had no open objection."""

    archive_id: str
    school_id: str
    school_year: str
    case_ids: list[str]
    archived_on: str


@event
class HardshipDetermined(Event):
    """Family-hardship identification (家庭经济困难学生认定) result in force from ``effective_semester``.

    ``effective_month`` (optional, added compatibly, ``YYYY-MM``): a change during the year (the
    seed's dynamic adjustment) in force from that month; without it, from the semester's start."""

    determination_id: str
    student_id: str
    school_id: str
    level: HardshipLevel
    categories: list[int]
    effective_semester: str
    methods: list[str] = field(default_factory=list)
    effective_month: str | None = None
    case_id: str | None = None
    school_year: str | None = None
    stage: str | None = None
    trigger: str | None = None
    sealed: str | None = None


@event
class HardshipRevoked(Event):
    """False information found: the status is revoked from ``effective_semester`` on
    (or from ``effective_month``, ``YYYY-MM``, when given: optional, added compatibly)."""

    determination_id: str
    student_id: str
    effective_semester: str
    reason: str
    effective_month: str | None = None
    case_id: str | None = None
    revoked_on: str | None = None
    recover_yuan: int | None = None
    recover_months: list[str] = field(default_factory=list)


ALL_EVENTS: tuple[type[Event], ...] = (
    SchoolRegistered,
    TerminalRegistered,
    TerminalRevoked,
    StudentRegisteredV1,
    StudentRegistered,
    StudentLeft,
    CaptureSubmitted,
    LivenessChallengeIssued,
    DuplicateFaceHeld,
    CaptureVerified,
    CaptureRejected,
    StudentEnrolled,
    CheckOpened,
    CheckClosed,
    AbsenceMarked,
    ForcedPassRecorded,
    MonthResultsPublished,
    InternshipPlanFiled,
    InternshipDeparted,
    InternshipReturned,
    PlacementConfirmed,
    PlacementRefused,
    PlacementUpdated,
    PlacementEnded,
    ObjectionRecorded,
    AppealFiledV1,
    AppealFiled,
    AppealLetterSigned,
    AppealResolved,
    AppealClosedUnhandled,
    NationalRosterImported,
    HardshipDetermined,
    HardshipRevoked,
    HardshipNoticeIssued,
    HardshipCaseOpened,
    HardshipRegistryImported,
    HardshipCompared,
    HardshipAssessed,
    HardshipReviewRecorded,
    HardshipChangeReported,
    HardshipNoticePublished,
    HardshipObjectionFiled,
    HardshipObjectionReviewed,
    HardshipArchived,
)
