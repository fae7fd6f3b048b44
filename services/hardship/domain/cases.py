"""Hardship cases (家庭经济困难学生认定), one per student and school year, through the seed's steps
(004 第十五条): advance notice -> application (or the pre-school home-visit form, or the school's
comparison in compulsory education) -> comparison, assessment, review, investigation -> school
determination with a level -> public notice with objections -> archive and report. Re-assessment
each semester and on a family change; revocation for false information (第十七条).

Pure rules over the case's events. Sensitive values (income, illness, disability, certificates,
remarks) go into events only sealed, through the :class:`Sealer` the caller passes in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

from backbone.errors import Conflict, DomainError, NotFound
from contracts.calendar import parse_semester
from contracts.envelope import Envelope
from contracts.events import (
    CategoryClaim,
    ComparisonResult,
    HardshipArchived,
    HardshipAssessed,
    HardshipCaseOpened,
    HardshipChangeReported,
    HardshipCompared,
    HardshipDetermined,
    HardshipNoticeIssued,
    HardshipNoticePublished,
    HardshipObjectionFiled,
    HardshipObjectionReviewed,
    HardshipReviewRecorded,
    HardshipRevoked,
)
from services.hardship.commands import (
    DetermineCase,
    FileObjection,
    IssueNotice,
    OpenCase,
    PublishNotice,
    Questionnaire,
    ReportChange,
    Review,
    ReviewObjection,
    Revoke,
)
from services.hardship.domain.policy import HardshipPolicy
from services.hardship.domain.scoring import score

ESPECIALLY_DIFFICULT = frozenset({1, 2, 3, 4, 5, 6})
# registry lists (信息比对) of each category; categories 7 and 8 are the school's to decide
REGISTRIES: Mapping[int, tuple[str, ...]] = {
    1: ("poor_household",),
    2: ("minimum_living", "extreme_poverty"),
    3: ("orphan",),
    4: ("disabled",),
    5: ("veterans_affairs", "public_security", "emergency_management"),
    6: ("veterans_affairs",),
}
STUDENT_ONLY = frozenset({3, 4})  # the student is the orphan / holds the disability certificate
LEVEL_RANK = {"not_difficult": 0, "difficult": 1, "especially_difficult": 2}
PRESCHOOL_TIER_ONE = frozenset({1, 2, 3, 4, 5, 6})  # 附件1 Ⅰ档: 建档立卡, 低保, 烈属或优抚, 孤残


class Sealer(Protocol):
    def seal(self, value: Any, aad: str) -> str: ...

    def open(self, text: str, aad: str) -> Any: ...


def case_id_for(student_id: str, school_year: str) -> str:
    return f"{student_id}.{school_year}"


def case_stream(case_id: str) -> str:
    return f"hardship-case-{case_id}"


def school_year_stream(school_id: str, school_year: str) -> str:
    return f"hardship-school-{school_id}-{school_year}"


def registry_stream(school_year: str) -> str:
    return f"hardship-registry-{school_year}"


def semesters_of(school_year: str) -> tuple[str, str]:
    first, _, second = school_year.partition("-")
    return f"{first}-autumn", f"{second}-spring"


def check_school_year(school_year: str) -> None:
    first, _, second = school_year.partition("-")
    if int(second) != int(first) + 1:
        raise DomainError("BAD_SCHOOL_YEAR", "a school year is two consecutive years, e.g. 2026-2027")


def semester_start(semester: str) -> str:
    year, season = parse_semester(semester)
    return f"{year}-09" if season == "autumn" else f"{year}-03"


def next_month(day: date) -> str:
    return f"{day.year + 1}-01" if day.month == 12 else f"{day.year}-{day.month + 1:02d}"


# ----------------------------------------------------------------------------- the case view


@dataclass
class CaseView:
    case_id: str
    opened: dict[str, Any] | None = None
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    assessment: dict[str, Any] | None = None
    reviews: list[dict[str, Any]] = field(default_factory=list)
    determinations: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    objections: dict[str, dict[str, Any]] = field(default_factory=dict)
    revoked: dict[str, Any] | None = None
    version: int = 0

    @property
    def current(self) -> dict[str, Any] | None:
        return self.determinations[-1] if self.determinations else None

    def change_pending(self) -> bool:
        last = self.current
        return bool(self.changes) and (last is None or self.changes[-1]["seq"] > last["seq"])

    def school_methods(self) -> set[str]:
        """The school's own methods on record (第十三条 (二)-(四))."""
        methods = {r["kind"] for r in self.reviews}
        if self.assessment is not None:
            methods.add("quantitative_assessment")
        if self.opened is not None and self.opened["route"] == "home_visit":
            methods.add("investigation")
        return methods


def case_view(case_id: str, events: Iterable[Envelope]) -> CaseView:
    view = CaseView(case_id)
    for seq, e in enumerate(events, 1):
        p, t = e.payload, e.type
        if t == "HardshipCaseOpened":
            view.opened = dict(p)
        elif t == "HardshipCompared":
            view.comparisons = list(p["results"])
        elif t == "HardshipAssessed":
            view.assessment = dict(p)
        elif t == "HardshipReviewRecorded":
            view.reviews.append(dict(p))
        elif t == "HardshipDetermined":
            view.determinations.append({**p, "seq": seq, "event_id": str(e.event_id)})
        elif t == "HardshipChangeReported":
            view.changes.append({**p, "seq": seq})
        elif t == "HardshipObjectionFiled":
            view.objections[p["objection_id"]] = {**p, "outcome": None}
        elif t == "HardshipObjectionReviewed":
            if p["objection_id"] in view.objections:
                view.objections[p["objection_id"]]["outcome"] = p["outcome"]
        elif t == "HardshipRevoked":
            view.revoked = dict(p)
        view.version = e.stream_version
    return view


@dataclass
class SchoolYearView:
    school_id: str
    school_year: str
    notice: dict[str, Any] | None = None
    publications: list[dict[str, Any]] = field(default_factory=list)
    archived: dict[str, Any] | None = None
    version: int = 0

    def publication_of(self, case_id: str) -> dict[str, Any] | None:
        return next((p for p in reversed(self.publications) if case_id in p["case_ids"]), None)


def school_year_view(school_id: str, school_year: str, events: Iterable[Envelope]) -> SchoolYearView:
    view = SchoolYearView(school_id, school_year)
    for e in events:
        if e.type == "HardshipNoticeIssued":
            view.notice = dict(e.payload)
        elif e.type == "HardshipNoticePublished":
            view.publications.append(dict(e.payload))
        elif e.type == "HardshipArchived":
            view.archived = dict(e.payload)
        view.version = e.stream_version
    return view


def semester_review_due(case: CaseView, semester: str) -> bool:
    """Dynamic adjustment each semester (第十三条): a determined, unrevoked case whose latest
    determination is for an earlier semester of its school year than ``semester``."""
    current = case.current
    if current is None or case.revoked is not None or case.opened is None:
        return False
    order = semesters_of(case.opened["school_year"])
    return semester in order and order.index(current["effective_semester"]) < order.index(semester)


def status_of(case: CaseView, year: SchoolYearView) -> str:
    """Where the case stands: opened, compared, assessed, determined, noticed,
    objection_under_review, reassessment_due, archived, revoked."""
    if case.revoked is not None:
        return "revoked"
    if any(o["outcome"] is None for o in case.objections.values()):
        return "objection_under_review"
    if case.change_pending():
        return "reassessment_due"
    if case.current is None:
        return "assessed" if case.assessment or case.reviews else "compared" if case.comparisons else "opened"
    if year.archived is not None and case.case_id in year.archived["case_ids"]:
        return "archived"
    return "noticed" if _noticed_since(case, year) else "determined"


# ----------------------------------------------------------------------------- steps


def issue_notice(cmd: IssueNotice, school_id: str, year: SchoolYearView) -> HardshipNoticeIssued:
    check_school_year(cmd.school_year)
    if year.notice is not None:
        raise Conflict("NOTICE_EXISTS", "the advance notice of this school year was issued already")
    return HardshipNoticeIssued(
        notice_id=f"N.{school_id}.{cmd.school_year}",
        school_id=school_id,
        school_year=cmd.school_year,
        issued_on=cmd.issued_on.isoformat(),
        channels=list(cmd.channels),
    )


def open_case(
    cmd: OpenCase,
    school_id: str,
    year: SchoolYearView,
    existing: CaseView,
    policy: HardshipPolicy,
    sealer: Sealer,
    guardian_hash: str | None,
) -> HardshipCaseOpened:
    check_school_year(cmd.school_year)
    if year.notice is None:
        raise Conflict("NOTICE_NOT_ISSUED", "issue the advance notice of the school year first")
    if existing.opened is not None:
        raise Conflict("CASE_EXISTS", "this student has a case for the school year")
    rules = policy.stages[cmd.stage]
    if rules.application == "home_visit":
        if cmd.home_visit is None or cmd.family is None:
            raise DomainError(
                "HOME_VISIT_FORM_REQUIRED",
                "pre-school: the guardian's application and home-visit form (附件1) with the family",
            )
        route: Literal["application", "home_visit", "comparison"] = "home_visit"
    elif rules.application == "application":
        if cmd.family is None:
            raise DomainError(
                "APPLICATION_REQUIRED", f"{cmd.stage} students apply with their family's situation"
            )
        route = "application"
    else:
        route = "application" if cmd.family is not None else "comparison"
    categories = [c.category for c in cmd.claims]
    if len(set(categories)) != len(categories):
        raise DomainError("DUPLICATE_CATEGORY", "each category is claimed once")
    case_id = case_id_for(cmd.student_id, cmd.school_year)
    secret = {
        "claims": [c.model_dump(mode="json") for c in cmd.claims],
        "family": None if cmd.family is None else cmd.family.model_dump(mode="json"),
        "home_visit": None if cmd.home_visit is None else cmd.home_visit.model_dump(mode="json"),
    }
    tier = None
    if cmd.stage == "preschool":
        tier = 1 if PRESCHOOL_TIER_ONE.intersection(categories) else 2
    return HardshipCaseOpened(
        case_id=case_id,
        student_id=cmd.student_id,
        school_id=school_id,
        school_year=cmd.school_year,
        stage=cmd.stage,
        route=route,
        household_registration=cmd.household_registration,
        claims=[
            CategoryClaim(category=c.category, certificate=c.certificate is not None)
            for c in sorted(cmd.claims, key=lambda c: c.category)
        ],
        sealed=sealer.seal(secret, f"HardshipCaseOpened:{case_id}"),
        guardian_id_hash=guardian_hash,
        tier=tier,
    )


def comparison_plan(case: CaseView) -> list[tuple[int, str | None, tuple[str, ...]]]:
    """(category, system, registry lists) to look up for each claim (第十四条): categories 1-4 in
    the province's system for in-province household registration, the national one otherwise;
    5-6 in the province's department lists for in-province registration only; 7-8 none.
    A case without an application (compulsory education, 第十五条(二): "采用信息比对认定") is
    compared for every category 1-6 besides its claims; unclaimed categories are reported only
    when confirmed (:func:`compare`)."""
    opened = _opened(case)
    in_province = opened["household_registration"] == "in_province"
    plan: list[tuple[int, str | None, tuple[str, ...]]] = []
    categories = {int(claim["category"]) for claim in opened["claims"]}
    if opened["route"] == "comparison":
        categories |= set(ESPECIALLY_DIFFICULT)
    for c in sorted(categories):
        if c <= 4:
            plan.append((c, "province" if in_province else "national", REGISTRIES[c]))
        elif c <= 6 and in_province:
            plan.append((c, "province", REGISTRIES[c]))
        else:
            plan.append((c, None, ()))
    return plan


def compare(case: CaseView, found: Mapping[tuple[str, str], tuple[str, frozenset[str]]]) -> HardshipCompared:
    """The comparison of every claim. ``found[(registry, system)]`` is the latest import of that
    list and whose hash it holds (``student``, ``guardian``)."""
    results = []
    claimed = {int(claim["category"]) for claim in _opened(case)["claims"]}
    for category, system, registries in comparison_plan(case):
        if system is None:
            results.append(ComparisonResult(category=category, outcome="school_methods"))
            continue
        allowed = {"student"} if category in STUDENT_ONLY else {"student", "guardian"}
        hit = next(
            (
                (r, found[(r, system)][0])
                for r in registries
                if (r, system) in found and allowed & found[(r, system)][1]
            ),
            None,
        )
        if hit is None:
            if category in claimed:
                results.append(ComparisonResult(category=category, outcome="no_record", system=system))
        else:
            results.append(
                ComparisonResult(
                    category=category, outcome="confirmed", system=system, registry=hit[0], import_id=hit[1]
                )
            )
    opened = _opened(case)
    return HardshipCompared(case_id=case.case_id, student_id=opened["student_id"], results=results)


def assess(case: CaseView, q: Questionnaire, policy: HardshipPolicy, sealer: Sealer) -> HardshipAssessed:
    opened = _open_case(case)
    result = score(q, policy)
    secret = {"answers": q.model_dump(mode="json"), "explanation": result.explanation()}
    return HardshipAssessed(
        case_id=case.case_id,
        student_id=opened["student_id"],
        policy_version=result.policy_version,
        score=result.score,
        suggested_level=result.suggested_level,  # type: ignore[arg-type]
        sealed=sealer.seal(secret, f"HardshipAssessed:{case.case_id}"),
    )


def record_review(case: CaseView, r: Review, sealer: Sealer) -> HardshipReviewRecorded:
    opened = _open_case(case)
    if r.kind == "democratic_review" and r.method != "class_vote":
        raise DomainError("BAD_REVIEW_METHOD", "a democratic review is a class vote")
    if r.kind == "investigation" and r.method == "class_vote":
        raise DomainError(
            "BAD_REVIEW_METHOD", "an investigation is a home visit, interview, phone call or data analysis"
        )
    review_id = str(uuid.uuid4())
    return HardshipReviewRecorded(
        case_id=case.case_id,
        student_id=opened["student_id"],
        review_id=review_id,
        kind=r.kind,
        proposed_level=r.proposed_level,
        sealed=sealer.seal(r.model_dump(mode="json"), f"HardshipReviewRecorded:{review_id}"),
    )


@dataclass(frozen=True)
class RuleLevel:
    level: str
    why: str


def rule_level(case: CaseView, categories: Iterable[int]) -> RuleLevel:
    """The level the records give (第十二条): categories 1-6 especially difficult; otherwise the
    questionnaire's suggestion (at least difficult for an accepted category 7 or 8); without
    either, not difficult. Pre-school: 附件1's tiers (Ⅰ档 for 1-6, Ⅱ档 for other hardship)."""
    cats = set(categories)
    opened = _opened(case)
    if cats & ESPECIALLY_DIFFICULT:
        return RuleLevel("especially_difficult", f"categories {sorted(cats & ESPECIALLY_DIFFICULT)} (1-6)")
    suggested = case.assessment["suggested_level"] if case.assessment else None
    if opened["stage"] == "preschool" and cats:
        return RuleLevel("difficult", "pre-school tier II (other hardship)")
    if cats:
        level = suggested if suggested is not None and LEVEL_RANK[suggested] > 1 else "difficult"
        return RuleLevel(
            level,
            f"categories {sorted(cats)} (7-8)"
            + (f", questionnaire suggests {suggested}" if suggested else ""),
        )
    if suggested is not None:
        return RuleLevel(
            suggested, f"questionnaire score {case.assessment['score'] if case.assessment else ''}"
        )
    return RuleLevel("not_difficult", "no category and no assessment")


def methods_of(case: CaseView) -> list[str]:
    out = set()
    if any(r["outcome"] == "confirmed" for r in case.comparisons):
        out.add("information_comparison")
    school = case.school_methods()
    names = {
        "quantitative_assessment": "quantitative_assessment",
        "democratic_review": "school_review",
        "investigation": "school_investigation",
    }
    out.update(names[m] for m in school)
    return sorted(out)


def determine_case(
    case: CaseView, cmd: DetermineCase, policy: HardshipPolicy, sealer: Sealer, today: date
) -> HardshipDetermined:
    opened = _open_case(case)
    first, second = semesters_of(opened["school_year"])
    if cmd.effective_semester not in (first, second):
        raise DomainError("SEMESTER_OUTSIDE_YEAR", f"the school year's semesters are {first} and {second}")
    if case.current is None:
        if cmd.trigger != "initial":
            raise Conflict("NOT_DETERMINED_YET", "the first determination has trigger 'initial'")
    else:
        if cmd.trigger == "initial":
            raise Conflict(
                "ALREADY_DETERMINED", "re-assessment: say why (trigger semester_review or family_change)"
            )
        if cmd.trigger == "family_change" and not case.change_pending():
            raise Conflict("NO_CHANGE_REPORTED", "report the family's change first")
        if not cmd.reason:
            raise DomainError("REASON_REQUIRED", "a re-assessment needs a written reason")
    confirmed = {int(r["category"]) for r in case.comparisons if r["outcome"] == "confirmed"}
    claimed = {int(c["category"]) for c in opened["claims"]} | confirmed
    accepted = set(cmd.categories)
    if accepted - claimed:
        raise DomainError(
            "CATEGORY_NOT_CLAIMED",
            f"categories {sorted(accepted - claimed)} were neither claimed nor found by comparison",
        )
    school = case.school_methods()
    unsupported = sorted(c for c in accepted - confirmed if not school)
    if unsupported:
        raise DomainError(
            "CATEGORY_NOT_ESTABLISHED",
            f"categories {unsupported} have no registry record: the school decides by its own "
            "methods (assessment, democratic review, investigation); record one first",
        )
    rules = policy.stages[opened["stage"]]
    missing = [m for m in rules.required if m not in school]
    if "quantitative_assessment" in missing and accepted and accepted <= confirmed:
        missing.remove("quantitative_assessment")  # registry-confirmed: comparison is the main method
    if missing and cmd.level != "not_difficult":
        raise DomainError("METHOD_REQUIRED", f"{opened['stage']}: a determination needs {missing}")
    base = rule_level(case, accepted)
    if cmd.level != base.level:
        proposed = [r for r in case.reviews if r.get("proposed_level") == cmd.level]
        if not cmd.reason or not proposed:
            raise DomainError(
                "LEVEL_CHANGE_NEEDS_REASON",
                f"the records give {base.level} ({base.why}); another level needs a written "
                "reason and a democratic review or investigation that proposed it",
            )
    if cmd.effective_month is not None:
        start = semester_start(cmd.effective_semester)
        if cmd.effective_month < start:
            raise DomainError("BAD_EFFECTIVE_MONTH", f"{cmd.effective_semester} starts in {start}")
    determination_id = str(uuid.uuid4())
    secret = {
        "reason": cmd.reason,
        "rule_level": base.level,
        "rule_why": base.why,
        "determined_on": today.isoformat(),
    }
    return HardshipDetermined(
        determination_id=determination_id,
        student_id=opened["student_id"],
        school_id=opened["school_id"],
        level=cmd.level,
        categories=sorted(accepted),
        effective_semester=cmd.effective_semester,
        methods=methods_of(case) or ["school_review"],
        effective_month=cmd.effective_month,
        case_id=case.case_id,
        school_year=opened["school_year"],
        stage=opened["stage"],
        trigger=cmd.trigger,
        sealed=sealer.seal(secret, f"HardshipDetermined:{determination_id}"),
    )


def report_change(case: CaseView, cmd: ReportChange, sealer: Sealer) -> HardshipChangeReported:
    opened = _open_case(case)
    return HardshipChangeReported(
        case_id=case.case_id,
        student_id=opened["student_id"],
        reported_on=cmd.reported_on.isoformat(),
        sealed=sealer.seal(
            {"description": cmd.description}, f"HardshipChangeReported:{case.case_id}:{len(case.changes)}"
        ),
    )


def publish_notice(
    cmd: PublishNotice, school_id: str, year: SchoolYearView, cases: list[CaseView], policy: HardshipPolicy
) -> HardshipNoticePublished:
    """The notice lists the cases determined since their last notice (not revoked)."""
    if year.notice is None:
        raise Conflict("NOTICE_NOT_ISSUED", "issue the advance notice of the school year first")
    if year.archived is not None:
        raise Conflict("ARCHIVED", "the school year is archived")
    due = sorted(
        (c.case_id, c.current["determination_id"])
        for c in cases
        if c.current is not None and c.revoked is None and not _noticed_since(c, year)
    )
    if not due:
        raise Conflict("NOTHING_TO_NOTICE", "no determination waits for a public notice")
    until = date.fromordinal(cmd.published_on.toordinal() + policy.objection_days - 1)
    return HardshipNoticePublished(
        notice_id=f"P.{school_id}.{cmd.school_year}.{len(year.publications) + 1}",
        school_id=school_id,
        school_year=cmd.school_year,
        case_ids=[c for c, _ in due],
        determination_ids=[d for _, d in due],
        published_on=cmd.published_on.isoformat(),
        objections_until=until.isoformat(),
    )


def _noticed_since(case: CaseView, year: SchoolYearView) -> bool:
    """The case's current determination was in a public notice."""
    current = case.current
    return current is not None and any(
        current["determination_id"] in p.get("determination_ids", ()) for p in year.publications
    )


def file_objection(
    case: CaseView, cmd: FileObjection, year: SchoolYearView, sealer: Sealer
) -> HardshipObjectionFiled:
    opened = _open_case(case)
    publication = next((p for p in year.publications if p["notice_id"] == cmd.notice_id), None)
    if publication is None or case.case_id not in publication["case_ids"]:
        raise NotFound("NOT_IN_NOTICE", "this case is not in that public notice")
    filed = cmd.filed_on.isoformat()
    if not publication["published_on"] <= filed <= publication["objections_until"]:
        raise DomainError(
            "OBJECTION_PERIOD_OVER",
            f"objections run from {publication['published_on']} to {publication['objections_until']}",
        )
    objection_id = str(uuid.uuid4())
    return HardshipObjectionFiled(
        objection_id=objection_id,
        case_id=case.case_id,
        student_id=opened["student_id"],
        notice_id=cmd.notice_id,
        filed_on=filed,
        sealed=sealer.seal({"text": cmd.text}, f"HardshipObjectionFiled:{objection_id}"),
    )


def review_objection(
    case: CaseView, objection_id: str, cmd: ReviewObjection, sealer: Sealer, today: date
) -> list[HardshipObjectionReviewed | HardshipDetermined]:
    opened = _open_case(case)
    objection = case.objections.get(objection_id)
    if objection is None:
        raise NotFound("UNKNOWN_OBJECTION", "no such objection on this case")
    if objection["outcome"] is not None:
        raise Conflict("ALREADY_REVIEWED", "this objection was reviewed")
    current = case.current
    out: list[HardshipObjectionReviewed | HardshipDetermined] = []
    determination_id = None
    if cmd.outcome == "upheld":
        if cmd.level is None or current is None:
            raise DomainError("LEVEL_REQUIRED", "an upheld objection sets the level the review found")
        determination_id = str(uuid.uuid4())
        semester = cmd.effective_semester or current["effective_semester"]
        out.append(
            HardshipDetermined(
                determination_id=determination_id,
                student_id=opened["student_id"],
                school_id=opened["school_id"],
                level=cmd.level,
                categories=list(current["categories"]) if cmd.level != "not_difficult" else [],
                effective_semester=semester,
                methods=sorted(set(current.get("methods") or []) | {"school_review"}),
                case_id=case.case_id,
                school_year=opened["school_year"],
                stage=opened["stage"],
                trigger="objection",
                sealed=sealer.seal(
                    {"reason": cmd.reason, "determined_on": today.isoformat()},
                    f"HardshipDetermined:{determination_id}",
                ),
            )
        )
    out.insert(
        0,
        HardshipObjectionReviewed(
            objection_id=objection_id,
            case_id=case.case_id,
            student_id=opened["student_id"],
            outcome=cmd.outcome,
            sealed=sealer.seal({"reason": cmd.reason}, f"HardshipObjectionReviewed:{objection_id}"),
            determination_id=determination_id,
        ),
    )
    return out


def archive(
    school_id: str, school_year: str, archived_on: date, year: SchoolYearView, cases: list[CaseView]
) -> HardshipArchived:
    if year.archived is not None:
        raise Conflict("ARCHIVED", "the school year is archived already")
    if not year.publications:
        raise Conflict("NOT_NOTICED", "publish the public notice first")
    day = archived_on.isoformat()
    if any(day <= p["objections_until"] for p in year.publications):
        raise Conflict("OBJECTION_PERIOD_OPEN", "archive after the objection period has ended")
    open_objections = sorted(
        c.case_id for c in cases if any(o["outcome"] is None for o in c.objections.values())
    )
    if open_objections:
        raise Conflict("OBJECTIONS_OPEN", f"{len(open_objections)} objection(s) wait for review")
    waiting = [
        c.case_id
        for c in cases
        if c.current is not None and c.revoked is None and not _noticed_since(c, year)
    ]
    if waiting:
        raise Conflict("NOT_NOTICED", f"{len(waiting)} determination(s) were not in a public notice")
    determined = sorted(c.case_id for c in cases if c.current is not None)
    return HardshipArchived(
        archive_id=f"A.{school_id}.{school_year}",
        school_id=school_id,
        school_year=school_year,
        case_ids=determined,
        archived_on=day,
    )


def revoke_case(case: CaseView, cmd: Revoke, policy: HardshipPolicy, today: date) -> HardshipRevoked:
    """Aid stops from the month after ``found_on``; the amount to recover is the aid of the
    policy's amounts for the months (or semesters, for yearly aid) the status was in force."""
    opened = _open_case(case)
    if cmd.found_on > today:
        raise DomainError(
            "FOUND_IN_FUTURE", "found_on is the day the false information was found: not later than today"
        )
    current = case.current
    if current is None or current["level"] == "not_difficult":
        raise Conflict("NOT_DETERMINED", "there is no hardship status to revoke")
    if case.revoked is not None:
        raise Conflict("ALREADY_REVOKED", "the status was revoked already")
    stop = next_month(cmd.found_on)
    start = min(
        d.get("effective_month") or semester_start(d["effective_semester"])
        for d in case.determinations
        if d["level"] != "not_difficult"
    )
    rules = policy.stages[opened["stage"]]
    months: list[str] = []
    amount = 0
    month = start
    while month < stop:
        y, m = int(month[:4]), int(month[5:])
        level = _level_in(case, month) or ""
        if level in rules.aid_yuan_per_month and m in rules.aid_months:
            months.append(month)
            amount += rules.aid_yuan_per_month[level]
        elif level in rules.aid_yuan_per_year and m in (9, 3):
            months.append(month)
            amount += rules.aid_yuan_per_year[level] // 2
        month = f"{y + 1}-01" if m == 12 else f"{y}-{m + 1:02d}"
    return HardshipRevoked(
        determination_id=current["determination_id"],
        student_id=opened["student_id"],
        effective_semester=current["effective_semester"],
        reason=cmd.reason,
        effective_month=stop,
        case_id=case.case_id,
        revoked_on=cmd.found_on.isoformat(),
        recover_yuan=amount,
        recover_months=months,
    )


def _level_in(case: CaseView, month: str) -> str | None:
    current = [
        (d.get("effective_month") or semester_start(d["effective_semester"]), d["seq"], d["level"])
        for d in case.determinations
    ]
    before = [c for c in current if c[0] <= month]
    return max(before)[2] if before else None


def _opened(case: CaseView) -> dict[str, Any]:
    if case.opened is None:
        raise NotFound("UNKNOWN_CASE", f"no case {case.case_id}")
    return case.opened


def _open_case(case: CaseView) -> dict[str, Any]:
    opened = _opened(case)
    if case.revoked is not None:
        raise Conflict("REVOKED", "the case was revoked for false information")
    return opened
