"""The rules (DOMAIN.md §1-5 and the seed) applied to folded facts.

:func:`derive` turns one student's facts, the shared facts and the policy book into one
status per semester (a JSON-ready dict, schema ``contracts/schemas/eligibility-status.v1.json``).
It reads no clock: everything it decides follows from the events, so a replay, the live
projection and a shuffled replay agree. Undecidable things say so ("pending", "no_check").

Decisions taken where the rules were ambiguous (each one has a test in ``tests/eligibility``):

- *Taking part* in semester S: a verified or evidence-filed enrolment (once per school career)
  with ``occurred_at`` on or before S's capture deadline (end of Oct 20 / Apr 20, Shanghai);
  or a provisional enrolment for S itself, on or before the deadline. An enrolment in S after
  the deadline: every check month of S is "not_enrolled_in_time" (failed), also months before
  any check was held (the seed: 无法进入以后月份的例行抽查). No enrolment at all: months in
  which a check applied to the student are "not_enrolled_in_time"; months without a check stay
  "no_check". The next semester the late enrolment counts (its deadline is later).
- *Semesters of days*: one calendar, :func:`contracts.calendar.semester_of`; February and
  August (between the aid months) belong to the semester that starts next (capture runs at a
  semester's start): Feb 2027 -> 2027-spring, Aug 2026 -> 2026-autumn.
- A *check* without CheckClosed is still open: a student with no result yet is "pending".
  A capture counts when verified and *taken* within ``[opens_at, closes_at + grace]``: taken
  is the verdict's ``captured_at`` (copied by facematch from the CaptureSubmitted), or, for a
  verdict written before that field existed, its ``occurred_at`` (facematch's convention).
- *Verdict pending*: a spot-check capture submitted (``captured_at``) inside the window whose
  verdict (CaptureVerified or CaptureRejected) is not in the log leaves the check "pending"
  (reason ``verdict_pending``) after CheckClosed, not "failed", until the verdict comes.
- *Forced pass*: a ForcedPassRecorded with ``attempts`` below 3 (the seed: 反复三次确认后) is
  not counted by the fold (the service refuses it; the replay holds the rule too).
- *Several checks in a month*: passed only if each was passed, excused or force-passed.
- *Leave*: excused when ``reported_at <= opens_at + 2 h``; later, the check is failed.
  A leave does not excuse a *targeted* check (reason ``leave_in_targeted_check``): the seed
  lists the leave exception under 十 例行抽查异常处理 (routine checks only), and 十一 gives
  targeted checks none and makes their result override the month's routine one. An appeal
  of the month remains open. (Internships are still excused in targeted checks: open.)
- *Internship* (cognitive, shadowing): excused, unless the internship lasts 3+ full months
  (period from the AbsenceMarked fields, else from a plan covering the check day) and no
  InternshipPlanFiled covering the period was filed in time; then the check is failed
  (``unfiled_internship``, or ``internship_filed_late`` when a covering plan was filed late)
  and, if the month stays failed (no targeted pass, no approved appeal), all aid of the
  semester (grant and waiver) is suspended (the seed: 因未按要求备案而不通过抽查的，暂停享受本学期资助).
- *Filed in time* (issue 9, authoritative over the earlier reading "within the 15 days before"):
  the plan's ``filed_on`` (the later of its two filings) is 15 days or more before its
  ``starts_on`` (departure): ``starts_on - filed_on >= 15`` days. Filed 14 days before is late,
  15 or 16 days before is in time; filed months ahead is in time. The spotcheck service applies
  the same reading when it records ``filed_late`` (``services/spotcheck/internships.filed_late``);
  eligibility recomputes it from the dates (older events have no ``filed_late``).
- *Away on an internship* (InternshipDeparted, no InternshipReturned on or before the check
  day): a check the student did not pass while away is decided by the plan even without an
  AbsenceMarked (the departure the school recorded is the absence reason 学校在系统中标示):
  a plan that needs no filing or was filed in time excuses it (``cognitive_internship`` /
  ``shadowing_internship``); a plan filed late fails it with ``internship_filed_late`` (and the
  semester's suspension above). A leave marked for that check is decided as a leave. The
  return day itself is at school.
- *Leaving school* (StudentLeft: withdrawn, graduated, transferred; the seed says nothing, issue 9
  says "stops their aid from the next month"): the leaving month is the last month of aid;
  every aid month after it is withheld (rule ``left_school``). A check opened after the leaving
  day does not concern the student (result ``left``); a check month after the leaving month, or
  whose every check came after the leaving day, is ``left_school`` with outcome ``left``: it
  withholds no month up to the leaving month (not a failure) and waits for nothing (not
  pending), and for the waiver it is not a passed month (a student who leaves before three
  consecutive passed check months gets no waiver for the semester). Semesters that start
  after the leaving month are not derived (unless a national roster lists the student).
  Checks taken before the leaving day keep their results. The audit replay "as of" an instant
  before the StudentLeft was recorded shows the earlier status.
- *Targeted checks* replace the month's routine result, in both directions.
- *Appeals* apply to failed months: approved and in time => "passed_on_appeal". Late (objected
  after the 5th working day after the school's first MonthResultsPublished for the month, by
  the one working-day calendar, :mod:`contracts.workdays`), rejected, unresolved, closed
  unhandled at the end of its filing month (AppealClosedUnhandled), or (policy flag) resolved
  after the calendar month in which it was filed (当月未予处理) => the original result stands.
  A filing (AppealFiled v2) lists several students; each month's note names the filing and
  the ruling's (or closing's) event id.
- *Placement* (顶岗实习): ignored for grade < 2 or when never filed; in force from
  ``max(starts_on, filed_on)`` to ``ends_on`` (or PlacementEnded's ``ended_on``). Checks opened
  in that period are "placement" (out of checks, counts as passed); the grant is suspended for
  every aid month the period touches; the waiver goes on.
- *Grant*: withheld by the policy's table for each failed check month; also for no hardship
  determination in force (none, not_difficult, revoked), placement months, a suspension, or a
  roster mismatch. Months whose check month is pending or has had no check are "pending".
- *Hardship per month*: a HardshipDetermined/HardshipRevoked takes effect from its
  ``effective_month`` (the seed's adjustment during the year), else from the start of its
  ``effective_semester`` (Aug / Feb). Each aid month uses the determination in force in it
  (latest start on or before the month, then latest ``occurred_at``), so a change effective
  2026-11 pays October at the old level and November at the new. The semester's ``hardship``
  field shows the one in force in its last aid month.
- *Waiver*: granted once a run of N consecutive passed check months exists; denied when none
  can exist any more; otherwise pending.
- *Roster*: only once a complete import (all parts) exists for the semester; the latest complete
  import wins. A system student (registered, proposed for aid) missing from it, a listed student
  unknown to the system or not proposed for aid, and a student listed with another ID-number
  hash are all "on one list only": no aid for the semester.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from contracts.calendar import parse_month
from contracts.eligibility_status import SCHEMA_ID
from contracts.workdays import WorkCalendarError, objection_window_end
from services.eligibility.domain.calendar import (
    CalendarError,
    add_months,
    end_of_local_day,
    first_day,
    last_day,
    local_date,
    local_month,
    month_of_semester,
    parse_semester,
    semester_key,
    semester_of,
    semester_start,
)
from services.eligibility.domain.facts import (
    CheckFact,
    Ledger,
    SharedFacts,
    StudentFacts,
    captures_of,
)
from services.eligibility.domain.policy import GRANT_LEVELS, Policy, PolicyBook, SeasonRules

StudentStatus = dict[str, Any]
"""A status as the rules derive it: the JSON form of
:class:`contracts.eligibility_status.EligibilityStatus`."""

PASSING = ("passed", "forced_pass", "excused", "placement")
UNFILED_REASONS = ("unfiled_internship", "internship_filed_late")

# Precedence of withholding rules: the first one listed is the "reason" in summaries.
GRANT_RULES = ("left_school", "roster_mismatch", "unfiled_internship", "no_hardship_determination",
               "placement_internship", "failed_check_month")
_GRANT_ORDER = {rule: i for i, rule in enumerate(GRANT_RULES)}


def month_after(month: str) -> str:
    year, number = parse_month(month)
    return f"{year + (number == 12):04d}-{number % 12 + 1:02d}"


def filed_in_time(starts_on: str, filed_on: str, window_days: int) -> bool:
    """Was an internship plan filed ``window_days`` days or more before its departure? (False for
    unreadable dates.)"""
    try:
        return (date.fromisoformat(starts_on) - date.fromisoformat(filed_on)).days >= window_days
    except ValueError:
        return False


def derive_all(ledger: Ledger, book: PolicyBook,
               students: Collection[str] | None = None) -> Iterator[StudentStatus]:
    """Every status (of ``students`` only, when given), ordered by student id, then semester."""
    ids = ledger.student_ids()
    if students is not None:
        ids &= set(students)
    for student_id in sorted(ids):
        yield from derive(student_id, ledger.students.get(student_id), ledger.shared, book)


def derive(student_id: str, facts: StudentFacts | None, shared: SharedFacts,
           book: PolicyBook) -> list[StudentStatus]:
    """One status per semester the student is concerned by, in semester order."""
    student = _Student(student_id, facts, shared, book)
    return [student.semester_status(s) for s in student.semesters()]


def _ids(*groups: Iterable[str]) -> list[str]:
    return sorted(set().union(*groups))


def _semester_rules(roster: dict[str, Any], suspension: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The rules that withhold every aid of the semester (grant and waiver): a roster mismatch,
    a suspension for an unfiled internship."""
    rules: list[dict[str, Any]] = []
    if roster["status"] not in ("matched", "not_imported"):
        rules.append({"rule": "roster_mismatch", "month": None, "event_ids": roster["event_ids"]})
    if suspension is not None:
        rules.append({"rule": "unfiled_internship", "month": None, "event_ids": suspension["event_ids"]})
    return rules


def _valid_semester(semester: str) -> bool:
    try:
        parse_semester(semester)
    except CalendarError:
        return False
    return True


@lru_cache(maxsize=4096)
def _start_month(semester: str, effective_month: str | None) -> str | None:
    """When a hardship determination or revocation takes effect (``YYYY-MM``): its
    ``effective_month`` when valid, else the first month of its ``effective_semester``
    (:func:`semester_start`); None when neither is readable."""
    if effective_month:
        try:
            parse_month(effective_month)
        except ValueError:
            pass
        else:
            return effective_month
    return semester_start(semester) if _valid_semester(semester) else None


class _SemesterPlan(NamedTuple):
    """What a semester's status needs from the policy book alone, computed once per book."""

    policy: Policy
    rules: SeasonRules
    aid_months: tuple[str, ...]
    check_months: tuple[str, ...]
    deadline_month: str
    period: tuple[str, str]  # the first day of the first aid month, the last of the last (ISO)
    withheld: tuple[tuple[str, tuple[int, ...]], ...]  # (check month, aid month numbers), sorted


def _semester_plan(book: PolicyBook, semester: str) -> _SemesterPlan:
    key = ("semester-plan", semester)
    plan: _SemesterPlan | None = book.memo.get(key)
    if plan is not None:
        return plan
    year, season = parse_semester(semester)
    policy = book.policy_at(date(year, 9 if season == "autumn" else 3, 1))
    rules = policy.seasons[season]

    def month(m: int) -> str:
        return month_of_semester(semester, m, rules.first_month)

    aid_months = tuple(month(m) for m in rules.aid_months)
    plan = _SemesterPlan(
        policy, rules, aid_months, tuple(month(m) for m in rules.check_months),
        month(rules.capture_deadline[0]),
        (first_day(aid_months[0]).isoformat(), last_day(aid_months[-1]).isoformat()),
        tuple((month(number), withheld) for number, withheld in sorted(rules.withheld_when_failed.items())),
    )
    book.memo[key] = plan
    return plan


def _check_result(check_id: str, kind: str, result: str, reason: str | None,
                  event_ids: list[str]) -> dict[str, Any]:
    return {"check_id": check_id, "kind": kind, "result": result, "reason": reason, "event_ids": event_ids}


@dataclass(frozen=True)
class _Placement:
    placement_id: str
    starts_on: str
    ends_on: str
    start: date | None
    end: date | None
    ignored: str | None
    eids: tuple[str, ...]

    def covers(self, day: date) -> bool:
        return self.start is not None and self.end is not None and self.start <= day <= self.end

    def touches(self, first: date, last: date) -> bool:
        return self.start is not None and self.end is not None and self.start <= last and first <= self.end

    def to_dict(self) -> dict[str, Any]:
        return {
            "placement_id": self.placement_id, "starts_on": self.starts_on, "ends_on": self.ends_on,
            "in_force_from": self.start.isoformat() if self.start else None,
            "ignored": self.ignored, "event_ids": list(self.eids),
        }


class _Student:
    def __init__(self, student_id: str, facts: StudentFacts | None, shared: SharedFacts,
                 book: PolicyBook) -> None:
        self.sid = student_id
        self.facts = facts if facts is not None else StudentFacts()
        self.reg = self.facts.registration
        self.in_system = self.reg is not None and self.reg.proposed_aid
        self.shared = shared
        self.book = book
        school = self.reg.school_id if self.reg is not None else None
        self.checks = shared.checks_for(student_id, school) if self.in_system else []
        self._checks_by_month: dict[str, list[CheckFact]] | None = None
        self._hardship_memo: dict[str, dict[str, Any]] = {}
        leaving = self.facts.leaving
        self.left_on: date | None = None
        self.left_month: str | None = None
        self.left_eid: str | None = None
        if leaving is not None:
            try:
                self.left_on = date.fromisoformat(leaving.left_on)
            except ValueError:
                pass  # an unreadable day: the leaving is ignored
            else:
                self.left_month = f"{self.left_on.year:04d}-{self.left_on.month:02d}"
                self.left_eid = leaving.eid

    def _left_before(self, month: str) -> bool:
        """Had the student left school in a month before ``month``?"""
        return self.left_month is not None and self.left_month < month

    # ------------------------------------------------------------------ which semesters

    def semesters(self) -> list[str]:
        found: set[str] = set()
        if self.in_system and self.facts.first_registered_ts is not None:
            first = semester_of(local_date(self.facts.first_registered_ts))
            candidates = {first, *(c.semester for c in self.checks),
                          *(e.semester for e in self.facts.enrolments.values())}
            found = {s for s in candidates if _valid_semester(s) and semester_key(s) >= semester_key(first)}
            if self.left_on is not None:  # no semester that starts after the leaving month
                last = semester_key(semester_of(self.left_on))
                found = {s for s in found if semester_key(s) <= last}
        for semester in self.shared.roster_semesters():
            winner = self.shared.roster_winner(semester)
            if winner and _valid_semester(semester) and any(self.sid in p.entries for p in winner[1]):
                found.add(semester)
        return sorted(found, key=semester_key)

    # ------------------------------------------------------------------ one semester

    def semester_status(self, semester: str) -> StudentStatus:
        plan = _semester_plan(self.book, semester)
        policy, rules, aid_months = plan.policy, plan.rules, plan.aid_months
        period = plan.period
        placements = self._placements(policy)
        participation = self._participation(semester, plan.deadline_month, rules.capture_deadline[1])
        months = [self._month(m, participation, placements, policy) for m in plan.check_months]
        hardship = self._hardship_at(aid_months[-1])
        roster = self._roster(semester)

        suspension = None
        unfiled = [m for m in months if m["unfiled_internship"]]
        if unfiled:
            suspension = {"rule": "unfiled_internship", "months": [m["month"] for m in unfiled],
                          "event_ids": _ids(*(m["event_ids"] for m in unfiled))}

        by_month = {m["month"]: m for m in months}
        grant = [
            self._grant(aid, plan.withheld, by_month, placements, self._hardship_at(aid), roster, suspension)
            for aid in aid_months
        ]
        reg = self.reg
        return {
            "schema": SCHEMA_ID,
            "student_id": self.sid,
            "semester": semester,
            "school_id": reg.school_id if reg else None,
            "city": reg.city if reg else None,
            "county": reg.county if reg else None,
            "name_masked": reg.name_masked if reg else None,
            "grade": reg.grade if reg else None,
            "class_name": reg.class_name if reg else None,
            "policy_version": policy.version,
            "participation": participation,
            "hardship": hardship,
            "roster": roster,
            "placements": [p.to_dict() for p in placements
                           if p.starts_on <= period[1] and p.ends_on >= period[0]],
            "suspension": suspension,
            "months": [{k: v for k, v in m.items() if k != "unfiled_internship"} for m in months],
            "grant": grant,
            "grant_total_yuan": sum(g["amount_yuan"] or 0 for g in grant),
            "tuition_waiver": self._waiver(months, policy, roster, suspension),
        }

    # ------------------------------------------------------------------ §1 new capture

    def _participation(self, semester: str, deadline_month: str, deadline_dom: int) -> dict[str, Any]:
        if self.reg is None:
            return {"status": "not_registered", "deadline": None, "event_ids": []}
        if not self.reg.proposed_aid:
            return {"status": "not_proposed_for_aid", "deadline": None, "event_ids": [self.reg.eid]}
        memo = self.book.memo
        key = ("deadline", deadline_month, deadline_dom)
        found = memo.get(key)
        if found is None:
            day = first_day(deadline_month).replace(day=deadline_dom)
            found = memo[key] = (day, end_of_local_day(day))
        deadline, cutoff = found
        enrolments = sorted(self.facts.enrolments.values())
        permanent = [e for e in enrolments if e.mode in ("verified", "evidence_filed")]
        provisional = [e for e in enrolments if e.mode == "provisional" and e.semester == semester]
        base = {"deadline": deadline.isoformat()}
        in_time = [e for e in permanent if e.ts <= cutoff]
        if in_time:
            return {"status": "enrolled", **base, "event_ids": [in_time[0].eid]}
        in_time = [e for e in provisional if e.ts <= cutoff]
        if in_time:
            return {"status": "provisional", **base, "event_ids": [in_time[0].eid]}
        late = [e for e in permanent + provisional
                if e.semester == semester or semester_of(local_date(e.ts)) == semester]
        if late:
            return {"status": "not_enrolled_in_time", **base, "event_ids": _ids(e.eid for e in late)}
        return {"status": "not_enrolled", **base, "event_ids": []}

    # ------------------------------------------------------------------ §4 placement

    def _placements(self, policy: Policy) -> list[_Placement]:
        out: list[_Placement] = []
        changes = sorted(self.facts.placement_changes.values())
        for pid, p in sorted(self.facts.placements.items()):
            fields = {"starts_on": p.starts_on, "ends_on": p.ends_on, "filed_on": p.filed_on or "",
                      "grade": str(p.grade)}
            eids = [p.eid]
            for change in changes:
                if change.placement_id == pid:
                    eids.append(change.eid)
                    for key, value in change.changes:
                        fields["ends_on" if key == "ended_on" else key] = value
            ignored = None
            start = end = None
            try:
                starts, ends = date.fromisoformat(fields["starts_on"]), date.fromisoformat(fields["ends_on"])
                filed = date.fromisoformat(fields["filed_on"]) if fields["filed_on"] else None
                grade = int(fields["grade"])
            except ValueError:
                ignored = "invalid_dates"
            else:
                if grade < policy.placement_min_grade:
                    ignored = "first_year_not_allowed"
                elif filed is None:
                    ignored = "not_filed"
                elif ends < max(starts, filed):
                    ignored = "ended_before_start"
                else:
                    start, end = max(starts, filed), ends
            out.append(_Placement(pid, fields["starts_on"], fields["ends_on"], start, end, ignored,
                                  tuple(sorted(eids))))
        return out

    # ------------------------------------------------------------------ §2/§3 checks

    def _check(self, check: CheckFact, placements: list[_Placement], policy: Policy) -> dict[str, Any]:
        facts, cid, kind = self.facts, check.check_id, check.kind
        day = local_date(check.opens_ts)
        eids = [check.eid]
        if self.left_on is not None and day > self.left_on:
            assert self.left_eid is not None
            return _check_result(cid, kind, "left", None, _ids(eids, [self.left_eid]))
        for p in placements:
            if p.covers(day):
                return _check_result(cid, kind, "placement", None, _ids(eids, p.eids))
        rules = self.book.policy_at(day)
        captures = [c for c in captures_of(facts.captures.get(cid))
                    if check.opens_ts <= c.ts <= check.closes_ts + rules.capture_grace_seconds]
        if captures:
            first = captures[0].eid
            return _check_result(cid, kind, "passed", None, sorted({check.eid, first}))
        forced = facts.forced.get(cid)
        if forced is not None:
            return _check_result(cid, kind, "forced_pass", None, sorted({check.eid, forced.eid}))
        failure = "no_capture"
        absence = facts.absences.get(cid)
        away = self._away(day)
        if away is not None and (absence is None or absence.reason != "leave"):
            plan_id, plan = away
            eids.extend([plan.eid, facts.departures[plan_id].eid])
            if absence is not None:
                eids.append(absence.eid)
            if self._plan_in_time(plan, policy):
                return _check_result(cid, kind, "excused", f"{plan.kind}_internship", _ids(eids))
            failure = "internship_filed_late"
        elif absence is not None:
            eids.append(absence.eid)
            if absence.reason == "leave" and check.kind == "targeted":
                failure = "leave_in_targeted_check"
            elif absence.reason == "leave":
                if absence.reported_ts <= check.opens_ts + rules.leave_report_within.total_seconds():
                    return _check_result(cid, kind, "excused", "leave", _ids(eids))
                failure = "leave_reported_late"
            else:
                filed, plan_eids, late = self._internship_filed(absence.internship_starts_on,
                                                                absence.internship_ends_on, day, policy)
                eids.extend(plan_eids)
                if filed:
                    return _check_result(cid, kind, "excused", absence.reason, _ids(eids))
                failure = late
        closing = self.shared.closings.get(cid)
        if closing is None:
            return _check_result(cid, kind, "pending", failure, _ids(eids))
        awaiting = [s.eid for s in facts.submissions.values()
                    if s is not None and s.check_id == cid
                    and check.opens_ts <= s.captured_ts <= check.closes_ts + rules.capture_grace_seconds]
        if awaiting:
            return _check_result(cid, kind, "pending", "verdict_pending", _ids(eids, awaiting, [closing.eid]))
        return _check_result(cid, kind, "failed", failure, _ids(eids, [closing.eid]))

    def _away(self, day: date) -> tuple[str, Any] | None:
        """The internship plan the student was away on at ``day`` (departed on or before it, not
        returned on or before it), the latest departure first; None when at school."""
        away = []
        for plan_id, departure in self.facts.departures.items():
            plan = self.facts.plans.get(plan_id)
            back = self.facts.returns.get(plan_id)
            if plan is None or plan.kind not in ("cognitive", "shadowing"):
                continue
            if departure.day <= day.isoformat() and (back is None or back.day > day.isoformat()):
                away.append((departure.day, plan_id, plan))
        if not away:
            return None
        _, plan_id, plan = max(away)
        return plan_id, plan

    def _internship_notes(self, checks: list[CheckFact], results: list[dict[str, Any]],
                          policy: Policy) -> list[str]:
        """The month's explanation of each check failed for an internship filing (names no person)."""
        notes: list[str] = []
        if not any(r["reason"] in UNFILED_REASONS for r in results):
            return notes  # the common case: no internship failure, nothing to explain
        days = policy.internship_filing_window_days
        by_id = {c.check_id: c for c in checks}
        for r in results:
            check = by_id.get(r["check_id"])
            if r["result"] not in ("failed", "pending") or check is None:
                continue
            if r["reason"] == "internship_filed_late":
                away = self._away(local_date(check.opens_ts))
                if away is not None:
                    plan_id, plan = away
                    departed = self.facts.departures[plan_id].day
                    notes.append(f"check {check.check_id}: not passed while away on internship plan {plan_id}"
                                 f" (departed {departed}), filed on {plan.filed_on}, fewer than {days} days"
                                 f" before {plan.starts_on}: filed late (未按要求备案)")
                else:
                    notes.append(f"check {check.check_id}: absent for an internship of 3 full months or"
                                 f" more whose plan was filed fewer than {days} days before departure"
                                 " (未按要求备案)")
            elif r["reason"] == "unfiled_internship":
                notes.append(f"check {check.check_id}: absent for an internship of 3 full months or more"
                             " without a filed plan (未备案)")
        return notes

    @staticmethod
    def _plan_in_time(plan: Any, policy: Policy) -> bool:
        """No filing needed (shorter than the threshold), or filed in time (decisions above)."""
        try:
            start, end = date.fromisoformat(plan.starts_on), date.fromisoformat(plan.ends_on)
        except ValueError:
            return False
        if add_months(start, policy.internship_filing_from_full_months) - timedelta(days=1) > end:
            return True
        return filed_in_time(plan.starts_on, plan.filed_on, policy.internship_filing_window_days)

    def _internship_filed(self, starts_on: str | None, ends_on: str | None, day: date,
                          policy: Policy) -> tuple[bool, list[str], str]:
        """(True when the internship needs no filing or was filed as required, the plans' event
        ids, the failure: ``unfiled_internship`` or ``internship_filed_late``)."""
        plans = sorted(self.facts.plans.values())
        try:
            if starts_on and ends_on:
                start, end = date.fromisoformat(starts_on), date.fromisoformat(ends_on)
            else:
                covering = [p for p in plans if p.starts_on <= day.isoformat() <= p.ends_on]
                if not covering:
                    return True, [], ""  # period unknown: treated as a short internship
                first = covering[0]
                start, end = date.fromisoformat(first.starts_on), date.fromisoformat(first.ends_on)
        except ValueError:
            return True, [], ""
        if add_months(start, policy.internship_filing_from_full_months) - timedelta(days=1) > end:
            return True, [], ""  # shorter than the filing threshold
        covering = [p for p in plans if p.starts_on <= start.isoformat() and p.ends_on >= end.isoformat()]
        for plan in covering:
            if filed_in_time(start.isoformat(), plan.filed_on, policy.internship_filing_window_days):
                return True, [plan.eid], ""
        failure = "internship_filed_late" if covering else "unfiled_internship"
        return False, [p.eid for p in plans
                       if p.starts_on <= end.isoformat() and p.ends_on >= start.isoformat()], failure

    @staticmethod
    def _combine(results: list[dict[str, Any]]) -> tuple[str, str]:
        """(outcome, status) of a month from its checks' results (a check after the student left
        school counts for nothing)."""
        results = [r for r in results if r["result"] != "left"]
        if not results:
            return "no_check", "no_check"
        kinds = {r["result"] for r in results}
        if "failed" in kinds:
            return "failed", "failed"
        if "pending" in kinds:
            return "pending", "pending"
        if kinds == {"placement"}:
            return "passed", "placement_internship"
        for label in ("forced_pass", "excused"):
            if label in kinds:
                return "passed", label
        return "passed", "passed"

    def _month(self, month: str, participation: dict[str, Any], placements: list[_Placement],
               policy: Policy) -> dict[str, Any]:
        by_month = self._checks_by_month
        if by_month is None:
            by_month = self._checks_by_month = {}
            for c in self.checks:
                by_month.setdefault(c.month, []).append(c)
            for found in by_month.values():
                found.sort(key=lambda c: (c.opens_ts, c.check_id))
        in_month = by_month.get(month, [])
        routine = [self._check(c, placements, policy) for c in in_month if c.kind != "targeted"]
        targeted = [self._check(c, placements, policy) for c in in_month if c.kind == "targeted"]
        if self.left_month is not None and (self._left_before(month) or (
                month == self.left_month and in_month
                and all(r["result"] == "left" for r in routine + targeted))):
            assert self.left_eid is not None
            return {"month": month, "status": "left_school", "outcome": "left",
                    "provisional": participation["status"] == "provisional", "excuse": None, "replaced": None,
                    "notes": [], "checks": routine + targeted, "event_ids": [self.left_eid],
                    "unfiled_internship": False}
        targeted_taken = [r for r in targeted if r["result"] != "left"]
        span = (first_day(month), last_day(month))
        taking_part = participation["status"] in ("enrolled", "provisional")
        excuse = None
        if not taking_part and routine and all(r["result"] == "placement" for r in routine):
            outcome, status = "passed", "placement_internship"
        elif not taking_part and (routine or participation["status"] == "not_enrolled_in_time"):
            outcome, status = "failed", "not_enrolled_in_time"
            routine = [{**r, "result": "failed", "reason": "not_enrolled_in_time"}
                       if r["result"] not in ("placement", "left") else r for r in routine]
        else:
            outcome, status = self._combine(routine)
            if status == "no_check" and any(p.touches(*span) for p in placements):
                outcome, status = "passed", "placement_internship"
        event_ids = _ids(*(r["event_ids"] for r in routine))
        if status == "not_enrolled_in_time":
            event_ids = _ids(event_ids, participation["event_ids"])
        if status == "placement_internship":
            event_ids = _ids(event_ids, *(p.eids for p in placements if p.touches(*span)))
        decisive = routine
        replaced = None
        if targeted_taken:
            replaced = {"status": status, "outcome": outcome}
            outcome, _ = self._combine(targeted)
            status, decisive = "replaced_by_targeted", targeted_taken
            event_ids = _ids(*(r["event_ids"] for r in targeted_taken))
        notes, appeal_ids, approved = self._appeals(month)
        notes = self._internship_notes(in_month, routine + targeted, policy) + notes
        if appeal_ids:
            event_ids = _ids(event_ids, appeal_ids)
        if approved and outcome == "failed":
            replaced = {"status": status, "outcome": outcome}
            outcome, status = "passed", "passed_on_appeal"
        if outcome == "passed" and status != "passed_on_appeal":
            excuses = sorted({r["reason"] for r in decisive if r["result"] == "excused"})
            excuse = excuses[0] if excuses else None
        unfiled = outcome == "failed" and any(
            r["result"] == "failed" and r["reason"] in UNFILED_REASONS for r in decisive)
        return {
            "month": month,
            "status": status,
            "outcome": outcome,
            "provisional": participation["status"] == "provisional",
            "excuse": excuse,
            "replaced": replaced,
            "notes": notes,
            "checks": routine + targeted,
            "event_ids": event_ids,
            "unfiled_internship": unfiled,
        }

    # ------------------------------------------------------------------ appeals

    def _appeals(self, month: str) -> tuple[list[str], list[str], bool]:
        """The appeal filings naming the student for ``month`` (shared facts: one filing per
        school and month lists its students). Each note names the filing and, when there is one,
        the ruling's or the closing's event, so the explanation says what decided the month."""
        notes: list[str] = []
        eids: list[str] = []
        approved = False
        for filing_id, filing in self.shared.filings_of(self.sid, month):
            eids.append(filing.eid)
            resolution = self.facts.resolutions.get(filing_id)
            # The student's (current) school's publication: the same school that decides which
            # checks apply, so that a publication re-derives exactly that school's students.
            school = self.reg.school_id if self.reg is not None else filing.school_id
            publication = self.shared.publications.get((school, month))
            late = False
            if publication is not None:
                eids.append(publication.eid)
                try:
                    published = date.fromisoformat(publication.published_on)
                    objected = date.fromisoformat(filing.objected_on)
                except ValueError:
                    notes.append(f"appeal {filing_id}: invalid dates")
                    continue
                window = self.book.policy_at(published).appeal_objection_working_days
                try:
                    end = objection_window_end(self.book.calendar, published, window)
                except WorkCalendarError as exc:  # the appeals service checked it when recording
                    notes.append(f"appeal {filing_id}: window not re-checked ({exc})")
                else:
                    late = objected > end
                    if late:
                        notes.append(f"appeal {filing_id}: objection of {filing.objected_on} late (the window"
                                     f" ended {end.isoformat()}), not handled")
                        continue
            closed = self.shared.closed_for(filing_id, self.sid)
            if resolution is None:
                if closed is not None:
                    eids.append(closed.eid)
                    notes.append(f"appeal {filing_id}: not handled in the month it was filed in, closed"
                                 f" unhandled on {closed.closed_on} (event {closed.eid});"
                                 " original result stands")
                else:
                    notes.append(f"appeal {filing_id}: not handled, original result stands")
                continue
            eids.append(resolution.eid)
            policy = self.book.policy_at(local_date(filing.ts))
            by = f"the {resolution.decided_by} authority" if resolution.decided_by else "the authority"
            if resolution.decision != "approved":
                notes.append(f"appeal {filing_id}: rejected by {by} (ruling {resolution.eid})")
            elif policy.appeal_resolve_within_filing_month \
                    and local_month(resolution.ts) != local_month(filing.ts):
                notes.append(f"appeal {filing_id}: approved after the month it was filed in, not applied"
                             f" (ruling {resolution.eid})")
            else:
                notes.append(f"appeal {filing_id}: approved by {by} (ruling {resolution.eid})")
                approved = True
        return notes, eids, approved

    # ------------------------------------------------------------------ hardship, roster

    def _hardship_at(self, month: str) -> dict[str, Any]:
        """The determination in force in ``month``: the one with the latest start on or before it
        (then the latest recorded), unless revoked from a month on or before it."""
        found = self._hardship_memo.get(month)
        if found is None:
            found = self._hardship_memo[month] = self._hardship_in(month)
        return {**found, "event_ids": list(found["event_ids"])}  # a copy: statuses share no list

    def _hardship_in(self, month: str) -> dict[str, Any]:
        current = [(start, h.ts, h.eid, det_id, h)
                   for det_id, h in self.facts.hardship.items()
                   if (start := _start_month(h.semester, h.effective_month)) is not None and start <= month]
        if not current:
            return {"status": "none", "level": None, "determination_id": None, "event_ids": []}
        *_, det_id, det = max(current)
        revocation = self.facts.revocations.get(det_id)
        revoked_from = None if revocation is None \
            else _start_month(revocation.semester, revocation.effective_month)
        if revocation is not None and revoked_from is not None and revoked_from <= month:
            return {"status": "revoked", "level": det.level, "determination_id": det_id,
                    "event_ids": _ids([det.eid, revocation.eid])}
        status = "in_force" if det.level in GRANT_LEVELS else det.level
        return {"status": status, "level": det.level, "determination_id": det_id, "event_ids": [det.eid]}

    def _roster(self, semester: str) -> dict[str, Any]:
        winner = self.shared.roster_winner(semester)
        if winner is None:
            return {"status": "not_imported", "import_id": None, "event_ids": []}
        import_id, parts = winner
        eids = sorted(p.eid for p in parts)
        listed = next((p.entries[self.sid] for p in parts if self.sid in p.entries), None)
        if not self.in_system:
            status = "national_only" if listed is not None else "not_listed"
        elif listed is None:
            status = "system_only"
        elif self.reg is not None and listed != self.reg.id_number_hash:
            status = "id_mismatch"
        else:
            status = "matched"
        return {"status": status, "import_id": import_id, "event_ids": eids}

    # ------------------------------------------------------------------ §5 grant, waiver

    def _grant(self, aid_month: str, withheld_table: tuple[tuple[str, tuple[int, ...]], ...],
               by_month: dict[str, dict[str, Any]], placements: list[_Placement],
               hardship: dict[str, Any], roster: dict[str, Any],
               suspension: dict[str, Any] | None) -> dict[str, Any]:
        policy = self.book.policy_at(first_day(aid_month))
        pending: list[dict[str, Any]] = []
        governing: list[str] = []
        rules = _semester_rules(roster, suspension)
        if self._left_before(aid_month):
            assert self.left_eid is not None
            rules.insert(0, {"rule": "left_school", "month": self.left_month, "event_ids": [self.left_eid]})
        if hardship["status"] != "in_force":
            rules.append({"rule": "no_hardship_determination", "month": None,
                          "event_ids": hardship["event_ids"]})
        span = (first_day(aid_month), last_day(aid_month))
        touching = [p for p in placements if p.touches(*span)]
        if touching:
            rules.append({"rule": "placement_internship", "month": None,
                          "event_ids": _ids(*(p.eids for p in touching))})
        aid_number = int(aid_month[5:])
        for check_month, withheld in withheld_table:
            if aid_number not in withheld:
                continue
            result = by_month.get(check_month)
            if result is None:
                continue
            governing.extend(result["event_ids"])
            if result["outcome"] == "failed":
                rules.append({"rule": "failed_check_month", "month": check_month,
                              "event_ids": result["event_ids"]})
            elif result["outcome"] in ("pending", "no_check"):
                waits = "awaiting_check" if result["outcome"] == "no_check" else "check_pending"
                pending.append({"rule": waits, "month": check_month, "event_ids": result["event_ids"]})
        rules.sort(key=lambda r: _GRANT_ORDER[r["rule"]])
        if rules:
            decision, amount = "withheld", 0
        elif pending:
            decision, amount, rules = "pending", None, pending
        else:
            decision, amount = "granted", policy.grant_yuan_per_month[hardship["level"]]
        event_ids = _ids(*(r["event_ids"] for r in rules)) if rules \
            else _ids(governing, hardship["event_ids"])
        return {"month": aid_month, "decision": decision, "amount_yuan": amount,
                "policy_version": policy.version, "rules": rules, "event_ids": event_ids}

    @staticmethod
    def _waiver(months: list[dict[str, Any]], policy: Policy, roster: dict[str, Any],
                suspension: dict[str, Any] | None) -> dict[str, Any]:
        need = policy.min_consecutive_passed
        best = run = best_possible = possible = 0
        best_ids: list[str] = []
        run_ids: list[str] = []
        for m in months:
            outcome = m["outcome"]
            run = run + 1 if outcome == "passed" else 0
            run_ids = run_ids + m["event_ids"] if outcome == "passed" else []
            if run > best:
                best, best_ids = run, run_ids
            possible = possible + 1 if outcome not in ("failed", "left") else 0
            best_possible = max(best_possible, possible)
        rules = _semester_rules(roster, suspension)
        if best >= need:
            decision = "denied" if rules else "granted"
            event_ids = _ids(*(r["event_ids"] for r in rules)) if rules else _ids(best_ids)
        elif best_possible >= need:
            decision = "denied" if rules else "pending"
            event_ids = _ids(*(r["event_ids"] for r in rules), *(m["event_ids"] for m in months))
        else:
            failed = [m for m in months if m["outcome"] == "failed"]
            left = [m for m in months if m["outcome"] == "left"]
            if left:
                rules.append({"rule": "left_school", "month": left[0]["month"],
                              "event_ids": _ids(*(m["event_ids"] for m in left))})
            rules.append({"rule": "fewer_than_consecutive_passed", "month": None,
                          "event_ids": _ids(*(m["event_ids"] for m in failed + left))})
            decision = "denied"
            event_ids = _ids(*(r["event_ids"] for r in rules))
        return {"decision": decision, "required_consecutive": need, "longest_passed_run": best,
                "rules": rules, "event_ids": event_ids}
