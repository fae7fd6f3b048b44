"""The internship and placement rules of spotcheck (services/spotcheck/internships.py): 3 full
months, the 15-day filing (late: accepted with a warning), departure and return, the first-year
refusal, updates, early ends, and Attachment 2's rows (masked) and workbook."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook

from backbone.errors import Conflict, DomainError
from contracts import events as ev
from contracts.students import StudentView
from services.spotcheck import internships as rules
from services.spotcheck.commands import ConfirmPlacement, EndPlacement, FileInternshipPlan, UpdatePlacement

TODAY = date(2026, 8, 20)
SCHOOL = ev.SchoolRegistered(school_id="SC1", name="驻马店财经学校", city="驻马店市", county="驿城区",
                             administered_by="city")


def student(grade: int = 2, student_id: str = "A0001") -> StudentView:
    return StudentView(student_id, ev.StudentRegistered(
        student_id=student_id, school=ev.SchoolRef(school_id="SC1", city="驻马店市", county="驿城区"),
        name_masked="张*", id_number_hash="h", id_number_masked="110101********001X", grade=grade,
        class_name="会计2班", major="会计", enrolment_year=2025, enrolment_season="autumn",
        proposed_aid=True))


def plan(starts: str = "2026-09-01", ends: str = "2026-11-30", education: str = "2026-08-10",
         aid: str = "2026-08-12") -> FileInternshipPlan:
    return FileInternshipPlan(student_id="A0001", kind="shadowing", starts_on=date.fromisoformat(starts),
                              ends_on=date.fromisoformat(ends),
                              education_filed_on=date.fromisoformat(education),
                              aid_authority_filed_on=date.fromisoformat(aid))


def placement(**over: object) -> ConfirmPlacement:
    body: dict[str, object] = {
        "student_id": "A0001", "company": "郑州宇通客车股份有限公司",
        "location": "河南省郑州市管城区宇通路6号",
        "supervisor": "李老师", "supervisor_contact": "13812345678", "starts_on": date(2026, 9, 1),
        "ends_on": date(2027, 1, 15)}
    body.update(over)
    return ConfirmPlacement.model_validate(body, strict=False)


@pytest.mark.parametrize(("starts", "ends", "full"), [
    ("2026-09-01", "2026-11-30", True), ("2026-09-01", "2026-11-29", False),
    ("2026-09-15", "2026-12-14", True), ("2026-09-15", "2026-12-13", False),
    ("2026-11-30", "2027-02-27", True), ("2026-11-30", "2027-02-26", False),
    ("2026-09-01", "2027-06-30", True),
])
def test_three_full_months(starts: str, ends: str, full: bool) -> None:
    assert rules.full_months_at_least(date.fromisoformat(starts), date.fromisoformat(ends)) is full


def test_a_plan_shorter_than_three_full_months_is_not_filed() -> None:
    with pytest.raises(DomainError) as err:
        rules.file_plan(plan(ends="2026-11-29"), student(), TODAY)
    assert err.value.code == "PLAN_NOT_REQUIRED"
    with pytest.raises(DomainError) as err:
        rules.file_plan(plan(ends="2026-08-31"), student(), TODAY)
    assert err.value.code == "BAD_PERIOD"


def test_both_filings_fifteen_days_before_departure_are_on_time() -> None:
    event, warnings = rules.file_plan(plan(education="2026-08-10", aid="2026-08-17"), student(), TODAY)
    assert (event.filed_on, event.filed_late, warnings) == ("2026-08-17", False, [])
    assert (event.education_filed_on, event.aid_authority_filed_on) == ("2026-08-10", "2026-08-17")
    assert (event.school_id, event.student_id, event.kind) == ("SC1", "A0001", "shadowing")


@pytest.mark.parametrize(("education", "aid", "days"), [
    ("2026-08-10", "2026-08-18", 14), ("2026-08-20", "2026-08-01", 12),
])
def test_a_filing_fewer_than_fifteen_days_before_departure_is_accepted_but_late(education: str, aid: str,
                                                                                 days: int) -> None:
    event, warnings = rules.file_plan(plan(education=education, aid=aid), student(), TODAY)
    assert event.filed_late is True
    assert len(warnings) == 1 and warnings[0].startswith("LATE_FILING") and f"{days} day" in warnings[0]
    assert rules.filed_late(date(2026, 9, 1), date(2026, 8, 17)) is False
    assert rules.filed_late(date(2026, 9, 1), date(2026, 9, 2)) is True  # after departure: late too


def test_a_filing_cannot_be_in_the_future() -> None:
    with pytest.raises(DomainError) as err:
        rules.file_plan(plan(aid="2026-08-21"), student(), TODAY)
    assert err.value.code == "BAD_DATE"


def test_departure_then_return() -> None:
    filed, _ = rules.file_plan(plan(), student(), TODAY)
    current = rules.Plan(filed)
    with pytest.raises(Conflict):
        rules.come_back(current, date(2026, 9, 2), date(2026, 9, 3))
    with pytest.raises(DomainError):
        rules.depart(current, date(2026, 9, 5), date(2026, 9, 3))  # not yet
    left = rules.depart(current, date(2026, 9, 1), date(2026, 9, 3))
    assert (left.plan_id, left.student_id, left.school_id, left.departed_on) == (
        filed.plan_id, "A0001", "SC1", "2026-09-01")
    current = rules.Plan(filed, departed_on=left.departed_on)
    with pytest.raises(Conflict):
        rules.depart(current, date(2026, 9, 1), date(2026, 9, 3))
    with pytest.raises(DomainError):
        rules.come_back(current, date(2026, 8, 31), date(2026, 12, 1))
    back = rules.come_back(current, date(2026, 11, 30), date(2026, 12, 1))
    assert back.returned_on == "2026-11-30"


def test_a_first_year_student_is_refused_and_the_refusal_is_an_event() -> None:
    view = rules.PlacementsView("SC1")
    refused = rules.confirm_placement(view, placement(), student(grade=1), "T1", TODAY)
    assert isinstance(refused, ev.PlacementRefused)
    assert (refused.reason, refused.grade, refused.terminal_id, refused.refused_on) == ("FIRST_YEAR", 1, "T1",
                                                                                        "2026-08-20")
    error = rules.first_year_refusal()
    assert (error.status, error.code) == (409, "FIRST_YEAR")


def test_a_placement_carries_the_registration_and_a_masked_contact() -> None:
    view = rules.PlacementsView("SC1")
    confirmed = rules.confirm_placement(view, placement(remark="首批"), student(), "T1", TODAY)
    assert isinstance(confirmed, ev.PlacementConfirmed)
    assert (confirmed.grade, confirmed.class_name, confirmed.school_id) == (2, "会计2班", "SC1")
    assert confirmed.supervisor_contact_masked == "138****5678"
    assert (confirmed.filed_on, confirmed.remark) == ("2026-08-20", "首批")
    view.placements[confirmed.placement_id] = rules.Placement(confirmed)
    with pytest.raises(Conflict) as err:
        rules.confirm_placement(view, placement(starts_on=date(2026, 12, 1)), student(), "T1", TODAY)
    assert err.value.code == "PLACEMENT_OVERLAPS"
    with pytest.raises(Conflict) as err:
        rules.confirm_placement(rules.PlacementsView("SC1"), placement(starts_on=date(2026, 8, 19)),
                                student(), "T1", TODAY)
    assert err.value.code == "PLACEMENT_STARTED"


def test_update_and_early_end() -> None:
    confirmed = rules.confirm_placement(rules.PlacementsView("SC1"), placement(), student(), "T1", TODAY)
    assert isinstance(confirmed, ev.PlacementConfirmed)
    current = rules.Placement(confirmed)
    update = rules.update_placement(current, UpdatePlacement(company="新公司",
                                                             supervisor_contact="0396-1234567"))
    assert update.changes == {"company": "新公司", "supervisor_contact_masked": "039****4567"}
    with pytest.raises(DomainError):
        rules.update_placement(current, UpdatePlacement(company=confirmed.company))
    with pytest.raises(DomainError):
        rules.update_placement(current, UpdatePlacement(ends_on=date(2026, 8, 1)))
    with pytest.raises(DomainError) as err:
        rules.end_placement(current, EndPlacement(ended_on=date(2027, 1, 15)))
    assert err.value.code == "NOT_EARLY"
    ended = rules.end_placement(current, EndPlacement(ended_on=date(2026, 10, 31)))
    assert (ended.placement_id, ended.ended_on) == (confirmed.placement_id, "2026-10-31")
    with pytest.raises(Conflict):
        rules.end_placement(rules.Placement(confirmed, "2026-10-31"),
                            EndPlacement(ended_on=date(2026, 10, 1)))


def test_attachment2_lists_the_month_in_the_seed_order_masked() -> None:
    view = rules.PlacementsView("SC1")
    confirmed = rules.confirm_placement(view, placement(), student(), "T1", TODAY)
    assert isinstance(confirmed, ev.PlacementConfirmed)
    view.placements[confirmed.placement_id] = rules.Placement(confirmed, ended_on="2026-10-31")
    assert rules.placements_in(view, "2026-08") == [] and rules.placements_in(view, "2026-11") == []
    listed = rules.placements_in(view, "2026-10")
    rows = rules.attachment2_rows(listed, SCHOOL, {"A0001": student()})
    assert rows == [[1, "驻马店财经学校", "驻马店市", "驿城区", "张*", "110101********001X", "A0001",
                     "2025", "秋季", "会计", "会计2班", "2026-09-01", "2026-10-31",
                     "河南省郑州市管城区宇通路6号", "郑州宇通客车股份有限公司", "李老师", "138****5678", ""]]
    book = load_workbook(io.BytesIO(rules.attachment2_xlsx(SCHOOL, "2026-10", rows)))
    values = list(book.active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert values[1] == rules.ATTACHMENT2_HEADER
    assert values[2][5] == "110101********001X" and len(values) == 3
