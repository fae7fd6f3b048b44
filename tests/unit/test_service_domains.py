"""Rules of the entry services (registration, new capture, checks, hardship), on plain
data: one test per rule, with the error code a user sees."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

import contracts.events as ev
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
from contracts.reasons import REASONS, describe
from contracts.students import SchoolView, StudentView, capture_stream
from services.enrolment import commands as enrol_cmd
from services.enrolment import domain as enrol
from services.facematch.reasons import Code
from services.hardship import domain as hardship
from services.hardship.commands import Determine
from services.spotcheck import commands as spot_cmd
from services.spotcheck import domain as spot

KEY = b"k"
T = datetime.fromisoformat


def idn(seq: int = 1) -> str:
    first = f"41010220070307{seq:03d}"
    return first + check_digit(first)


def school(**over: object) -> enrol_cmd.RegisterSchool:
    body: dict[str, object] = {"school_id": "SC1", "name": "驻马店财经学校", "city": "驻马店市",
                               "county": "驿城区"}
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
    event = enrol.register(registration(), school_view(city="信阳市", county="浉河区"), KEY,
                           StudentView("A0001"))
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
    assert enrol.register_school(school(directly_administered=True,
                                        administered_by="city")).administered_by == "province"


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


NOW = T("2026-10-22T10:30:00+08:00")
IMAGE = base64.b64encode(b"jpeg").decode()
DAY = "2026-10-22T{}+08:00".format
WINDOW = {"opens_at": DAY("10:00:00"), "closes_at": DAY("15:00:00")}


def parsed(model: Any, body: dict[str, object]) -> Any:
    """``body`` parsed as the edge parses a request (JSON, strict)."""
    return model.model_validate_json(json.dumps(body), strict=True)


def refused(decide: Any, *args: object) -> tuple[str, int]:
    """The code and status with which ``decide(*args)`` refuses."""
    with pytest.raises(DomainError) as info:
        decide(*args)
    return info.value.code, info.value.status


def opening(**over: object) -> spot_cmd.OpenCheck:
    body: dict[str, object] = {**WINDOW, "school_ids": ["SC1"]}
    body.update(over)
    return parsed(spot_cmd.OpenCheck, {k: v for k, v in body.items() if v is not None})


def pupil(student_id: str = "A0001", school_id: str = "SC1", *modes: str) -> StudentView:
    """A registered student of ``school_id``, enrolled in 2026-autumn with each of ``modes``."""
    registered = ev.StudentRegistered(
        student_id=student_id, school=ev.SchoolRef(school_id=school_id, city="驻马店市", county="驿城区"),
        name_masked="王**", id_number_hash="h", id_number_masked="m", grade=2, class_name="会计2班",
        major="会计", enrolment_year=2025, enrolment_season="autumn", proposed_aid=True)
    actor, stream = Actor(kind="school", id="x"), f"student-{student_id}"
    events: list[ev.Event] = [registered]
    events += [StudentEnrolled(student_id=student_id, school_id=school_id, semester="2026-autumn",
                               mode=mode, capture_id="c0") for mode in modes]  # type: ignore[arg-type]
    return students.student_view(student_id, [build_envelope(e, stream=stream, actor=actor) for e in events])


def enrolled(student_id: str = "A0001", school_id: str = "SC1") -> StudentView:
    return pupil(student_id, school_id, "verified")


def check_of(opened: ev.CheckOpened, *more: ev.Event) -> spot.CheckView:
    actor = Actor(kind="authority", id="p")
    stream = spot.check_stream(opened.check_id)
    return spot.check_view(opened.check_id, [build_envelope(e, stream=stream, actor=actor)
                                             for e in (opened, *more)])


ROUTINE = spot.open_check(opening(), "province", NOW)


def check_view(*more: ev.Event) -> spot.CheckView:
    """The routine check of SC1 on 2026-10-22 (always the same check id), with ``more`` events."""
    return check_of(ROUTINE, *more)


def test_each_stream_is_named_by_one_function() -> None:
    assert spot.check_stream("k1") == "check-k1" and capture_stream("c1") == "capture-c1"
    assert spot.results_stream("SC1", "2026-10") == "results-SC1-2026-10"


@pytest.mark.parametrize("over", [
    {"opens_at": DAY("09:59:00")},
    {"closes_at": DAY("15:01:00")},
    {"closes_at": "2026-10-23T12:00:00+08:00"},
    {"opens_at": DAY("14:00:00"), "closes_at": DAY("13:00:00")},
    {"opens_at": "2026-10-22T02:00:00Z", "closes_at": "2026-10-22T07:30:00Z"},  # 10:00-15:30 local
])
def test_a_check_runs_within_10_and_15_oclock_for_at_most_5_hours(over: dict[str, object]) -> None:
    assert refused(spot.open_check, opening(**over), "province", NOW) == ("BAD_WINDOW", 400)


def test_a_check_is_announced_on_its_day_and_not_after_its_window() -> None:
    tomorrow = opening(opens_at="2026-10-23T10:00:00+08:00", closes_at="2026-10-23T15:00:00+08:00")
    assert refused(spot.open_check, tomorrow, "province", NOW) == ("NOT_TODAY", 409)
    past = opening(closes_at=DAY("10:20:00"))
    assert refused(spot.open_check, past, "province", NOW) == ("WINDOW_PASSED", 409)
    check = spot.open_check(opening(), "county", NOW)
    assert (check.initiated_by, check.month, check.semester, check.school_ids) == (
        "county", "2026-10", "2026-autumn", ["SC1"])
    assert check.opens_at == DAY("10:00:00")


def test_a_targeted_check_is_started_by_the_province_for_named_students_only() -> None:
    targeted = opening(kind="targeted", school_ids=None, student_ids=["A0001", "A0001", "B0002"])
    for level in ("city", "county"):
        assert refused(spot.open_check, targeted, level, NOW) == ("TARGETED_BY_PROVINCE", 403)
    nobody = opening(kind="targeted", school_ids=None)
    assert refused(spot.open_check, nobody, "province", NOW)[0] == "MISSING_FIELD"
    with_schools = opening(kind="targeted", student_ids=["A0001"])
    assert refused(spot.open_check, with_schools, "province", NOW)[0] == "BAD_FIELD"
    check = spot.open_check(targeted, "province", NOW)
    assert check.kind == "targeted" and check.student_ids == ["A0001", "B0002"] and check.school_ids is None


def test_a_targeted_check_reaches_registered_students_of_directly_administered_schools() -> None:
    check = spot.open_check(opening(kind="targeted", school_ids=None, student_ids=["A0001"]), "province", NOW)

    def school_of(administered_by: str) -> dict[str, SchoolView]:
        event = ev.SchoolRegistered(school_id="SC1", name="学校", city="驻马店市", county="驿城区",
                                    administered_by=administered_by)  # type: ignore[arg-type]
        actor = Actor(kind="operator", id="o")
        return {"SC1": students.school_view("SC1", [build_envelope(event, stream="school-SC1", actor=actor)])}

    spot.require_targets(check, {"A0001": pupil()}, school_of("province"))
    assert refused(spot.require_targets, check, {"A0001": pupil()}, school_of("county"))[0] == (
        "NOT_DIRECTLY_ADMINISTERED")
    assert refused(spot.require_targets, check, {}, school_of("province")) == ("UNKNOWN_STUDENT", 404)


def test_only_the_province_checks_every_school_and_nobody_with_an_empty_list() -> None:
    everyone = opening(school_ids=None)
    assert spot.open_check(everyone, "province", NOW).school_ids is None
    for level in ("city", "county"):
        assert refused(spot.open_check, everyone, level, NOW)[0] == "SCHOOLS_REQUIRED"
    assert refused(spot.open_check, opening(student_ids=["A0001"]), "province", NOW)[0] == "BAD_FIELD"
    assert refused(spot.open_check, opening(), "school", NOW) == ("AUTHORITY_ONLY", 403)
    with pytest.raises(ValidationError):
        opening(school_ids=[])


@pytest.mark.parametrize("model, body", [
    (spot_cmd.OpenCheck, {**WINDOW, "initiated_by": "province"}),
    (spot_cmd.OpenCheck, {**WINDOW, "opens_at": "2026-10-22T10:00:00"}),
    (spot_cmd.OpenCheck, {**WINDOW, "opens_at": "0001-10-22T10:00:00+08:00"}),
    (spot_cmd.OpenCheck, {**WINDOW, "closes_at": "9999-10-22T15:00:00+08:00"}),
    (spot_cmd.OpenCheck, {**WINDOW, "school_ids": 1.5}),
    (spot_cmd.OpenCheck, {**WINDOW, "school_ids": ["SC\x001"]}),
    (spot_cmd.OpenCheck, {**WINDOW, "school_ids": ["SC1"] * 5001}),
    (spot_cmd.OpenCheck, {**WINDOW, "kind": "surprise"}),
    (spot_cmd.SubmitCapture, {"student_id": "A0001", "frames": [IMAGE], "attempt": "abc"}),
    (spot_cmd.SubmitCapture, {"student_id": "A0001", "frames": [IMAGE], "attempt": 11}),
    (spot_cmd.SubmitCapture, {"student_id": "A0001", "frames": []}),
    (spot_cmd.SubmitCapture, {"student_id": "A0001", "frames": [IMAGE] * 11}),
    (spot_cmd.SubmitCapture, {"student_id": "A0001", "frames": [IMAGE], "channel": "terminal"}),
    (spot_cmd.SubmitCapture, {"student_id": "A0001", "frames": [IMAGE], "terminal_id": "T1"}),
    (spot_cmd.SubmitCapture, {"student_id": "A0001", "frames": [IMAGE], "school_id": "SC1"}),
    (spot_cmd.MarkAbsence, {"student_id": "A0001", "reason": "holiday"}),
    (spot_cmd.MarkAbsence, {"student_id": "A0001", "reason": "leave", "reported_at": "2026-10-22T12:00:00"}),
    (spot_cmd.ForcePass, {"student_id": "A0001", "evidence_photo": "not base64!"}),
    (spot_cmd.ForcePass, {"student_id": "A0001", "evidence_photo": IMAGE, "terminal_id": "T1"}),
    (spot_cmd.PublishResults, {"school_id": "SC1", "month": "2026-13"}),
    (spot_cmd.PublishResults, {"school_id": "SC1", "month": "0001-10"}),
    (spot_cmd.WaitQuery, {"wait": 31}),
])
def test_malformed_spot_check_requests_are_refused_by_the_command(model: Any,
                                                                   body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        parsed(model, body)


def capturing(student_id: str = "A0001", attempt: int = 1) -> spot_cmd.SubmitCapture:
    return parsed(spot_cmd.SubmitCapture, {"student_id": student_id, "frames": [IMAGE], "attempt": attempt})


TERMINAL = spot.Device("terminal", "T1")
APP = spot.Device("app")
FRAMES = ["blob:x"]


@pytest.mark.parametrize("at", [DAY("09:30:00"), DAY("15:00:01")])
def test_captures_outside_the_window_are_refused(at: str) -> None:
    assert refused(spot.submit_capture, check_view(), capturing(), enrolled(), APP, FRAMES, T(at)) == (
        "CAPTURE_OUTSIDE_WINDOW", 409)


def test_a_closed_check_takes_no_capture() -> None:
    view = check_view(spot.close_check(check_view(), "province", NOW))
    assert refused(spot.submit_capture, view, capturing(), enrolled(), APP, FRAMES, NOW)[0] == (
        "CAPTURE_OUTSIDE_WINDOW")


def test_a_capture_names_its_device_and_attempt_and_the_school_from_the_registration() -> None:
    event = spot.submit_capture(check_view(), capturing(attempt=2), enrolled(), TERMINAL, FRAMES, NOW)
    assert (event.channel, event.terminal_id, event.school_id, event.attempt) == ("terminal", "T1", "SC1", 2)
    assert (event.purpose, event.frame_refs, event.check_id) == ("spot_check", FRAMES, ROUTINE.check_id)
    event = spot.submit_capture(check_view(), capturing(), enrolled(), APP, FRAMES, NOW)
    assert (event.channel, event.terminal_id) == ("app", None)


@pytest.mark.parametrize("student, code", [
    (enrolled("B0002", "SC9"), "NOT_IN_SCOPE"),
    (pupil(), "NOT_ENROLLED"),
    (StudentView("NOPE"), "UNKNOWN_STUDENT"),
])
def test_a_capture_of_another_school_or_an_unenrolled_student_is_refused(student: StudentView,
                                                                          code: str) -> None:
    assert refused(spot.submit_capture, check_view(), capturing(), student, APP, FRAMES, NOW)[0] == code


def test_a_provisional_enrolment_counts_for_its_semester_only() -> None:
    provisional = pupil("A0001", "SC1", "provisional")
    assert spot.enrolled_for(provisional, "2026-autumn") and not spot.enrolled_for(provisional, "2027-spring")
    assert spot.enrolled_for(enrolled(), "2027-spring") and not spot.enrolled_for(pupil(), "2026-autumn")


def test_a_targeted_check_takes_its_students_only() -> None:
    view = check_of(spot.open_check(opening(kind="targeted", school_ids=None, student_ids=["A0001"]),
                                    "province", NOW))
    assert spot.submit_capture(view, capturing(), enrolled(), APP, FRAMES, NOW).student_id == "A0001"
    other = enrolled("B0002")
    assert refused(spot.submit_capture, view, capturing("B0002"), other, APP, FRAMES, NOW) == (
        "NOT_IN_SCOPE", 403)


def absence(reason: str = "leave", reported_at: str | None = None) -> spot_cmd.MarkAbsence:
    body = {"student_id": "A0001", "reason": reason, **({"reported_at": reported_at} if reported_at else {})}
    return parsed(spot_cmd.MarkAbsence, body)


def test_leave_reported_after_two_hours_is_recorded_with_a_warning() -> None:
    early = absence(reported_at=DAY("11:59:00"))
    event, warnings = spot.mark_absence(check_view(), early, pupil(), T(DAY("13:00:00")))
    assert warnings == [] and event.reported_at == DAY("11:59:00") and event.school_id == "SC1"
    _, warnings = spot.mark_absence(check_view(), absence(), pupil(), T(DAY("12:01:00")))
    assert warnings and warnings[0].startswith("LATE_LEAVE_REPORT")
    internship = absence("cognitive_internship")
    _, warnings = spot.mark_absence(check_view(), internship, pupil(), T(DAY("14:00:00")))
    assert warnings == []


def test_an_absence_is_not_reported_from_the_future_nor_for_a_student_outside_the_check() -> None:
    future = absence(reported_at=DAY("12:00:00"))
    assert refused(spot.mark_absence, check_view(), future, pupil(), NOW)[0] == "BAD_TIME"
    elsewhere = pupil("B0002", "SC9")
    assert refused(spot.mark_absence, check_view(), absence(), elsewhere, NOW)[0] == "NOT_IN_SCOPE"


def verdict(kind: type, capture_id: str, channel: str = "terminal",
            check_id: str = ROUTINE.check_id) -> Envelope:
    extra: dict[str, object] = (
        {"reasons": ["NO_MATCH"]} if kind is CaptureRejected else {"distance": 0.3, "threshold": 0.6})
    event = kind(capture_id=capture_id, student_id="A0001", school_id="SC1", purpose="spot_check",
                 channel=channel, quality={}, liveness={}, model_version="m", check_id=check_id, **extra)
    return build_envelope(event, stream=f"capture-{capture_id}", actor=Actor(kind="service", id="facematch"))


FORCE = parsed(spot_cmd.ForcePass, {"student_id": "A0001", "evidence_photo": IMAGE})


def test_a_forced_pass_needs_three_failed_terminal_confirmations_counted_from_the_verdicts() -> None:
    view = check_view()
    two = [verdict(CaptureRejected, "c1"), verdict(CaptureRejected, "c2"), verdict(CaptureRejected, "c2"),
           verdict(CaptureRejected, "c3", channel="app"), verdict(CaptureRejected, "c4", check_id="other")]
    assert spot.failed_terminal_attempts(two, view.check_id, "A0001") == 2
    assert refused(spot.force_pass, view, FORCE, pupil(), "T1", two, "blob:e", NOW) == (
        "FORCED_PASS_TOO_EARLY", 409)
    three = [*two, verdict(CaptureRejected, "c5")]
    event = spot.force_pass(view, FORCE, pupil(), "T1", three, "blob:e", NOW)
    assert (event.attempts, event.terminal_id, event.evidence_ref) == (3, "T1", "blob:e")


def test_a_forced_pass_is_recorded_once_and_not_for_a_student_who_passed() -> None:
    failed = [verdict(CaptureRejected, f"c{i}") for i in range(3)]
    once = spot.force_pass(check_view(), FORCE, pupil(), "T1", failed, "blob:e", NOW)
    assert refused(spot.force_pass, check_view(once), FORCE, pupil(), "T1", failed, "blob:e", NOW)[0] == (
        "ALREADY_FORCED")
    passed = [*failed, verdict(CaptureVerified, "c9", channel="app")]
    assert refused(spot.force_pass, check_view(), FORCE, pupil(), "T1", passed, "blob:e", NOW)[0] == (
        "ALREADY_PASSED")
    late = T(DAY("15:30:00"))
    assert refused(spot.force_pass, check_view(), FORCE, pupil(), "T1", failed, "blob:e", late)[0] == (
        "CAPTURE_OUTSIDE_WINDOW")


def test_a_check_is_closed_once_by_the_level_that_opened_it_or_the_province() -> None:
    view = check_of(spot.open_check(opening(school_ids=["SC1", "SC2"]), "county", NOW))
    assert spot.closers_schools(view, "county") == ["SC1", "SC2"]
    assert spot.closers_schools(view, "province") == []
    assert refused(spot.close_check, view, "city", NOW) == ("NOT_CHECK_OWNER", 403)
    assert refused(spot.close_check, check_view(), "county", NOW)[0] == "NOT_CHECK_OWNER"
    closed = spot.close_check(check_view(), "province", NOW)
    assert refused(spot.close_check, check_view(closed), "province", NOW) == ("ALREADY_CLOSED", 409)
    assert refused(spot.close_check, spot.CheckView("nope"), "province", NOW) == ("UNKNOWN_CHECK", 404)


def test_month_results_are_published_once_and_not_before_the_month() -> None:
    command = spot_cmd.PublishResults(school_id="SC1", month="2026-10")
    event = spot.publish_results(command, [], T("2026-11-02T09:00:00+08:00"))
    assert (event.month, event.published_on) == ("2026-10", "2026-11-02")
    stream, actor = spot.results_stream("SC1", "2026-10"), Actor(kind="school", id="s")
    previous = [build_envelope(event, stream=stream, actor=actor)]
    assert refused(spot.publish_results, command, previous, NOW) == ("ALREADY_PUBLISHED", 409)
    november = spot_cmd.PublishResults(school_id="SC1", month="2026-11")
    assert refused(spot.publish_results, november, [], NOW) == ("MONTH_NOT_STARTED", 409)


def test_a_capture_state_follows_the_verdict() -> None:
    submitted = spot.submit_capture(check_view(), capturing(), enrolled(), APP, FRAMES, NOW)
    stream = capture_stream(submitted.capture_id)
    first = build_envelope(submitted, stream=stream, actor=Actor(kind="student", id="s"))
    assert spot.capture_state(submitted.capture_id, [first]).status == "submitted"
    rejected = CaptureRejected(capture_id=submitted.capture_id, student_id="A0001", school_id="SC1",
                               purpose="spot_check", channel="app", reasons=["NO_MATCH", "PROXY_SUSPECT"],
                               quality={}, liveness={}, model_version="m")
    later = build_envelope(rejected, stream=stream, actor=Actor(kind="service", id="facematch"))
    state = spot.capture_state(submitted.capture_id, [first, later])
    assert (state.status, state.reasons) == ("rejected", ("NO_MATCH", "PROXY_SUSPECT"))
    assert refused(spot.capture_state, "nope", []) == ("UNKNOWN_CAPTURE", 404)


def test_every_reason_facematch_can_emit_has_a_chinese_and_an_english_text() -> None:
    missing = [code.value for code in Code if not all(t.strip() for t in REASONS.get(code.value, ("", "")))]
    assert not missing, f"contracts/reasons.py has no texts for {missing}"
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in zh) and en.isascii() for zh, en in REASONS.values())
    assert describe("SOMETHING_NEW") == describe("ANOTHER") and describe("NO_MATCH") == REASONS["NO_MATCH"]


@pytest.mark.parametrize("categories, judged, level", [
    ((1,), False, "especially_difficult"), ((6, 8), False, "especially_difficult"),
    ((7,), False, "difficult"), ((8,), True, "especially_difficult"), ((), False, "not_difficult"),
])
def test_hardship_level_follows_the_categories(categories: tuple[int, ...], judged: bool, level: str) -> None:
    assert hardship.level_for(categories, judged) == level


def test_hardship_categories_outside_1_to_8_are_refused() -> None:
    with pytest.raises(ValidationError):
        Determine.model_validate({"student_id": "A1", "categories": [9], "effective_semester": "2026-autumn",
                                  "methods": ["school_review"]})
    unchecked = Determine.model_construct(student_id="A1", categories=[9], effective_semester="2026-autumn",
                                          methods=["school_review"], judged_especially_difficult=False)
    with pytest.raises(DomainError) as info:
        hardship.determine(unchecked, "SC1")
    assert info.value.code == "UNKNOWN_CATEGORY"
