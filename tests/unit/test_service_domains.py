"""Rules of the entry services (registration, new capture, checks, appeals, hardship), on plain
data: one test per rule, with the error code a user sees."""

from __future__ import annotations

from datetime import datetime

import pytest

from backbone.errors import DomainError
from contracts import Actor, build_envelope
from contracts.events import CaptureRejected, CaptureVerified, StudentEnrolled
from contracts.identity import check_digit
from services.appeals import domain as appeals
from services.enrolment import domain as enrol
from services.hardship import domain as hardship
from services.spotcheck import domain as spot

KEY = b"k"
T = datetime.fromisoformat


def idn(seq: int = 1) -> str:
    first = f"41010220070307{seq:03d}"
    return first + check_digit(first)


def registration(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "student_id": "A0001", "name": "王小明", "id_number": idn(), "grade": 2, "class_name": "会计2班",
        "major": "会计", "enrolment_year": 2025, "enrolment_season": "秋季",
        "school": {"school_id": "SC1", "city": "驻马店市", "county": "驿城区"},
    }
    body.update(over)
    return body


def registered_view() -> enrol.StudentView:
    event = enrol.register(registration(), KEY, enrol.StudentView("A0001"))
    return enrol.student_view("A0001", [build_envelope(event, stream="student-A0001",
                                                      actor=Actor(kind="school", id="x"))])


def test_registration_keeps_only_hash_and_masked_id_number() -> None:
    event = enrol.register(registration(), KEY, enrol.StudentView("A0001"))
    assert idn() not in str(event.to_payload())
    assert event.id_number_masked == idn()[:6] + "********" + idn()[-4:]
    assert event.name_masked == "王**" and event.enrolment_season == "autumn"


@pytest.mark.parametrize("over, code", [
    ({"id_number": "410102200703070010"}, "INVALID_ID_NUMBER"),
    ({"student_id": "a b"}, "BAD_STUDENT_NUMBER"),
    ({"grade": 7}, "BAD_FIELD"),
    ({"enrolment_season": "summer"}, "BAD_FIELD"),
    ({"major": ""}, "MISSING_FIELD"),
])
def test_bad_registrations_are_refused_with_a_code(over: dict[str, object], code: str) -> None:
    with pytest.raises(DomainError) as info:
        enrol.register(registration(**over), KEY, enrol.StudentView("A0001"))
    assert info.value.code == code


def test_a_student_is_registered_once() -> None:
    with pytest.raises(DomainError) as info:
        enrol.register(registration(), KEY, registered_view())
    assert info.value.code == "ALREADY_REGISTERED"


@pytest.mark.parametrize("school, channel, terminal, code", [
    ("SC2", "terminal", "T1", "WRONG_SCHOOL"),
    ("SC1", "app", None, "TERMINAL_REQUIRED"),
])
def test_new_capture_needs_the_right_school_and_a_terminal(school: str, channel: str, terminal: str | None,
                                                           code: str) -> None:
    with pytest.raises(DomainError) as info:
        enrol.submit_enrolment(registered_view(), school, channel, ["blob:x"], "blob:y", terminal, T("2026-09-10T10:00+08:00"))
    assert info.value.code == code


def test_unknown_student_cannot_be_captured() -> None:
    with pytest.raises(DomainError) as info:
        enrol.submit_enrolment(enrol.StudentView("NOPE"), "SC1", "terminal", ["blob:x"], "blob:y", "T1",
                               T("2026-09-10T10:00+08:00"))
    assert info.value.code == "UNKNOWN_STUDENT"


def _result(cls: type, **extra: object) -> object:
    base = dict(capture_id="c1", student_id="A0001", school_id="SC1", purpose="enrolment", channel="terminal",
                quality={}, liveness={}, model_version="m")
    base.update(extra)
    return build_envelope(cls(**base), stream="capture-c1", actor=Actor(kind="service", id="facematch"),
                          occurred_at=T("2026-10-10T10:00+08:00"))


def test_verified_enrolment_capture_enrols_the_student() -> None:
    out = enrol.enrolment_outcome(_result(CaptureVerified, distance=0.3, threshold=0.6))  # type: ignore[arg-type]
    assert isinstance(out, StudentEnrolled) and out.mode == "verified" and out.semester == "2026-autumn"


def test_identity_not_confirmed_gives_a_provisional_enrolment_for_this_semester() -> None:
    out = enrol.enrolment_outcome(_result(CaptureRejected, reasons=["NO_MATCH"]))  # type: ignore[arg-type]
    assert out is not None and out.mode == "provisional"


@pytest.mark.parametrize("reasons", [["NO_FACE"], ["ID_PHOTO_UNUSABLE", "NO_FACE"], ["NO_MATCH", "DUPLICATE_IDENTITY"]])
def test_an_unusable_capture_enrols_nobody(reasons: list[str]) -> None:
    assert enrol.enrolment_outcome(_result(CaptureRejected, reasons=reasons)) is None  # type: ignore[arg-type]


def open_body(**over: object) -> dict[str, object]:
    body: dict[str, object] = {"opens_at": "2026-10-22T10:00:00+08:00", "closes_at": "2026-10-22T15:00:00+08:00",
                               "school_ids": ["SC1"]}
    body.update(over)
    return body


@pytest.mark.parametrize("over", [
    {"opens_at": "2026-10-22T09:59:00+08:00"},
    {"closes_at": "2026-10-22T15:01:00+08:00"},
    {"closes_at": "2026-10-23T12:00:00+08:00"},
    {"opens_at": "2026-10-22T14:00:00+08:00", "closes_at": "2026-10-22T13:00:00+08:00"},
])
def test_a_check_runs_within_10_and_15_oclock_for_at_most_5_hours(over: dict[str, object]) -> None:
    with pytest.raises(DomainError) as info:
        spot.open_check(open_body(**over))
    assert info.value.code == "BAD_WINDOW"


def test_a_targeted_check_is_started_by_the_province_for_named_students() -> None:
    with pytest.raises(DomainError):
        spot.open_check(open_body(kind="targeted", initiated_by="city", student_ids=["A0001"]))
    with pytest.raises(DomainError):
        spot.open_check(open_body(kind="targeted"))
    check = spot.open_check(open_body(kind="targeted", student_ids=["A0001"]))
    assert check.month == "2026-10" and check.semester == "2026-autumn"


def check_view() -> spot.CheckView:
    opened = spot.open_check(open_body(check_id="k1"))
    return spot.check_view("k1", [build_envelope(opened, stream="check-k1", actor=Actor(kind="authority", id="p"))])


@pytest.mark.parametrize("at, code", [("2026-10-22T09:30:00+08:00", "CAPTURE_OUTSIDE_WINDOW"),
                                      ("2026-10-22T15:00:01+08:00", "CAPTURE_OUTSIDE_WINDOW")])
def test_captures_outside_the_window_are_refused(at: str, code: str) -> None:
    with pytest.raises(DomainError) as info:
        spot.submit_capture(check_view(), "A0001", "SC1", True, "app", ["blob:x"], None, T(at), 1)
    assert info.value.code == code


def test_a_capture_of_another_school_or_an_unenrolled_student_is_refused() -> None:
    at = T("2026-10-22T11:00:00+08:00")
    with pytest.raises(DomainError) as info:
        spot.submit_capture(check_view(), "A0001", "SC9", True, "app", ["blob:x"], None, at, 1)
    assert info.value.code == "NOT_IN_SCOPE"
    with pytest.raises(DomainError) as info:
        spot.submit_capture(check_view(), "A0001", "SC1", False, "app", ["blob:x"], None, at, 1)
    assert info.value.code == "NOT_ENROLLED"


def test_leave_reported_after_two_hours_is_recorded_with_a_warning() -> None:
    _, warnings = spot.mark_absence(check_view(), "A0001", "SC1", "leave", T("2026-10-22T11:59:00+08:00"))
    assert warnings == []
    _, warnings = spot.mark_absence(check_view(), "A0001", "SC1", "leave", T("2026-10-22T12:01:00+08:00"))
    assert warnings and warnings[0].startswith("LATE_LEAVE_REPORT")


def test_a_forced_pass_needs_three_failed_terminal_confirmations() -> None:
    at = T("2026-10-22T11:00:00+08:00")
    with pytest.raises(DomainError) as info:
        spot.force_pass(check_view(), "A0001", "SC1", "T1", 2, "blob:e", at)
    assert info.value.code == "FORCED_PASS_TOO_EARLY"
    assert spot.force_pass(check_view(), "A0001", "SC1", "T1", 3, "blob:e", at).attempts == 3


def test_an_appeal_is_resolved_once_by_an_authority() -> None:
    filed = appeals.file({"student_id": "A0001", "school_id": "SC1", "month": "2026-10",
                          "objected_on": "2026-11-03"}, "blob:letter")
    view = appeals.appeal_view(filed.appeal_id, [build_envelope(filed, stream="a", actor=Actor(kind="school", id="s"))])
    resolved = appeals.resolve(view, "approved", "county")
    view.decision = resolved.decision
    with pytest.raises(DomainError) as info:
        appeals.resolve(view, "rejected", "county")
    assert info.value.code == "ALREADY_RESOLVED"


@pytest.mark.parametrize("categories, judged, level", [
    ((1,), False, "especially_difficult"), ((6, 8), False, "especially_difficult"),
    ((7,), False, "difficult"), ((8,), True, "especially_difficult"), ((), False, "not_difficult"),
])
def test_hardship_level_follows_the_categories(categories: tuple[int, ...], judged: bool, level: str) -> None:
    assert hardship.level_for(categories, judged) == level


def test_hardship_categories_outside_1_to_8_are_refused() -> None:
    with pytest.raises(DomainError) as info:
        hardship.determine(hardship.Application("A1", "SC1", (9,), "2026-autumn", ("school_review",)))
    assert info.value.code == "UNKNOWN_CATEGORY"
