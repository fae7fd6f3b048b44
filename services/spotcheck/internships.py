"""Internship plans (实习计划备案, 规程 十.2) and placement internships (顶岗实习, 规程 十二) as pure
rules over the log, and the filing table of Attachment 2 (附件2, 备案确认明细表).

- A plan is filed by the school for an external internship of 3 full months or more, with the
  same-level education department and with the aid authority, each on its day. The filing is
  complete on the later day; complete fewer than 15 days before departure it is accepted but
  recorded as late (``filed_late``), with a warning. The departure and the return are events of
  their own, so eligibility can tell a check failed while the student was away.
- A placement is confirmed at the school's terminal before the student leaves (离校前确认),
  not for a first-year student (refused, and the refusal recorded for audit); the school
  updates company, place, supervisor or dates, and ends it early. The supervisor's contact
  number is kept only masked.
- Attachment 2 lists a school's placements of a month in the seed's column order, names and ID
  numbers masked as published lists are (the registration holds only masked forms).

Streams are per school: ``internships-<school>`` and ``placements-<school>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from backbone.errors import Conflict, DomainError, NotFound
from backbone.xlsx import table_xlsx
from contracts.calendar import parse_month
from contracts.envelope import Envelope
from contracts.events import (
    InternshipDeparted,
    InternshipPlanFiled,
    InternshipReturned,
    PlacementConfirmed,
    PlacementEnded,
    PlacementRefused,
    PlacementUpdated,
    SchoolRegistered,
)
from contracts.readmodel import fold
from contracts.students import StudentView
from services.spotcheck.commands import ConfirmPlacement, EndPlacement, FileInternshipPlan, UpdatePlacement

FILING_FROM_FULL_MONTHS = 3
FILING_DAYS_BEFORE_DEPARTURE = 15
FIRST_YEAR = 1
SEASONS = {"autumn": "秋季", "spring": "春季"}
TITLE = "河南省中等职业学校顶岗实习免学费受助学生备案确认明细表"
# the seed's columns in order; the one the seed's table leaves unnamed between the company and
# the supervisor is the supervisor's contact (required by 十二.2), placed after the name
ATTACHMENT2_HEADER = (
    "序号", "学校名称", "学校所属市", "学校所属县", "学生姓名", "身份证号码", "全国学籍系统学号", "入学年份",
    "入学季节", "专业", "班级", "顶岗实习起始年月日", "顶岗实习结束年月日", "实习所在地", "实习所在公司",
    "学校实习负责人姓名", "学校实习负责人联系方式", "备注",
)


# ----------------------------------------------------------------------------- streams


def internships_stream(school_id: str) -> str:
    """A school's internship plans: filed, departed, returned."""
    return f"internships-{school_id}"


def placements_stream(school_id: str) -> str:
    """A school's placement internships: confirmed, refused, updated, ended."""
    return f"placements-{school_id}"


# ----------------------------------------------------------------------------- read models


@dataclass(frozen=True)
class Plan:
    filed: InternshipPlanFiled
    departed_on: str | None = None
    returned_on: str | None = None


@dataclass
class InternshipsView:
    school_id: str
    plans: dict[str, Plan] = field(default_factory=dict)
    version: int = 0

    def plan(self, plan_id: str) -> Plan:
        found = self.plans.get(plan_id)
        if found is None:
            raise NotFound("UNKNOWN_PLAN", f"no internship plan {plan_id} at school {self.school_id}")
        return found


def _set_plan(view: InternshipsView, plan_id: str, plan: Plan) -> InternshipsView:
    view.plans[plan_id] = plan  # in place: a school holds many plans
    return view


def internships_view(school_id: str, events: Iterable[Envelope]) -> InternshipsView:
    return fold(InternshipsView(school_id), events, {
        "InternshipPlanFiled": lambda v, p: _set_plan(v, p["plan_id"], Plan(InternshipPlanFiled(**p))),
        "InternshipDeparted": lambda v, p: _set_plan(
            v, p["plan_id"], replace(v.plan(p["plan_id"]), departed_on=p["departed_on"])),
        "InternshipReturned": lambda v, p: _set_plan(
            v, p["plan_id"], replace(v.plan(p["plan_id"]), returned_on=p["returned_on"])),
    })


@dataclass(frozen=True)
class Placement:
    confirmed: PlacementConfirmed
    ended_on: str | None = None

    @property
    def last_day(self) -> str:
        return self.ended_on or self.confirmed.ends_on


@dataclass
class PlacementsView:
    school_id: str
    placements: dict[str, Placement] = field(default_factory=dict)
    refusals: list[PlacementRefused] = field(default_factory=list)
    version: int = 0

    def placement(self, placement_id: str) -> Placement:
        found = self.placements.get(placement_id)
        if found is None:
            raise NotFound("UNKNOWN_PLACEMENT", f"no placement {placement_id} at school {self.school_id}")
        return found


def _confirmed(view: PlacementsView, p: dict[str, Any]) -> PlacementsView:
    view.placements[p["placement_id"]] = Placement(PlacementConfirmed(**p))
    return view


def _refused(view: PlacementsView, p: dict[str, Any]) -> PlacementsView:
    view.refusals.append(PlacementRefused(**p))
    return view


def _updated(view: PlacementsView, p: dict[str, Any]) -> PlacementsView:
    placement = view.placement(p["placement_id"])
    known = {k: v for k, v in p["changes"].items() if k in UPDATABLE}
    view.placements[p["placement_id"]] = replace(placement, confirmed=replace(placement.confirmed, **known))
    return view


def _ended(view: PlacementsView, p: dict[str, Any]) -> PlacementsView:
    placement = view.placement(p["placement_id"])
    view.placements[p["placement_id"]] = replace(placement, ended_on=p["ended_on"])
    return view


def placements_view(school_id: str, events: Iterable[Envelope]) -> PlacementsView:
    return fold(PlacementsView(school_id), events, {
        "PlacementConfirmed": _confirmed,
        "PlacementRefused": _refused,
        "PlacementUpdated": _updated,
        "PlacementEnded": _ended,
    })


# ----------------------------------------------------------------------------- rules


def add_months(day: date, months: int) -> date:
    """``day`` ``months`` later (the last day of the month when it has no such day)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(day.day, (following - timedelta(days=1)).day))


def full_months_at_least(starts_on: date, ends_on: date, months: int = FILING_FROM_FULL_MONTHS) -> bool:
    """Does ``starts_on``..``ends_on`` (both days included) span ``months`` full months or more?
    2026-09-01..2026-11-30 is 3 full months; ..2026-11-29 is not (as eligibility counts)."""
    return add_months(starts_on, months) - timedelta(days=1) <= ends_on


def filed_late(starts_on: date, filed_on: date) -> bool:
    """Was the filing complete fewer than 15 days before departure (or after it)?"""
    return (starts_on - filed_on).days < FILING_DAYS_BEFORE_DEPARTURE


def _student_school(student: StudentView) -> str:
    if student.registered is None:
        raise NotFound("UNKNOWN_STUDENT", f"no registered student {student.student_id}")
    return student.registered.school.school_id


def _not_after(day: date, today: date, what: str) -> None:
    if day > today:
        raise DomainError("BAD_DATE", f"{what} is in the future")


def file_plan(command: FileInternshipPlan, student: StudentView,
              today: date) -> tuple[InternshipPlanFiled, list[str]]:
    """The plan to record, and warnings (filed late)."""
    school_id = _student_school(student)
    if command.ends_on < command.starts_on:
        raise DomainError("BAD_PERIOD", "the internship ends on or after the day it starts")
    if not full_months_at_least(command.starts_on, command.ends_on):
        raise DomainError("PLAN_NOT_REQUIRED",
                          f"plans are filed for internships of {FILING_FROM_FULL_MONTHS} full months or more;"
                          " mark a shorter one as an absence reason")
    _not_after(command.education_filed_on, today, "education_filed_on")
    _not_after(command.aid_authority_filed_on, today, "aid_authority_filed_on")
    filed_on = max(command.education_filed_on, command.aid_authority_filed_on)
    late = filed_late(command.starts_on, filed_on)
    warnings = []
    if late:
        days = (command.starts_on - filed_on).days
        warnings.append(f"LATE_FILING: filed {days} day(s) before departure; the plan is filed"
                        f" {FILING_DAYS_BEFORE_DEPARTURE} days or more before it")
    event = InternshipPlanFiled(
        plan_id=str(uuid.uuid4()), student_id=student.student_id, school_id=school_id, kind=command.kind,
        starts_on=command.starts_on.isoformat(), ends_on=command.ends_on.isoformat(),
        filed_on=filed_on.isoformat(), education_filed_on=command.education_filed_on.isoformat(),
        aid_authority_filed_on=command.aid_authority_filed_on.isoformat(), filed_late=late)
    return event, warnings


def depart(plan: Plan, on: date, today: date) -> InternshipDeparted:
    _not_after(on, today, "the departure")
    if plan.departed_on is not None:
        raise Conflict("ALREADY_DEPARTED", f"the departure of plan {plan.filed.plan_id} is recorded already")
    if on > date.fromisoformat(plan.filed.ends_on):
        raise DomainError("BAD_DATE", "the departure is after the internship's end")
    return InternshipDeparted(plan_id=plan.filed.plan_id, student_id=plan.filed.student_id,
                              school_id=plan.filed.school_id, departed_on=on.isoformat())


def come_back(plan: Plan, on: date, today: date) -> InternshipReturned:
    _not_after(on, today, "the return")
    if plan.departed_on is None:
        raise Conflict("NOT_DEPARTED", f"plan {plan.filed.plan_id} has no departure recorded")
    if plan.returned_on is not None:
        raise Conflict("ALREADY_RETURNED", f"the return of plan {plan.filed.plan_id} is recorded already")
    if on < date.fromisoformat(plan.departed_on):
        raise DomainError("BAD_DATE", "the return is before the departure")
    return InternshipReturned(plan_id=plan.filed.plan_id, student_id=plan.filed.student_id,
                              school_id=plan.filed.school_id, returned_on=on.isoformat())


def mask_contact(contact: str) -> str:
    """``138****5678``: the first three and last four digits of a telephone number only."""
    digits = "".join(ch for ch in contact if ch.isdigit())
    if len(digits) >= 11:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * (len(digits) - 2) + digits[-2:]


def first_year_refusal() -> Conflict:
    return Conflict("FIRST_YEAR", "first-year students may not be confirmed for placement internships"
                                  " (教职成〔2016〕3号: 不得安排一年级在校学生顶岗实习);"
                                  " the refusal is recorded")


def confirm_placement(view: PlacementsView, command: ConfirmPlacement, student: StudentView,
                      terminal_id: str | None, today: date) -> PlacementConfirmed | PlacementRefused:
    """The confirmation to record, or, for a first-year student, the refusal to record (then
    answer :func:`first_year_refusal`)."""
    school_id = _student_school(student)
    registered = student.registered
    assert registered is not None  # _student_school refused an unregistered student
    placement_id = str(uuid.uuid4())
    if registered.grade <= FIRST_YEAR:
        return PlacementRefused(placement_id=placement_id, student_id=student.student_id, school_id=school_id,
                                grade=registered.grade, reason="FIRST_YEAR", refused_on=today.isoformat(),
                                terminal_id=terminal_id)
    if command.ends_on < command.starts_on:
        raise DomainError("BAD_PERIOD", "the placement ends on or after the day it starts")
    if command.starts_on < today:
        raise Conflict("PLACEMENT_STARTED", "a placement is confirmed before the student leaves (离校前确认)")
    for other in view.placements.values():
        if other.confirmed.student_id == student.student_id and other.confirmed.starts_on <= \
                command.ends_on.isoformat() and command.starts_on.isoformat() <= other.last_day:
            raise Conflict("PLACEMENT_OVERLAPS", f"the student has placement {other.confirmed.placement_id}"
                                                 " in that period")
    return PlacementConfirmed(
        placement_id=placement_id, student_id=student.student_id, school_id=school_id, grade=registered.grade,
        class_name=registered.class_name, company=command.company, location=command.location,
        supervisor=command.supervisor, supervisor_contact_masked=mask_contact(command.supervisor_contact),
        starts_on=command.starts_on.isoformat(), ends_on=command.ends_on.isoformat(),
        filed_on=today.isoformat(), remark=command.remark)


UPDATABLE = ("company", "location", "supervisor", "supervisor_contact_masked", "starts_on", "ends_on")


def update_placement(placement: Placement, command: UpdatePlacement) -> PlacementUpdated:
    if placement.ended_on is not None:
        raise Conflict("PLACEMENT_ENDED", f"placement {placement.confirmed.placement_id} has ended")
    changes: dict[str, str] = {}
    for key in ("company", "location", "supervisor"):
        value = getattr(command, key)
        if value is not None and value != getattr(placement.confirmed, key):
            changes[key] = value
    if command.supervisor_contact is not None:
        changes["supervisor_contact_masked"] = mask_contact(command.supervisor_contact)
    for key in ("starts_on", "ends_on"):
        day = getattr(command, key)
        if day is not None and day.isoformat() != getattr(placement.confirmed, key):
            changes[key] = day.isoformat()
    if not changes:
        raise DomainError("NO_CHANGES", "name at least one field that changes")
    starts = changes.get("starts_on", placement.confirmed.starts_on)
    if changes.get("ends_on", placement.confirmed.ends_on) < starts:
        raise DomainError("BAD_PERIOD", "the placement ends on or after the day it starts")
    return PlacementUpdated(placement_id=placement.confirmed.placement_id,
                            student_id=placement.confirmed.student_id, changes=changes)


def end_placement(placement: Placement, command: EndPlacement) -> PlacementEnded:
    """Ended early: before its planned end (the grant resumes after it, eligibility decides)."""
    confirmed = placement.confirmed
    if placement.ended_on is not None:
        raise Conflict("PLACEMENT_ENDED", f"placement {confirmed.placement_id} ended already")
    if command.ended_on.isoformat() >= confirmed.ends_on:
        raise DomainError("NOT_EARLY", f"the placement ends on {confirmed.ends_on} as planned;"
                                       " an early end is before that day")
    return PlacementEnded(placement_id=confirmed.placement_id, student_id=confirmed.student_id,
                          ended_on=command.ended_on.isoformat())


# ----------------------------------------------------------------------------- Attachment 2


def month_range(month: str) -> tuple[str, str]:
    try:
        year, number = parse_month(month)
    except ValueError:
        raise DomainError("BAD_MONTH", "month is YYYY-MM") from None
    first = date(year, number, 1)
    return first.isoformat(), (add_months(first, 1) - timedelta(days=1)).isoformat()


def placements_in(view: PlacementsView, month: str) -> list[Placement]:
    """The placements under way on some day of ``month`` (to their early end, if any), by start."""
    first, last = month_range(month)
    found = [p for p in view.placements.values()
             if p.confirmed.starts_on <= last and first <= p.last_day and p.confirmed.starts_on <= p.last_day]
    return sorted(found, key=lambda p: (p.confirmed.starts_on, p.confirmed.student_id,
                                        p.confirmed.placement_id))


def attachment2_rows(placements: Sequence[Placement], school: SchoolRegistered,
                     students: Mapping[str, StudentView]) -> list[list[str | int]]:
    """The rows of Attachment 2 in :data:`ATTACHMENT2_HEADER` order, masked as published."""
    rows: list[list[str | int]] = []
    for number, placement in enumerate(placements, start=1):
        c = placement.confirmed
        student = students.get(c.student_id)
        r = student.registered if student is not None else None
        rows.append([
            number, school.name, school.city, school.county,
            r.name_masked if r else "", r.id_number_masked if r else "", c.student_id,
            str(r.enrolment_year) if r else "", SEASONS.get(r.enrolment_season, "") if r else "",
            r.major if r else "", r.class_name if r else c.class_name,
            c.starts_on, placement.last_day, c.location, c.company, c.supervisor, c.supervisor_contact_masked,
            c.remark or "",
        ])
    return rows


def attachment2_filename(school_id: str, month: str) -> str:
    return f"附件2-顶岗实习备案确认明细表-{school_id}-{month}.xlsx"


def attachment2_xlsx(school: SchoolRegistered, month: str, rows: Sequence[Sequence[str | int]]) -> bytes:
    """The workbook: the title, the header row in the seed's order, then one row a placement."""
    return table_xlsx("附件2", f"{TITLE}（{school.name} {month}）", ATTACHMENT2_HEADER, rows)
