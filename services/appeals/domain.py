"""Appeals (申诉) as the offices work them (DOMAIN.md §2, seed 十.4):

1. **Objections** (异议): the school's aid office records each student's written objection to a
   published month with the day it was received. It must come within the window: by the
   ``N``-th working day (policy: 5) after the school published the month's results
   (MonthResultsPublished), counted with the one working-day calendar
   (:mod:`contracts.workdays`: holidays and swapped working days). A late objection is refused,
   naming the window's last day; a day after today is refused; a year the calendar lacks is
   an error, never a weekday count.
2. **Filing**: one per school and month, gathering that month's objections into a formal
   letter (公函) to the school's same-level authority (同级资助管理部门), generated as a PDF to
   print, sign and stamp; the signed scan is attached afterwards.
3. **Rulings**: the authority of the school's level and area rules on each student, approved or
   rejected with a reason, within the month the filing was made; at that month's end the
   filing's students not ruled are closed as unhandled (当月未予处理): their original status
   stands. A ruling after that is refused.

All events of a school's month live in one stream (:func:`month_stream`), so the one filing,
the rulings and the closing are decided under optimistic concurrency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from backbone.errors import Conflict, DomainError, Forbidden, NotFound
from contracts.calendar import local_date
from contracts.envelope import Envelope
from contracts.events import (
    AppealClosedUnhandled,
    AppealFiled,
    AppealLetterSigned,
    AppealResolved,
    AppealStudent,
    AuthorityLevel,
    ObjectionRecorded,
    SchoolRegistered,
    StudentRegistered,
)
from contracts.workdays import WorkCalendar, WorkCalendarError, objection_window_end

OBJECTION_WORKING_DAYS = 5
"""The seed: 在结果生成的5个工作日内 (the eligibility policy file holds the same number)."""


class Unprocessable(DomainError):
    status = 422


class Unavailable(DomainError):
    status = 503


def filing_id_of(school_id: str, month: str) -> str:
    """One filing per school and month: its id says which."""
    return f"{school_id}-{month}"


def month_stream(school_id: str, month: str) -> str:
    """The stream of a school's month of appeals: objections, the filing, the signed scan,
    the rulings and the closing."""
    return f"appeals-{filing_id_of(school_id, month)}"


def legacy_stream(appeal_id: str) -> str:
    """The stream of a v1 appeal (one student, filed before filings existed)."""
    return f"appeal-{appeal_id}"


@dataclass
class MonthAppeals:
    """A school's month of appeals, folded from its stream (or a v1 appeal's)."""

    objections: list[ObjectionRecorded] = field(default_factory=list)
    filed: AppealFiled | None = None
    filed_at: str | None = None  # the local day of the filing event's occurred_at
    scan_ref: str | None = None
    rulings: dict[str, AppealResolved] = field(default_factory=dict)
    closed: AppealClosedUnhandled | None = None
    version: int = 0

    def unruled(self) -> list[str]:
        """Students of the filing without a ruling."""
        if self.filed is None:
            return []
        return [s.student_id for s in self.filed.students if s.student_id not in self.rulings]


def month_appeals(events: Iterable[Envelope]) -> MonthAppeals:
    state = MonthAppeals()
    for e in events:
        state.version = max(state.version, e.stream_version)
        p = e.payload
        if e.type == "ObjectionRecorded":
            state.objections.append(ObjectionRecorded(**p))
        elif e.type == "AppealFiled":
            state.filed = AppealFiled(**{**p, "students": [AppealStudent(**s) for s in p["students"]]})
            state.filed_at = local_date(e.occurred_at).isoformat()
        elif e.type == "AppealLetterSigned":
            state.scan_ref = p["scan_ref"]
        elif e.type == "AppealResolved":
            state.rulings[p["student_id"]] = AppealResolved(**p)
        elif e.type == "AppealClosedUnhandled":
            state.closed = AppealClosedUnhandled(**p)
    return state


# --------------------------------------------------------------------------- objections


def window_end(calendar: WorkCalendar, published_on: date,
               working_days: int = OBJECTION_WORKING_DAYS) -> date:
    try:
        return objection_window_end(calendar, published_on, working_days)
    except WorkCalendarError as exc:
        raise Unavailable("CALENDAR_YEAR_MISSING", str(exc)) from None


def record_objection(state: MonthAppeals, *, objection_id: str, student_id: str, school_id: str, month: str,
                     received_on: date, reason: str, published_on: str | None, today: date,
                     calendar: WorkCalendar, working_days: int = OBJECTION_WORKING_DAYS) -> ObjectionRecorded:
    """An objection received on ``received_on``, checked against the window now."""
    if published_on is None:
        raise Conflict("RESULTS_NOT_PUBLISHED",
                       f"the {month} results of this school are not published: there is nothing to object to")
    if received_on > today:
        raise Unprocessable("RECEIVED_IN_FUTURE",
                            f"an objection cannot have been received after today ({today.isoformat()})")
    published = date.fromisoformat(published_on)
    if received_on < published:
        raise Unprocessable("RECEIVED_BEFORE_PUBLICATION",
                            f"the {month} results were published on {published_on}, after {received_on}")
    end = window_end(calendar, published, working_days)
    if received_on > end:
        raise Unprocessable("OBJECTION_LATE",
                            f"the objection window of the {month} results (published {published_on}) ended on"
                            f" {end.isoformat()}, the {working_days}th working day after publication;"
                            " late objections are not handled (逾期不再处理)")
    if state.filed is not None:
        raise Conflict("ALREADY_FILED", f"the {month} appeal of this school was filed already;"
                                        " objections can no longer be added")
    return ObjectionRecorded(objection_id=objection_id, student_id=student_id, school_id=school_id,
                             month=month,
                             received_on=received_on.isoformat(), reason=reason, published_on=published_on,
                             window_ends_on=end.isoformat(), working_days=working_days)


# --------------------------------------------------------------------------- the filing


def file_month(state: MonthAppeals, *, school: SchoolRegistered, month: str, today: date,
               students: Mapping[str, StudentRegistered | None], letter_ref: str) -> AppealFiled:
    """The one filing of the school's month, listing each student once: the earliest day one of
    their objections was received, every objection's id and their reasons."""
    if state.filed is not None:
        raise Conflict("ALREADY_FILED", f"the {month} appeal of this school was filed already")
    if not state.objections:
        raise Conflict("NO_OBJECTIONS", f"no objection to the {month} results is recorded: nothing to file")
    rows = []
    for student_id in sorted({o.student_id for o in state.objections}):
        mine = sorted((o for o in state.objections if o.student_id == student_id),
                      key=lambda o: (o.received_on, o.objection_id))
        reg = students.get(student_id)
        rows.append(AppealStudent(
            student_id=student_id, objected_on=mine[0].received_on,
            objection_ids=[o.objection_id for o in mine],
            reason="；".join(dict.fromkeys(o.reason for o in mine)),
            class_name=reg.class_name if reg is not None else None,
            name_masked=reg.name_masked if reg is not None else None))
    return AppealFiled(filing_id=filing_id_of(school.school_id, month), school_id=school.school_id,
                       month=month,
                       students=rows, letter_ref=letter_ref, filed_on=today.isoformat(),
                       authority_level=school.administered_by, city=school.city, county=school.county)


def letter_students(state: MonthAppeals,
                    students: Mapping[str, StudentRegistered | None]) -> list[AppealStudent]:
    """What the letter lists (the same rows the filing will carry), before the filing exists."""
    placeholder = SchoolRegistered(school_id="-", name="-", city="-", county="-", administered_by="county")
    return file_month(state, school=placeholder, month="-", today=date(2000, 1, 1), students=students,
                      letter_ref="-").students


LEVEL_ZH: dict[str, str] = {"county": "县级", "city": "市级", "province": "省级"}


@dataclass(frozen=True)
class Letter:
    """The formal letter's content (公函); :mod:`services.appeals.letter` sets it as a PDF."""

    title: str
    lines: list[str]
    header: list[str]
    rows: list[list[str]]
    footer: list[str]


def letter(school: SchoolRegistered, month: str, students: list[AppealStudent], today: date) -> Letter:
    """The letter: school, month, each student with class and MASKED name, the day the objection
    was received and the reason; no ID number, no full name."""
    year, mm = month.split("-")
    level = LEVEL_ZH.get(school.administered_by, "")
    where = {"county": f"{school.city}{school.county}", "city": school.city, "province": "省"}.get(
        school.administered_by, "")
    rows = [[str(i), s.class_name or "", s.name_masked or "", s.objected_on]
            for i, s in enumerate(students, 1)]
    reasons = [f"{i}. {s.name_masked or s.student_id}：{s.reason or ''}" for i, s in enumerate(students, 1)]
    return Letter(
        title=f"关于{school.name}{year}年{int(mm)}月例行抽查结果申诉的函",
        lines=[f"{where}{level}学生资助管理部门：",
               f"我校已于校内公布{year}年{int(mm)}月例行抽查结果。下列{len(students)}名学生在结果公布后5个工作日内"
               "以书面材料向学校资助管理中心提出异议，经学校核实，现对其缺席情况提出申诉，请予审核。",
               "名单如下："],
        header=["序号", "班级", "姓名", "异议提交日期"],
        rows=rows,
        footer=["申诉理由：", *reasons, "",
                f"学校：{school.name}（学校代码 {school.school_id}）",
                "学校资助管理中心（盖章）            负责人签字：",
                f"日期：{today.year}年{today.month}月{today.day}日"],
    )


def attach_scan(state: MonthAppeals, scan_ref: str) -> AppealLetterSigned:
    filed = state.filed
    if filed is None:
        raise NotFound("UNKNOWN_FILING", "no such filing")
    if state.scan_ref is not None:
        raise Conflict("ALREADY_SIGNED", f"the signed letter of filing {filed.filing_id} is attached already")
    return AppealLetterSigned(filing_id=filed.filing_id, school_id=filed.school_id, month=filed.month,
                              scan_ref=scan_ref)


# --------------------------------------------------------------------------- rulings


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def rule(state: MonthAppeals, *, student_id: str, decision: str, reason: str, level: str,
         school_level: AuthorityLevel, today: date) -> AppealResolved:
    """The ruling of an authority of ``level`` (area checked by the caller) on one student."""
    filed = state.filed
    if filed is None:
        raise NotFound("UNKNOWN_FILING", "no such filing")
    ruling_level = filed.authority_level or school_level
    if level != ruling_level:
        raise Forbidden("NOT_SAME_LEVEL", f"this filing is ruled by the {ruling_level} authority")
    if student_id not in {s.student_id for s in filed.students}:
        raise NotFound("NOT_IN_FILING", f"student {student_id} is not in filing {filed.filing_id}")
    if student_id in state.rulings:
        raise Conflict("ALREADY_RULED", f"student {student_id} of filing {filed.filing_id} was"
                                        f" {state.rulings[student_id].decision} already")
    if state.closed is not None and student_id in state.closed.student_ids:
        raise Conflict("FILING_CLOSED", f"filing {filed.filing_id} was closed unhandled on"
                                        f" {state.closed.closed_on} (not ruled in the month it was filed"
                                        " in); the original status stands")
    filed_month = (filed.filed_on or (state.filed_at or "")[:10])[:7]
    if filed_month and month_of(today) != filed_month:
        raise Conflict("FILING_CLOSED", f"filing {filed.filing_id} was filed in {filed_month}; rulings are"
                                        " taken within that month (当月未予处理的申诉依然记为原有状态)")
    if decision not in ("approved", "rejected"):
        raise Unprocessable("BAD_DECISION", "decision is approved or rejected")
    return AppealResolved(appeal_id=filed.filing_id, student_id=student_id, month=filed.month,
                          decision=decision, decided_by=level, reason=reason)  # type: ignore[arg-type]


def close_unhandled(state: MonthAppeals, today: date) -> AppealClosedUnhandled | None:
    """At the end of the month a filing was filed in (so: on any day of a later month), its
    students without a ruling are closed as unhandled; None when there is nothing to close."""
    filed = state.filed
    if filed is None or state.closed is not None:
        return None
    filed_on = filed.filed_on or (state.filed_at or "")[:10]
    if not filed_on:
        return None
    filed_month = filed_on[:7]
    if month_of(today) <= filed_month:
        return None
    unruled = state.unruled()
    if not unruled:
        return None
    year, mm = (int(x) for x in filed_month.split("-"))
    last = date(year + (mm == 12), mm % 12 + 1, 1).toordinal() - 1
    return AppealClosedUnhandled(
        filing_id=filed.filing_id, school_id=filed.school_id, month=filed.month, student_ids=unruled,
        closed_on=date.fromordinal(last).isoformat(),
        reason=f"not ruled in {filed_month}, the month the filing was made (当月未予处理): the original"
               " status stands")
