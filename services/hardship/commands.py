"""The hardship service's commands: typed requests, parsed at the edge, taken by the domain."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from backbone import fields
from backbone.fields import TEXT_PATTERN, Day, Id, Model, Month, Note

Semester = Annotated[str, Field(pattern=r"^20\d{2}-(autumn|spring)$", examples=["2026-autumn"])]
Method = Literal["information_comparison", "quantitative_assessment", "school_review", "school_investigation"]


class Determine(Model):
    """A school's determination of a student's family-hardship level (from categories 1-8)."""

    student_id: Id
    categories: list[Annotated[int, Field(ge=1, le=8)]] = Field(max_length=8)
    effective_semester: Semester
    methods: list[Method] = Field(min_length=1, max_length=4)
    judged_especially_difficult: bool = False


class Determined(Model):
    determination_id: str
    level: str
    position: int


# ============================================================================ cases (issue 12)

SchoolYear = Annotated[str, Field(pattern=r"^20\d{2}-20\d{2}$", examples=["2026-2027"])]
Stage = Literal["preschool", "primary", "junior", "senior", "vocational"]
Level = Literal["especially_difficult", "difficult", "not_difficult"]
Registration = Literal["in_province", "out_of_province"]
IdNumber = Annotated[str, Field(min_length=15, max_length=18, pattern=r"^[0-9]{17}[0-9Xx]$")]
Short = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(fields._clean),
]
Remark = Annotated[
    str,
    Field(min_length=1, max_length=1000, json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(fields._clean),
]
MAX_HASHES = 50_000
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class IssueNotice(Model):
    """Advance notice (提前告知) of the year's identification at a school."""

    school_year: SchoolYear
    issued_on: Day
    channels: list[Short] = Field(min_length=1, max_length=8, examples=[["家长会", "校园网"]])


class Certificate(Model):
    """Evidence of a category: certificate type, number, issuer (sealed at rest)."""

    type: Short
    number: Short
    issuer: Short


class Claim(Model):
    category: Annotated[int, Field(ge=1, le=8)]
    certificate: Certificate | None = None
    third_party_proof: Note | None = None


class Family(Model):
    """What the family declares (sealed at rest)."""

    members: Annotated[int, Field(ge=1, le=30)]
    yearly_income_yuan: Annotated[int, Field(ge=0, le=100_000_000)]
    income_source: Short | None = None
    housing: Literal["own", "rent", "other"] = "own"
    registration_kind: Literal["city", "town_non_agricultural", "rural"] | None = None


class HomeVisit(Model):
    """Attachment 1 (家访记录表, pre-school): how, who, when (the form's header)."""

    form: Literal["in_person", "phone", "other"]
    teachers: list[Short] = Field(min_length=1, max_length=2)
    visited_on: Day
    guardian_relation: Literal["father", "mother", "other"]
    wishes_aid: bool
    findings: Remark | None = None


class OpenCase(Model):
    """A case for a student and school year: an application (senior, vocational), a pre-school
    guardian's home-visit form, or the school's comparison (compulsory education)."""

    student_id: Id
    school_year: SchoolYear
    stage: Stage
    household_registration: Registration
    claims: list[Claim] = Field(default_factory=list, max_length=8)
    family: Family | None = None
    guardian_id_number: IdNumber | None = None
    home_visit: HomeVisit | None = None


#: the registry lists of the information comparison (信息比对), one import per list and school year
RegistryName = Literal[
    "poor_household",
    "minimum_living",
    "extreme_poverty",
    "orphan",
    "disabled",
    "veterans_affairs",
    "public_security",
    "emergency_management",
]


class ImportRegistry(Model):
    """A registry list for a school year, as ID numbers (hashed at once with the system's key,
    never stored) or as hashes already keyed by the province's comparison system."""

    registry: RegistryName
    system: Literal["province", "national"]
    school_year: SchoolYear
    id_numbers: list[IdNumber] = Field(default_factory=list, max_length=MAX_HASHES)
    id_number_hashes: list[Hash] = Field(default_factory=list, max_length=MAX_HASHES)


class Questionnaire(Model):
    """The scored questionnaire (量化评估); answers sealed at rest."""

    local_minimum_living_yuan_per_year: Annotated[int, Field(ge=1, le=1_000_000)]
    family_members: Annotated[int, Field(ge=1, le=30)]
    yearly_income_yuan: Annotated[int, Field(ge=0, le=100_000_000)]
    debt_yuan: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    housing: Literal["own", "rent", "other"]
    dependants: Annotated[int, Field(ge=0, le=30)] = 0
    serious_illness: bool = False
    disability: bool = False
    disaster: bool = False
    student_monthly_spending_yuan: Annotated[int, Field(ge=0, le=1_000_000)]
    reference_monthly_spending_yuan: Annotated[int, Field(ge=1, le=1_000_000)]


class Review(Model):
    """Democratic review (class group votes and remarks) or an investigation (home visit,
    interview, phone: who, when, findings)."""

    kind: Literal["democratic_review", "investigation"]
    held_on: Day
    by: list[Short] = Field(min_length=1, max_length=20)
    method: Literal["class_vote", "home_visit", "interview", "phone", "data_analysis"]
    votes_for: Annotated[int, Field(ge=0, le=500)] | None = None
    votes_against: Annotated[int, Field(ge=0, le=500)] | None = None
    findings: Remark
    proposed_level: Level | None = None


class DetermineCase(Model):
    """The school's determination (学校认定) with a level. ``level`` other than what the records
    give needs a written ``reason`` and a review or investigation that proposed it. After the
    first determination, a ``trigger`` (semester review, family change) and ``effective_month``."""

    level: Level
    categories: list[Annotated[int, Field(ge=1, le=8)]] = Field(default_factory=list, max_length=8)
    effective_semester: Semester
    reason: Remark | None = None
    trigger: Literal["initial", "semester_review", "family_change"] = "initial"
    effective_month: Month | None = None


class ReportChange(Model):
    reported_on: Day
    description: Remark


class PublishNotice(Model):
    school_year: SchoolYear
    published_on: Day


class FileObjection(Model):
    notice_id: Id
    filed_on: Day
    text: Remark


class ReviewObjection(Model):
    outcome: Literal["upheld", "dismissed"]
    reason: Remark
    level: Level | None = None
    effective_semester: Semester | None = None


class Revoke(Model):
    """False information found (第十七条): aid stops from the next month; the amount to recover
    is recorded."""

    found_on: Day
    reason: Remark


class Archive(Model):
    school_year: SchoolYear
    archived_on: Day


class YearQuery(Model):
    school_year: SchoolYear


class Recorded(Model):
    case_id: str
    event_id: str
    position: int
    status: str


class FileExport(Model):
    filename: str
    media_type: str
    content_base64: str = Field(max_length=20_000_000)
    rows: int
