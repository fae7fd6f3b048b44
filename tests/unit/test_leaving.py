"""Issue 9: a student leaves school (StudentLeft), and the 15-day filing reading on the spotcheck
side (eligibility's side: tests/eligibility/test_elig_rules.py), on plain data."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pydantic import ValidationError

import contracts.events as ev
from backbone.errors import DomainError
from contracts import Actor, build_envelope
from contracts.students import StudentView, student_view
from services.enrolment import commands as enrol_cmd
from services.enrolment import domain as enrol
from services.spotcheck import commands as spot_cmd
from services.spotcheck import domain as spot
from services.spotcheck import internships
from services.spotcheck.commands import FileInternshipPlan

TODAY = date(2026, 11, 26)
ACTOR = Actor(kind="school", id="school:SC1", school="SC1")


def registered(student_id: str = "A0001") -> ev.StudentRegistered:
    return ev.StudentRegistered(
        student_id=student_id, school=ev.SchoolRef(school_id="SC1", city="驻马店市", county="驿城区"),
        name_masked="张*", id_number_hash="h", id_number_masked="110105********002X", grade=2,
        class_name="会计2班", major="会计", enrolment_year=2025, enrolment_season="autumn", proposed_aid=True)


def view(*events: ev.Event) -> StudentView:
    return student_view("A0001", [build_envelope(e, stream="student-A0001", actor=ACTOR)
                                  for e in (registered(), *events)])


def leaving(**over: object) -> enrol_cmd.RecordLeaving:
    body: dict[str, object] = {"reason": "withdrawn", "left_on": "2026-11-05"}
    body.update(over)
    return enrol_cmd.RecordLeaving.model_validate(body, strict=False)


def test_a_leaving_is_an_event_with_reason_day_and_destination() -> None:
    event = enrol.record_leaving(view(), leaving(reason="transferred", to_school_id="SC2"), TODAY)
    assert event == ev.StudentLeft(student_id="A0001", school_id="SC1", reason="transferred",
                                   left_on="2026-11-05", to_school_id="SC2")
    assert enrol.aid_stops_from(event.left_on) == "2026-12"
    assert enrol.aid_stops_from("2026-12-31") == "2027-01"
    left = view(event)
    assert left.has_left and left.left == event


@pytest.mark.parametrize(("before", "command", "code"), [
    ((), {"left_on": "2026-11-27"}, "BAD_DATE"),  # tomorrow
    ((), {"to_school_id": "SC2"}, "BAD_FIELD"),  # a destination for a withdrawal
    ((), {"reason": "transferred", "to_school_id": "SC1"}, "SAME_SCHOOL"),
    ((ev.StudentLeft(student_id="A0001", school_id="SC1", reason="graduated", left_on="2026-07-01"),), {},
     "ALREADY_LEFT"),
])
def test_refusals(before: tuple[ev.Event, ...], command: dict[str, object], code: str) -> None:
    with pytest.raises(DomainError) as err:
        enrol.record_leaving(view(*before), leaving(**command), TODAY)
    assert err.value.code == code
    assert err.value.status == (409 if code == "ALREADY_LEFT" else 422)


def test_an_unknown_student_is_404() -> None:
    with pytest.raises(DomainError) as err:
        enrol.record_leaving(StudentView("Z9"), leaving(), TODAY)
    assert (err.value.status, err.value.code) == (404, "UNKNOWN_STUDENT")


def test_today_is_a_valid_leaving_day_and_the_reason_is_one_of_three() -> None:
    assert enrol.record_leaving(view(), leaving(left_on=TODAY.isoformat()), TODAY).left_on == "2026-11-26"
    with pytest.raises(ValidationError):
        leaving(reason="expelled")


def test_a_student_who_left_is_not_captured_again() -> None:
    left = view(ev.StudentLeft(student_id="A0001", school_id="SC1", reason="withdrawn", left_on="2026-11-05"))
    with pytest.raises(DomainError) as err:
        enrol.check_capture(left, enrol.Station(school_id="SC1", terminal_id="T1"))
    assert (err.value.status, err.value.code) == (409, "STUDENT_LEFT")
    with pytest.raises(DomainError) as err:
        enrol.check_evidence(left)
    assert err.value.code == "STUDENT_LEFT"


# --------------------------------------------------------------------------- the 15-day reading


@pytest.mark.parametrize(("filed_on", "late"), [
    ("2026-08-18", True),   # 14 days before departure: fewer than 15, late
    ("2026-08-17", False),  # 15 days
    ("2026-08-16", False),  # 16 days
    ("2026-05-01", False),  # months ahead
    ("2026-09-01", True),   # on the day
])
def test_a_plan_filed_fewer_than_fifteen_days_before_departure_is_late(filed_on: str, late: bool) -> None:
    starts = date(2026, 9, 1)
    assert internships.filed_late(starts, date.fromisoformat(filed_on)) is late
    command = FileInternshipPlan(student_id="A0001", kind="shadowing", starts_on=starts,
                                 ends_on=date(2026, 11, 30), education_filed_on=date(2026, 5, 1),
                                 aid_authority_filed_on=date.fromisoformat(filed_on))
    event, warnings = internships.file_plan(command, view(), TODAY)
    assert event.filed_late is late
    assert bool(warnings) is late


# --------------------------------------------------------------------------- spotcheck: after the leaving day


def check_on(day: str, kind: str = "routine", students: list[str] | None = None) -> spot.CheckView:
    opened = ev.CheckOpened(check_id="C1", kind=kind, semester="2026-autumn", month=day[:7],  # type: ignore[arg-type]
                            opens_at=f"{day}T10:00:00+08:00", closes_at=f"{day}T15:00:00+08:00",
                            initiated_by="province", student_ids=students)
    return spot.CheckView("C1", opened=opened)


def enrolled_left(left_on: str) -> StudentView:
    student = view(ev.StudentEnrolled(student_id="A0001", school_id="SC1", semester="2026-autumn",
                                      mode="verified", capture_id="c"),
                   ev.StudentLeft(student_id="A0001", school_id="SC1", reason="withdrawn", left_on=left_on))
    return student


def test_a_student_who_left_takes_no_part_in_later_checks() -> None:
    at = datetime.fromisoformat("2026-11-12T11:00:00+08:00")
    capture = spot_cmd.SubmitCapture.model_validate({"student_id": "A0001", "frames": ["AAAA"]}, strict=False)
    absence = spot_cmd.MarkAbsence.model_validate({"student_id": "A0001", "reason": "leave"}, strict=False)
    device = spot.Device("terminal", "T1")
    for action in (lambda s: spot.submit_capture(check_on("2026-11-12"), capture, s, device, ["blob:x"], at),
                   lambda s: spot.mark_absence(check_on("2026-11-12"), absence, s, at)):
        with pytest.raises(DomainError) as err:
            action(enrolled_left("2026-11-11"))
        assert (err.value.status, err.value.code) == (409, "STUDENT_LEFT")
        action(enrolled_left("2026-11-12"))  # left on the check day: still takes part
    targeted = check_on("2026-11-12", "targeted", ["A0001"])
    assert targeted.opened is not None
    with pytest.raises(DomainError) as err:
        spot.require_targets(targeted.opened, {"A0001": enrolled_left("2026-11-01")}, {})
    assert err.value.code == "STUDENT_LEFT"
