"""One calendar: every place that derives a semester from a day agrees with
:func:`contracts.calendar.semester_of` (February and August belong to the semester that starts
next; capture runs at a semester's start), one test per place."""

from __future__ import annotations

from datetime import date, datetime

import pytest

import contracts.calendar as contract_calendar
from contracts import Actor, build_envelope
from contracts.events import CaptureRejected, CaptureVerified, StudentEnrolled
from services.eligibility.domain import calendar as elig_calendar
from services.enrolment import commands as enrol_cmd
from services.enrolment import domain as enrol
from services.spotcheck import domain as spot
from tests.eligibility.elig_builders import Log, at, status
from tests.unit.test_service_domains import PHOTO, opening, registered_view

T = datetime.fromisoformat


@pytest.mark.parametrize(("day", "semester"), [
    (date(2026, 8, 1), "2026-autumn"),
    (date(2026, 8, 31), "2026-autumn"),
    (date(2026, 9, 1), "2026-autumn"),
    (date(2027, 1, 31), "2026-autumn"),
    (date(2027, 2, 1), "2027-spring"),
    (date(2027, 2, 28), "2027-spring"),
    (date(2027, 7, 31), "2027-spring"),
])
def test_contracts_semester_of_february_and_august_belong_to_the_next_semester(day: date,
                                                                                semester: str) -> None:
    assert contract_calendar.semester_of(day) == semester


def test_contracts_semester_of_an_instant_is_read_in_shanghai() -> None:
    assert contract_calendar.semester_of(T("2027-01-31T16:30:00Z")) == "2027-spring"  # Feb 1, 00:30
    assert contract_calendar.semester_of(T("2026-07-31T16:30:00Z")) == "2026-autumn"  # Aug 1, 00:30


def test_eligibility_uses_the_contracts_calendar() -> None:
    assert elig_calendar.semester_of is contract_calendar.semester_of
    assert elig_calendar.semester_of_month("2027-02") == "2027-spring"
    assert elig_calendar.semester_of_month("2026-08") == "2026-autumn"
    assert elig_calendar.semester_of_month("2027-01") == "2026-autumn"
    assert elig_calendar.semester_start("2027-spring") == "2027-02"
    assert elig_calendar.semester_start("2026-autumn") == "2026-08"


@pytest.mark.parametrize("text", ["26-autumn", "2026-summer", "2026", "２０２６-autumn"])
def test_both_calendars_refuse_the_same_semester_ids(text: str) -> None:
    with pytest.raises(ValueError):
        contract_calendar.parse_semester(text)
    with pytest.raises(elig_calendar.CalendarError):
        elig_calendar.parse_semester(text)


def _verdict(cls: type, when: str, **extra: object) -> object:
    base = dict(capture_id="c1", student_id="A0001", school_id="SC1", purpose="enrolment", channel="terminal",
                quality={}, liveness={}, model_version="m")
    base.update(extra)
    return build_envelope(cls(**base), stream="capture-c1", actor=Actor(kind="service", id="facematch"),
                          occurred_at=T(when))


def test_enrolment_a_february_capture_is_filed_under_the_spring_semester() -> None:
    verified = enrol.enrolment_outcome(_verdict(CaptureVerified, "2027-02-20T10:00+08:00",  # type: ignore[arg-type]
                                                distance=0.3, threshold=0.6))
    provisional = enrol.enrolment_outcome(_verdict(CaptureRejected, "2027-02-20T10:00+08:00",  # type: ignore[arg-type]
                                                   reasons=["NO_MATCH"]))
    august = enrol.enrolment_outcome(_verdict(CaptureVerified, "2026-08-28T10:00+08:00",  # type: ignore[arg-type]
                                              distance=0.3, threshold=0.6))
    assert verified is not None and verified.semester == "2027-spring"
    assert provisional is not None and provisional.semester == "2027-spring"
    assert august is not None and august.semester == "2026-autumn"


def test_enrolment_evidence_filed_in_february_is_filed_under_the_spring_semester() -> None:
    command = enrol_cmd.FileEvidence.model_validate({"student_id": "A0001", "evidence_photo": PHOTO})
    february = T("2027-02-25T10:00+08:00")
    filed = enrol.file_evidence(registered_view("provisional"), command, "blob:e", february)
    assert filed.semester == "2027-spring"


def test_spotcheck_a_check_opened_in_february_belongs_to_the_spring_semester() -> None:
    day = "2027-02-24T{}+08:00".format
    command = opening(opens_at=day("10:00:00"), closes_at=day("15:00:00"))
    opened = spot.open_check(command, "province", T(day("09:00:00")))
    assert (opened.semester, opened.month) == ("2027-spring", "2027-02")
    command = opening(opens_at="2026-08-26T10:00:00+08:00", closes_at="2026-08-26T15:00:00+08:00")
    assert spot.open_check(command, "province", T("2026-08-26T09:00:00+08:00")).semester == "2026-autumn"


def test_eligibility_counts_a_february_provisional_enrolment_for_the_semester_it_is_filed_under() -> None:
    log = Log()
    log.registered("S1", when="2026-09-01")
    log.hardship("S1", semester="2026-autumn")
    result = _verdict(CaptureRejected, "2027-02-20T10:00+08:00", student_id="S1", reasons=["NO_MATCH"])
    outcome = enrol.enrolment_outcome(result)  # type: ignore[arg-type]
    assert isinstance(outcome, StudentEnrolled)
    log.add(outcome, at("2027-02-20", 10), "student-S1")
    log.routine_checks("2027-spring")
    st = status(log, "S1", "2027-spring")
    assert st["participation"]["status"] == "provisional"
    assert all(m["status"] != "not_enrolled_in_time" for m in st["months"])
