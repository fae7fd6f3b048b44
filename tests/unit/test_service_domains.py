"""Rules of the entry services (registration, new capture, checks, appeals, hardship), on plain
data: one test per rule, with the error code a user sees."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest
from pydantic import ValidationError

from backbone.errors import DomainError
from contracts import Actor, build_envelope, students
from contracts.envelope import Envelope
from contracts.events import (
    CaptureRejected,
    CaptureVerified,
    StudentEnrolled,
    TerminalRegistered,
    TerminalRevoked,
)
from contracts.identity import check_digit
from contracts.students import SchoolView, StudentView
from services.appeals import domain as appeals
from services.enrolment import commands as enrol_cmd
from services.enrolment import domain as enrol
from services.hardship import domain as hardship
from services.spotcheck import domain as spot

KEY = b"k"
T = datetime.fromisoformat


def idn(seq: int = 1) -> str:
    first = f"41010220070307{seq:03d}"
    return first + check_digit(first)


def school(**over: object) -> enrol_cmd.RegisterSchool:
    body: dict[str, object] = {"school_id": "SC1", "name": "驻马店财经学校", "city": "驻马店市", "county": "驿城区"}
    body.update(over)
    return enrol_cmd.RegisterSchool.model_validate(body)


def school_view(**over: object) -> SchoolView:
    event = enrol.register_school(school(**over))
    actor = Actor(kind="operator", id="o")
    return students.school_view("SC1", [build_envelope(event, stream="school-SC1", actor=actor)])


def registration(**over: object) -> enrol_cmd.RegisterStudent:
    body: dict[str, object] = {
        "student_id": "A0001", "school_id": "SC1", "name": "王小明", "id_number": idn(), "grade": 2,
        "class_name": "会计2班", "major": "会计", "enrolment_year": 2025, "enrolment_season": "秋季",
    }
    body.update(over)
    return enrol_cmd.RegisterStudent.model_validate(body)


def registered_view(*enrolled: str) -> StudentView:
    event = enrol.register(registration(), school_view(), KEY, StudentView("A0001"))
    envelopes = [build_envelope(event, stream="student-A0001", actor=Actor(kind="school", id="x"))]
    envelopes += [build_envelope(StudentEnrolled(student_id="A0001", school_id="SC1", semester="2026-autumn",
                                                 mode=mode, capture_id="c0"),  # type: ignore[arg-type]
                                 stream="student-A0001", actor=Actor(kind="service", id="enrolment"))
                  for mode in enrolled]
    return students.student_view("A0001", envelopes)


def test_registration_keeps_only_hash_and_masked_id_number_and_takes_the_area_from_the_school() -> None:
    event = enrol.register(registration(), school_view(city="信阳市", county="浉河区"), KEY, StudentView("A0001"))
    assert idn() not in str(event.to_payload()) and "王小明" not in str(event.to_payload())
    assert event.id_number_masked == idn()[:6] + "********" + idn()[-4:]
    assert event.name_masked == "王**" and event.enrolment_season == "autumn"
    assert (event.school.city, event.school.county) == ("信阳市", "浉河区")


@pytest.mark.parametrize("over", [
    {"student_id": "a b"}, {"grade": 7}, {"grade": "2"}, {"enrolment_season": "summer"}, {"major": ""},
    {"name": "王\x00明"}, {"name": "王" * 65}, {"operator": "someone"}, {"school": {"school_id": "SC1"}},
    {"enrolment_year": 1999}, {"proposed_aid": "false"},
])
def test_malformed_registrations_are_refused_by_the_command(over: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        registration(**over)


def test_an_invalid_id_number_is_refused_without_repeating_it() -> None:
    with pytest.raises(DomainError) as info:
        enrol.register(registration(id_number="410102200703070010"), school_view(), KEY, StudentView("A0001"))
    assert (info.value.code, info.value.status) == ("INVALID_ID_NUMBER", 422)
    assert "410102200703070010" not in info.value.message


def test_a_student_is_registered_once_at_a_registered_school() -> None:
    with pytest.raises(DomainError) as info:
        enrol.register(registration(), school_view(), KEY, registered_view())
    assert info.value.code == "ALREADY_REGISTERED"
    with pytest.raises(DomainError) as info:
        enrol.register(registration(), SchoolView("SC1"), KEY, StudentView("A0001"))
    assert (info.value.code, info.value.status) == ("UNKNOWN_SCHOOL", 404)


def test_a_school_is_administered_by_the_province_only_when_directly_administered() -> None:
    assert enrol.register_school(school()).administered_by == "county"
    assert enrol.register_school(school(administered_by="city")).administered_by == "city"
    assert enrol.register_school(school(directly_administered=True)).directly_administered
    with pytest.raises(DomainError) as info:
        enrol.register_school(school(directly_administered=True, administered_by="city"))
    assert info.value.code == "CONFLICTING_FIELDS"


def terminal_events(*revoked: str) -> list[Envelope]:
    actor = Actor(kind="operator", id="o")
    registered = TerminalRegistered(terminal_id="T1", school_id="SC1", label="大厅")
    return [build_envelope(registered, stream="terminal-T1", actor=actor),
            *(build_envelope(TerminalRevoked(terminal_id="T1", school_id="SC1", reason=r),
                             stream="terminal-T1", actor=actor) for r in revoked)]


def test_a_terminal_is_registered_once_to_a_registered_school_and_revoked_once() -> None:
    command = enrol_cmd.RegisterTerminal(terminal_id="T1", school_id="SC1", label="大厅")
    assert enrol.register_terminal(command, school_view(), enrol.TerminalView("T1")).school_id == "SC1"
    with pytest.raises(DomainError) as info:
        enrol.register_terminal(command, SchoolView("SC1"), enrol.TerminalView("T1"))
    assert info.value.code == "UNKNOWN_SCHOOL"
    active = enrol.terminal_view("T1", terminal_events())
    with pytest.raises(DomainError) as info:
        enrol.register_terminal(command, school_view(), active)
    assert (info.value.code, info.value.status) == ("TERMINAL_EXISTS", 409)
    assert enrol.active_terminal(active) == "SC1"
    revoked = enrol.terminal_view("T1", terminal_events("stolen"))
    assert revoked.revoked and revoked.label == "大厅"
    for decide, code in ((lambda: enrol.revoke_terminal(revoked, enrol_cmd.RevokeTerminal(reason="x")),
                          "ALREADY_REVOKED"),
                         (lambda: enrol.active_terminal(revoked), "TERMINAL_REVOKED"),
                         (lambda: enrol.active_terminal(enrol.TerminalView("T9")), "UNKNOWN_TERMINAL")):
        with pytest.raises(DomainError) as info:
            decide()
        assert info.value.code == code


STATION = enrol.Station(school_id="SC1", terminal_id="T1")
PHOTO = base64.b64encode(b"jpeg").decode()


def capture(student_id: str = "A0001") -> enrol_cmd.SubmitEnrolment:
    body = {"student_id": student_id, "frames": [PHOTO], "id_photo": PHOTO}
    return enrol_cmd.SubmitEnrolment.model_validate(body)


def test_new_capture_at_a_terminal_of_the_student_school() -> None:
    event = enrol.submit_enrolment(registered_view(), capture(), STATION, ["blob:x"], "blob:y",
                                   T("2026-09-10T10:00+08:00"))
    assert (event.school_id, event.terminal_id) == ("SC1", "T1")
    assert (event.channel, event.purpose) == ("terminal", "enrolment")
    assert event.frame_refs == ["blob:x"] and event.id_photo_ref == "blob:y"


@pytest.mark.parametrize("view, station, code", [
    (StudentView("NOPE"), STATION, "UNKNOWN_STUDENT"),
    (registered_view(), enrol.Station(school_id="SC2", terminal_id="T9"), "OUTSIDE_AREA"),
    (registered_view("verified"), STATION, "ALREADY_ENROLLED"),
    (registered_view("evidence_filed"), STATION, "ALREADY_ENROLLED"),
])
def test_a_new_capture_is_refused_before_any_photo_is_stored(view: StudentView, station: enrol.Station,
                                                              code: str) -> None:
    with pytest.raises(DomainError) as info:
        enrol.check_capture(view, station)
    assert info.value.code == code


def test_a_provisional_student_is_captured_again() -> None:
    enrol.check_capture(registered_view("provisional"), STATION)


@pytest.mark.parametrize("over", [{"frames": []}, {"frames": [PHOTO] * 11}, {"frames": ["not base64!"]},
                                  {"school_id": "SC1"}, {"terminal_id": "T1"}, {"id_photo": ""}])
def test_malformed_captures_are_refused_by_the_command(over: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        enrol_cmd.SubmitEnrolment.model_validate({"student_id": "A0001", "frames": [PHOTO], "id_photo": PHOTO,
                                                  **over})


def test_evidence_is_filed_once_for_a_student_not_enrolled() -> None:
    command = enrol_cmd.FileEvidence.model_validate({"student_id": "A0001", "evidence_photo": PHOTO})
    at = T("2027-01-20T10:00+08:00")
    filed = enrol.file_evidence(registered_view("provisional"), command, "blob:e", at)
    assert (filed.mode, filed.school_id, filed.semester) == ("evidence_filed", "SC1", "2026-autumn")
    for view in (registered_view("verified"), registered_view("evidence_filed")):
        with pytest.raises(DomainError) as info:
            enrol.check_evidence(view)
        assert info.value.code == "ALREADY_ENROLLED"


def _result(cls: type, **extra: object) -> object:
    base = dict(capture_id="c1", student_id="A0001", school_id="SC1", purpose="enrolment", channel="terminal",
                quality={}, liveness={}, model_version="m")
    base.update(extra)
    return build_envelope(cls(**base), stream="capture-c1", actor=Actor(kind="service", id="facematch"),
                          occurred_at=T("2026-10-10T10:00+08:00"))


def test_verified_enrolment_capture_enrols_the_student() -> None:
    result = _result(CaptureVerified, distance=0.3, threshold=0.6)
    out = enrol.enrolment_outcome(result)  # type: ignore[arg-type]
    assert isinstance(out, StudentEnrolled) and out.mode == "verified" and out.semester == "2026-autumn"


def test_identity_not_confirmed_gives_a_provisional_enrolment_for_this_semester() -> None:
    out = enrol.enrolment_outcome(_result(CaptureRejected, reasons=["NO_MATCH"]))  # type: ignore[arg-type]
    assert out is not None and out.mode == "provisional"


@pytest.mark.parametrize("reasons", [["NO_FACE"], ["ID_PHOTO_UNUSABLE", "NO_FACE"],
                                     ["NO_MATCH", "DUPLICATE_IDENTITY"]])
def test_an_unusable_capture_enrols_nobody(reasons: list[str]) -> None:
    result = _result(CaptureRejected, reasons=reasons)
    assert enrol.enrolment_outcome(result) is None  # type: ignore[arg-type]


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
