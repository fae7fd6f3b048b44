"""The HTTP entry points, one rule per test, without a database or a broker.

What is real: the service classes and their route methods, the edge (``backbone.edge``: token
verification against a JWKS file, roles, areas, request parsing, error answers), the domain
rules, the envelopes and their schemas, ``EventStoreAccess.record`` and ``BlobStore.staged``.
What is replaced: the store's database (an in-memory log, ``tests/unit/fakes.py``), the blob
files (a dictionary), and the service clock (``AID_CLOCK_OFFSET_SECONDS``: the tests run on
Wednesday 2026-10-14 at 11:00 Asia/Shanghai, during a 10:00-15:00 check). The state of each test
is set up by replaying events into the log. Idempotency keys and the personal-data read log use
the database: they are covered by ``tests/integration``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder

import backbone.edge
from backbone.auth import AuthSettings, RevocationCache, TokenVerifier
from backbone.issuer import SigningKey, load_or_create_key, mint, person_claims
from contracts.calendar import SHANGHAI
from contracts.envelope import Actor, Envelope
from contracts.events import (
    AppealFiled,
    AppealFiledV1,
    AppealStudent,
    CaptureRejected,
    CaptureVerified,
    CheckClosed,
    CheckOpened,
    MonthResultsPublished,
    ObjectionRecorded,
    SchoolRef,
    SchoolRegistered,
    StudentEnrolled,
    StudentRegistered,
    TerminalRegistered,
    TerminalRevoked,
)
from contracts.registry import build_envelope, parse_envelope
from contracts.students import capture_stream, school_stream, student_stream
from contracts.terminals import terminal_stream
from contracts.workdays import load_work_calendar
from services.appeals.domain import filing_id_of, month_stream
from services.appeals.service import AppealsService
from services.enrolment.service import EnrolmentService
from services.hardship.domain import hardship_stream
from services.hardship.service import HardshipService
from services.spotcheck.domain import check_stream, results_stream
from services.spotcheck.service import SpotcheckService
from tests.unit.fakes import FakeBlobs, FakeStore

ISSUER, AUDIENCE = "http://issuer.unit.test", "studentaid"
NOW = datetime(2026, 10, 14, 11, 0, tzinfo=SHANGHAI)
DAY = "2026-10-14"
CITY, COUNTY, OTHER_COUNTY = "驻马店市", "驿城区", "西平县"
OPS, COUNTY_OFFICER = Actor(kind="operator", id="ops:setup"), Actor(kind="authority", id="county:yc")
FACEMATCH, ENROLMENT = Actor(kind="service", id="facematch"), Actor(kind="service", id="enrolment")
PHOTO, FRAME_1, FRAME_2, ID_PHOTO = b"evidence-photo", b"frame-1", b"frame-2", b"id-card-photo"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


EVIDENCE = {"student_id": "G003", "evidence_photo": b64(PHOTO)}
NEW_CAPTURE = {"student_id": "G003", "frames": [b64(FRAME_1)], "id_photo": b64(ID_PHOTO)}
CHECK_IN = {"student_id": "G001", "frames": [b64(FRAME_1)]}
OBJECTION = {"student_id": "G001", "month": "2026-09", "received_on": "2026-10-13",
             "reason": "那天在医院，有病历"}


# ----------------------------------------------------------------------------- events of the scene


def school(school_id: str = "SC1", county: str = COUNTY, administered_by: str = "county") -> Envelope:
    event = SchoolRegistered(school_id=school_id, name=f"school {school_id}", city=CITY, county=county,
                             administered_by=administered_by)  # type: ignore[arg-type]
    return build_envelope(event, stream=school_stream(school_id), actor=OPS)


def student(student_id: str = "G001", school_id: str = "SC1", county: str = COUNTY) -> Envelope:
    event = StudentRegistered(
        student_id=student_id, school=SchoolRef(school_id=school_id, city=CITY, county=county),
        name_masked="张*", id_number_hash="0" * 64, id_number_masked="410102********123X", grade=2,
        class_name="2班", major="数控", enrolment_year=2025, enrolment_season="autumn", proposed_aid=True)
    return build_envelope(event, stream=student_stream(student_id), actor=OPS)


def enrolled(student_id: str = "G001", school_id: str = "SC1", mode: str = "verified",
             semester: str = "2026-autumn") -> Envelope:
    event = StudentEnrolled(student_id=student_id, school_id=school_id, semester=semester,
                            mode=mode, capture_id=f"cap-{student_id}")  # type: ignore[arg-type]
    return build_envelope(event, stream=student_stream(student_id), actor=ENROLMENT)


def terminal(terminal_id: str = "T1", school_id: str = "SC1") -> Envelope:
    return build_envelope(TerminalRegistered(terminal_id=terminal_id, school_id=school_id, label="大厅"),
                          stream=terminal_stream(terminal_id), actor=OPS)


def terminal_revoked(terminal_id: str = "T1", school_id: str = "SC1") -> Envelope:
    return build_envelope(TerminalRevoked(terminal_id=terminal_id, school_id=school_id, reason="stolen"),
                          stream=terminal_stream(terminal_id), actor=OPS)


def check(check_id: str = "C1", school_ids: list[str] | None = None, opens: str = "10:00",
          closes: str = "15:00", kind: str = "routine", student_ids: list[str] | None = None) -> Envelope:
    event = CheckOpened(
        check_id=check_id, kind=kind, semester="2026-autumn", month="2026-10",  # type: ignore[arg-type]
        opens_at=f"{DAY}T{opens}:00+08:00", closes_at=f"{DAY}T{closes}:00+08:00",
        initiated_by="province" if kind == "targeted" else "county",
        school_ids=None if kind == "targeted" else (school_ids or ["SC1"]), student_ids=student_ids)
    return build_envelope(event, stream=check_stream(check_id), actor=COUNTY_OFFICER)


def rejected(capture_id: str, channel: str = "terminal", student_id: str = "G001",
             check_id: str = "C1") -> Envelope:
    event = CaptureRejected(capture_id=capture_id, student_id=student_id, school_id="SC1",
                            purpose="spot_check", channel=channel,  # type: ignore[arg-type]
                            reasons=["NO_MATCH"], quality={}, liveness={}, model_version="m1",
                            check_id=check_id)
    return build_envelope(event, stream=capture_stream(capture_id), actor=FACEMATCH)


def verified(capture_id: str, student_id: str = "G001", check_id: str = "C1") -> Envelope:
    event = CaptureVerified(capture_id=capture_id, student_id=student_id, school_id="SC1",
                            purpose="spot_check", channel="app", distance=0.3, threshold=0.5,
                            quality={}, liveness={}, model_version="m1", check_id=check_id)
    return build_envelope(event, stream=capture_stream(capture_id), actor=FACEMATCH)


def published(month: str = "2026-09", on: str = "2026-10-09", school_id: str = "SC1") -> Envelope:
    """SC1 published its September results on Friday 2026-10-09: the window ends on Thursday
    10-15 (Saturday 10-10 is a swapped working day)."""
    return build_envelope(MonthResultsPublished(school_id=school_id, month=month, published_on=on),
                          stream=results_stream(school_id, month), actor=Actor(kind="school", id="staff:SC1"))


def objection(student_id: str = "G001") -> Envelope:
    event = ObjectionRecorded(objection_id="O1", student_id=student_id, school_id="SC1", month="2026-09",
                              received_on="2026-10-13", reason="病假", published_on="2026-10-09",
                              window_ends_on="2026-10-15", working_days=5)
    return build_envelope(event, stream=month_stream("SC1", "2026-09"),
                          actor=Actor(kind="school", id="staff:SC1"))


def filed(school_id: str = "SC1", student_id: str = "G001", county: str = COUNTY,
          level: str = "county") -> Envelope:
    event = AppealFiled(
        filing_id=filing_id_of(school_id, "2026-09"), school_id=school_id, month="2026-09",
        students=[AppealStudent(student_id=student_id, objected_on="2026-10-13", objection_ids=["O1"],
                                reason="病假", class_name="2班", name_masked="张*")],
        letter_ref="blob:" + "a" * 64, filed_on="2026-10-14", authority_level=level,  # type: ignore[arg-type]
        city=CITY, county=county)
    return build_envelope(event, stream=month_stream(school_id, "2026-09"),
                          actor=Actor(kind="school", id=f"staff:{school_id}"))


def the_province() -> list[Envelope]:
    """Two schools of one city: SC1 (驿城区) with its terminal T1 and its enrolled student G001, SC2
    (西平县) with its enrolled student G002; SC9, directly administered by the province."""
    return [school("SC1"), school("SC2", county=OTHER_COUNTY), school("SC9", administered_by="province"),
            terminal("T1", "SC1"), student("G001", "SC1"), enrolled("G001", "SC1"),
            student("G002", "SC2", county=OTHER_COUNTY), enrolled("G002", "SC2")]


# ----------------------------------------------------------------------------- callers and clock


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningKey, TokenVerifier]:
    folder: Path = tmp_path_factory.mktemp("issuer")
    key = load_or_create_key(folder / "k.pem")
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps(key.jwks()))
    return key, TokenVerifier(AuthSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks.as_uri()))


@pytest.fixture(autouse=True)
def edge(signing: tuple[SigningKey, TokenVerifier], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backbone.edge, "_verifier", signing[1])
    monkeypatch.setattr(backbone.edge, "_revocations", RevocationCache())  # no answer cached across tests


@pytest.fixture()
def token(signing: tuple[SigningKey, TokenVerifier]) -> Callable[..., str]:
    def make(role: str, sub: str, **area: str) -> str:
        return mint(signing[0], ISSUER, AUDIENCE, person_claims(role, sub=sub, **area))

    return make


@pytest.fixture()
def staff(token: Callable[..., str]) -> str:
    return token("school", "staff:SC1:wang", school="SC1")


@pytest.fixture()
def kiosk(token: Callable[..., str]) -> str:
    return token("terminal", "terminal:T1", school="SC1", terminal="T1")


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """The service clock reads ``at``; ``NOW`` unless a test moves it."""

    def at(moment: datetime) -> None:
        offset = (moment - datetime.now(UTC)).total_seconds()
        monkeypatch.setenv("AID_CLOCK_OFFSET_SECONDS", str(offset))

    monkeypatch.delenv("AID_ENV", raising=False)
    at(NOW)
    return at


@pytest.fixture()
def store() -> FakeStore:
    return FakeStore(*the_province())


@pytest.fixture()
def blobs() -> FakeBlobs:
    return FakeBlobs()


@pytest.fixture()
def spotcheck(store: FakeStore, blobs: FakeBlobs) -> SpotcheckService:
    return worker_factory(SpotcheckService, store=store, blobs=blobs)  # type: ignore[no-any-return]


@pytest.fixture()
def enrolment(store: FakeStore, blobs: FakeBlobs) -> EnrolmentService:
    return worker_factory(EnrolmentService, store=store, blobs=blobs)  # type: ignore[no-any-return]


@pytest.fixture()
def appeals(store: FakeStore, blobs: FakeBlobs) -> AppealsService:
    return worker_factory(AppealsService, store=store, blobs=blobs,  # type: ignore[no-any-return]
                          calendar=load_work_calendar())


@pytest.fixture()
def hardship(store: FakeStore) -> HardshipService:
    return worker_factory(HardshipService, store=store)  # type: ignore[no-any-return]


def ask(handler: Any, bearer: str | None, body: Any = None, **path: str) -> tuple[int, dict[str, Any]]:
    """Call a route method as nameko's HTTP entry point would: a werkzeug request, path values
    as keyword arguments. Returns the status and the JSON body."""
    route = handler.aid_route
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: path[m[1]], route.path)
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    request = EnvironBuilder(method=route.method, path=url, json=body, headers=headers).get_request()
    status, _, text = handler(request, **path)
    return status, json.loads(text)


def only(recorded: list[Envelope], event_type: str) -> Envelope:
    (envelope,) = recorded
    assert envelope.type == event_type
    return envelope


# ============================================================================= enrolment: evidence photo


def test_evidence_files_the_student_as_enrolled_by_evidence(
        enrolment: EnrolmentService, store: FakeStore, blobs: FakeBlobs, token: Callable[..., str]) -> None:
    store.given(student("G003", "SC1"))
    status, body = ask(enrolment.evidence, token("school", "staff:SC1:li", school="SC1"), EVIDENCE)
    assert (status, body) == (201, {"student_id": "G003", "mode": "evidence_filed"})
    filed = only(store.recorded, "StudentEnrolled")
    assert filed.stream == student_stream("G003")
    assert filed.payload["mode"] == "evidence_filed" and filed.payload["semester"] == "2026-autumn"
    assert blobs.get(filed.payload["capture_id"]) == PHOTO  # the event references the filed photo
    assert filed.actor == Actor(kind="school", id="staff:SC1:li", school="SC1")


def test_a_student_enrolled_already_files_no_evidence_and_no_photo_is_kept(
        enrolment: EnrolmentService, store: FakeStore, blobs: FakeBlobs, kiosk: str) -> None:
    status, body = ask(enrolment.evidence, kiosk, {**EVIDENCE, "student_id": "G001"})
    assert (status, body["error"]) == (409, "ALREADY_ENROLLED")
    assert store.recorded == [] and blobs.kept == {}


def test_a_provisional_enrolment_may_still_be_completed_by_evidence(
        enrolment: EnrolmentService, store: FakeStore, kiosk: str) -> None:
    store.given(student("G003", "SC1"), enrolled("G003", mode="provisional"))
    status, _ = ask(enrolment.evidence, kiosk, EVIDENCE)
    assert status == 201
    filed = only(store.recorded, "StudentEnrolled")
    assert filed.actor == Actor(kind="terminal", id="terminal:T1", school="SC1")


def test_a_school_files_evidence_only_for_its_own_students(enrolment: EnrolmentService, store: FakeStore,
                                                           blobs: FakeBlobs, staff: str) -> None:
    status, body = ask(enrolment.evidence, staff, {**EVIDENCE, "student_id": "G002"})
    assert (status, body["error"]) == (403, "OUTSIDE_AREA")
    assert store.recorded == [] and blobs.kept == {}


def test_a_revoked_terminal_is_refused(enrolment: EnrolmentService, store: FakeStore, blobs: FakeBlobs,
                                       kiosk: str) -> None:
    store.given(student("G003", "SC1"), terminal_revoked("T1"))
    status, body = ask(enrolment.evidence, kiosk, EVIDENCE)
    assert (status, body["error"]) == (401, "TERMINAL_REVOKED")
    assert store.recorded == [] and blobs.kept == {}


def test_an_enrolment_recorded_meanwhile_refuses_the_evidence_and_removes_its_photo(
        enrolment: EnrolmentService, store: FakeStore, blobs: FakeBlobs, staff: str) -> None:
    store.given(student("G003", "SC1"))
    store.meanwhile(enrolled("G003", mode="verified"))  # face matching enrolled the student meanwhile
    status, body = ask(enrolment.evidence, staff, EVIDENCE)
    assert (status, body["error"]) == (409, "CONCURRENT_CHANGE")
    assert store.recorded == [] and blobs.kept == {}


# ============================================================================= enrolment: new capture


def test_a_new_capture_is_taken_at_the_terminal_and_school_of_the_token(
        enrolment: EnrolmentService, store: FakeStore, blobs: FakeBlobs, kiosk: str) -> None:
    store.given(student("G003", "SC1"))
    status, body = ask(enrolment.capture, kiosk,
                       {**NEW_CAPTURE, "frames": [b64(FRAME_1), b64(FRAME_2)]})
    assert status == 202 and body["status"] == "submitted"
    submitted = only(store.recorded, "CaptureSubmitted").payload
    assert submitted["capture_id"] == body["capture_id"]
    assert (submitted["purpose"], submitted["channel"]) == ("enrolment", "terminal")
    assert (submitted["terminal_id"], submitted["school_id"]) == ("T1", "SC1")
    assert [blobs.get(r) for r in submitted["frame_refs"]] == [FRAME_1, FRAME_2]
    assert blobs.get(submitted["id_photo_ref"]) == ID_PHOTO


def test_a_student_is_captured_once(enrolment: EnrolmentService, store: FakeStore, blobs: FakeBlobs,
                                    kiosk: str) -> None:
    status, body = ask(enrolment.capture, kiosk, {**NEW_CAPTURE, "student_id": "G001"})
    assert (status, body["error"]) == (409, "ALREADY_ENROLLED")
    assert store.recorded == [] and blobs.kept == {}


# ============================================================================= spotcheck: check-in captures


def test_a_terminal_check_in_names_the_terminal_of_the_token(spotcheck: SpotcheckService, store: FakeStore,
                                                             blobs: FakeBlobs, kiosk: str) -> None:
    store.given(check("C1"))
    status, body = ask(spotcheck.submit_capture, kiosk, CHECK_IN, check_id="C1")
    assert status == 202
    submitted = only(store.recorded, "CaptureSubmitted")
    assert submitted.payload["capture_id"] == body["capture_id"]
    assert (submitted.payload["channel"], submitted.payload["terminal_id"]) == ("terminal", "T1")
    assert (submitted.payload["check_id"], submitted.payload["purpose"]) == ("C1", "spot_check")
    assert [blobs.get(r) for r in submitted.payload["frame_refs"]] == [FRAME_1]
    assert submitted.actor.id == "terminal:T1"


def test_a_student_checks_in_by_app_for_themself_only(spotcheck: SpotcheckService, store: FakeStore,
                                                       blobs: FakeBlobs, token: Callable[..., str]) -> None:
    store.given(check("C1"), student("G003", "SC1"), enrolled("G003"))
    app = token("student", "student:G001", student="G001")
    status, body = ask(spotcheck.submit_capture, app, {**CHECK_IN, "student_id": "G003"},
                       check_id="C1")
    assert (status, body["error"]) == (403, "OUTSIDE_AREA")
    assert store.recorded == [] and blobs.kept == {}
    status, _ = ask(spotcheck.submit_capture, app, CHECK_IN, check_id="C1")
    submitted = only(store.recorded, "CaptureSubmitted")
    assert status == 202
    assert (submitted.payload["channel"], submitted.payload["terminal_id"]) == ("app", None)
    assert submitted.actor == Actor(kind="student", id="student:G001")


def test_captures_outside_the_check_window_are_refused_and_keep_no_frames(
        spotcheck: SpotcheckService, store: FakeStore, blobs: FakeBlobs, kiosk: str) -> None:
    store.given(check("C1", opens="12:00", closes="15:00"))  # it is 11:00
    status, body = ask(spotcheck.submit_capture, kiosk, CHECK_IN, check_id="C1")
    assert (status, body["error"]) == (409, "CAPTURE_OUTSIDE_WINDOW")
    assert store.recorded == [] and blobs.kept == {}


def test_a_provisional_enrolment_takes_part_in_the_checks_of_its_semester_only(
        spotcheck: SpotcheckService, store: FakeStore, blobs: FakeBlobs, kiosk: str) -> None:
    store.given(check("C1"), student("G003", "SC1"),
                enrolled("G003", mode="provisional", semester="2026-spring"))
    status, body = ask(spotcheck.submit_capture, kiosk, {**CHECK_IN, "student_id": "G003"},
                       check_id="C1")
    assert (status, body["error"]) == (409, "NOT_ENROLLED")
    assert store.recorded == [] and blobs.kept == {}


def test_a_student_of_a_school_the_check_does_not_name_is_not_checked(
        spotcheck: SpotcheckService, store: FakeStore, kiosk: str) -> None:
    store.given(check("C1", school_ids=["SC2"]))
    status, body = ask(spotcheck.submit_capture, kiosk, CHECK_IN, check_id="C1")
    assert (status, body["error"]) == (403, "NOT_IN_SCOPE")
    assert store.recorded == []


# ============================================================================= spotcheck: absences


def test_the_school_marks_why_its_student_misses_a_check(spotcheck: SpotcheckService, store: FakeStore,
                                                         staff: str) -> None:
    store.given(check("C1"))
    status, body = ask(spotcheck.mark_absence, staff,
                       {"student_id": "G001", "reason": "cognitive_internship"}, check_id="C1")
    assert status == 201 and body["warnings"] == []
    marked = only(store.recorded, "AbsenceMarked")
    assert marked.stream == check_stream("C1")
    assert (marked.payload["school_id"], marked.payload["reason"]) == ("SC1", "cognitive_internship")
    reported = datetime.fromisoformat(marked.payload["reported_at"])
    assert abs(reported - NOW) < timedelta(seconds=5)  # omitted: the papers are reported now
    assert marked.actor == Actor(kind="school", id="staff:SC1:wang", school="SC1")


def test_a_leave_reported_more_than_two_hours_after_the_check_opened_is_recorded_with_a_warning(
        spotcheck: SpotcheckService, store: FakeStore, staff: str, clock: Callable[[datetime], None]) -> None:
    store.given(check("C1"))
    clock(NOW.replace(hour=14))
    status, body = ask(spotcheck.mark_absence, staff,
                       {"student_id": "G001", "reason": "leave", "reported_at": f"{DAY}T12:30:00+08:00"},
                       check_id="C1")
    assert status == 201
    assert [w.split(":")[0] for w in body["warnings"]] == ["LATE_LEAVE_REPORT"]
    assert only(store.recorded, "AbsenceMarked").payload["reported_at"] == f"{DAY}T12:30:00+08:00"


def test_papers_cannot_be_reported_in_the_future(spotcheck: SpotcheckService, store: FakeStore,
                                                 staff: str) -> None:
    store.given(check("C1"))
    status, body = ask(spotcheck.mark_absence, staff,
                       {"student_id": "G001", "reason": "leave", "reported_at": f"{DAY}T11:30:00+08:00"},
                       check_id="C1")
    assert (status, body["error"]) == (400, "BAD_TIME")
    assert store.recorded == []


def test_an_absence_is_marked_only_for_a_student_the_check_names(spotcheck: SpotcheckService,
                                                                 store: FakeStore, staff: str) -> None:
    store.given(student("G003", "SC9"), check("C1", kind="targeted", student_ids=["G003"]))
    status, body = ask(spotcheck.mark_absence, staff, {"student_id": "G001", "reason": "leave"},
                       check_id="C1")
    assert (status, body["error"]) == (403, "NOT_IN_SCOPE")
    assert store.recorded == []


# ============================================================================= spotcheck: forced passes


def force(spotcheck: SpotcheckService, bearer: str, student_id: str = "G001") -> tuple[int, dict[str, Any]]:
    return ask(spotcheck.force_pass, bearer, {**EVIDENCE, "student_id": student_id}, check_id="C1")


def test_a_forced_pass_needs_three_failed_terminal_confirmations(
        spotcheck: SpotcheckService, store: FakeStore, blobs: FakeBlobs, kiosk: str) -> None:
    store.given(check("C1"), rejected("K1"), rejected("K2"))
    status, body = force(spotcheck, kiosk)
    assert (status, body["error"]) == (409, "FORCED_PASS_TOO_EARLY")
    assert store.recorded == [] and blobs.kept == {}


def test_after_three_failed_terminal_confirmations_the_terminal_force_passes_with_its_evidence_photo(
        spotcheck: SpotcheckService, store: FakeStore, blobs: FakeBlobs, kiosk: str) -> None:
    store.given(check("C1"), rejected("K1"), rejected("K2"), rejected("K3"))
    status, body = force(spotcheck, kiosk)
    assert status == 201
    assert body == {"check_id": "C1", "student_id": "G001", "forced_pass": True, "attempts": 3}
    forced = only(store.recorded, "ForcedPassRecorded")
    assert forced.stream == check_stream("C1")
    assert (forced.payload["terminal_id"], forced.payload["school_id"]) == ("T1", "SC1")
    assert blobs.get(forced.payload["evidence_ref"]) == PHOTO
    assert forced.actor == Actor(kind="terminal", id="terminal:T1", school="SC1")


def test_failed_app_captures_do_not_count_towards_a_forced_pass(spotcheck: SpotcheckService,
                                                                store: FakeStore, kiosk: str) -> None:
    store.given(check("C1"), rejected("K1"), rejected("K2"), rejected("K3", channel="app"),
                rejected("K4", channel="app"))
    assert force(spotcheck, kiosk)[1]["error"] == "FORCED_PASS_TOO_EARLY"


def test_failures_in_another_check_do_not_count_towards_a_forced_pass(spotcheck: SpotcheckService,
                                                                      store: FakeStore, kiosk: str) -> None:
    store.given(check("C0"), check("C1"), rejected("K1"), rejected("K2"), rejected("K3", check_id="C0"))
    assert force(spotcheck, kiosk)[1]["error"] == "FORCED_PASS_TOO_EARLY"


def test_a_student_who_passed_the_check_is_not_force_passed(spotcheck: SpotcheckService, store: FakeStore,
                                                            kiosk: str) -> None:
    store.given(check("C1"), rejected("K1"), rejected("K2"), rejected("K3"), verified("K4"))
    status, body = force(spotcheck, kiosk)
    assert (status, body["error"]) == (409, "ALREADY_PASSED")
    assert store.recorded == []


def test_a_student_is_force_passed_once_per_check(spotcheck: SpotcheckService, store: FakeStore,
                                                  blobs: FakeBlobs, kiosk: str) -> None:
    store.given(check("C1"), rejected("K1"), rejected("K2"), rejected("K3"))
    assert force(spotcheck, kiosk)[0] == 201
    status, body = force(spotcheck, kiosk)
    assert (status, body["error"]) == (409, "ALREADY_FORCED")
    assert len(store.recorded) == 1 and len(blobs.kept) == 1


def test_only_a_terminal_records_a_forced_pass(spotcheck: SpotcheckService, store: FakeStore,
                                               staff: str) -> None:
    store.given(check("C1"), rejected("K1"), rejected("K2"), rejected("K3"))
    status, body = force(spotcheck, staff)
    assert (status, body["error"]) == (403, "ROLE_FORBIDDEN")
    assert store.recorded == []


# ============================================================================= spotcheck: month results


def test_a_school_publishes_a_months_results_once(spotcheck: SpotcheckService, store: FakeStore,
                                                  staff: str) -> None:
    first = ask(spotcheck.publish_results, staff, {"school_id": "SC1", "month": "2026-10"})
    # objections until the 5th working day after Wednesday Oct 14: Wednesday Oct 21
    assert first == (201, {"school_id": "SC1", "month": "2026-10", "published_on": DAY,
                           "objection_ends_on": "2026-10-21"})
    again = ask(spotcheck.publish_results, staff, {"school_id": "SC1", "month": "2026-10"})
    assert (again[0], again[1]["error"]) == (409, "ALREADY_PUBLISHED")
    published = only(store.recorded, "MonthResultsPublished")
    assert published.stream == results_stream("SC1", "2026-10") and published.actor.id == "staff:SC1:wang"


def test_the_results_of_a_month_are_not_published_before_it_begins(spotcheck: SpotcheckService,
                                                                   store: FakeStore, staff: str) -> None:
    status, body = ask(spotcheck.publish_results, staff, {"school_id": "SC1", "month": "2026-11"})
    assert (status, body["error"]) == (409, "MONTH_NOT_STARTED")
    assert store.recorded == []


def test_a_school_publishes_only_its_own_results(spotcheck: SpotcheckService, store: FakeStore,
                                                 staff: str) -> None:
    status, body = ask(spotcheck.publish_results, staff, {"school_id": "SC2", "month": "2026-10"})
    assert (status, body["error"]) == (403, "OUTSIDE_AREA")
    assert store.recorded == []


# ============================================================================= appeals


def test_the_school_records_an_objection_in_the_window_and_files_its_month(
        appeals: AppealsService, store: FakeStore, blobs: FakeBlobs, staff: str) -> None:
    store.given(published())
    status, body = ask(appeals.record_objection, staff, OBJECTION)
    assert status == 201, body
    assert (body["published_on"], body["window_ends_on"], body["filing_id"]) == (
        "2026-10-09", "2026-10-15", "SC1-2026-09")
    objection = only(store.recorded, "ObjectionRecorded")
    assert objection.stream == month_stream("SC1", "2026-09")
    assert objection.actor == Actor(kind="school", id="staff:SC1:wang", school="SC1")
    status, body = ask(appeals.file_month, staff, {"month": "2026-09"})
    assert status == 201, body
    assert [(s["student_id"], s["name_masked"], s["objected_on"]) for s in body["students"]] == [
        ("G001", "张*", "2026-10-13")]
    filing = only(store.recorded[1:], "AppealFiled")
    assert (filing.payload["authority_level"], filing.payload["filed_on"]) == ("county", "2026-10-14")
    assert blobs.get(filing.payload["letter_ref"]).startswith(b"%PDF")
    status, body = ask(appeals.file_month, staff, {"month": "2026-09"})
    assert (status, body["error"]) == (409, "ALREADY_FILED")


@pytest.mark.parametrize(("published_on", "received_on", "code", "named"), [
    ("2026-09-28", "2026-10-12", "OBJECTION_LATE", "2026-10-10"),  # National Day; Sat 10-10 works
    ("2026-09-30", "2026-10-14", "OBJECTION_LATE", "2026-10-13"),  # the same holidays, received today
    ("2026-10-09", "2026-10-15", "RECEIVED_IN_FUTURE", "2026-10-14"),  # today is 10-14
    ("2026-10-09", "2026-10-08", "RECEIVED_BEFORE_PUBLICATION", "2026-10-09"),
])
def test_objections_outside_the_window_or_dated_after_today_are_refused(
        appeals: AppealsService, store: FakeStore, staff: str, published_on: str, received_on: str,
        code: str, named: str) -> None:
    store.given(published(on=published_on))
    status, body = ask(appeals.record_objection, staff, {**OBJECTION, "received_on": received_on})
    assert (status, body["error"]) == (422, code) and named in body["message"], body
    assert store.recorded == []


def test_no_objection_before_the_results_are_published_nor_for_another_school(
        appeals: AppealsService, store: FakeStore, staff: str) -> None:
    status, body = ask(appeals.record_objection, staff, OBJECTION)
    assert (status, body["error"]) == (409, "RESULTS_NOT_PUBLISHED")
    store.given(published(), published(school_id="SC2"))
    status, body = ask(appeals.record_objection, staff, {**OBJECTION, "student_id": "G002"})
    assert (status, body["error"]) == (403, "OUTSIDE_AREA")
    assert store.recorded == []


def test_the_same_level_authority_of_the_area_rules_on_each_student_once(
        appeals: AppealsService, store: FakeStore, token: Callable[..., str]) -> None:
    store.given(filed())
    county = token("county", "county:yc:zhao", city=CITY, county=COUNTY)
    ruling = {"student_id": "G001", "decision": "approved", "reason": "病历属实"}
    for other, code in ((token("city", "city:zmd", city=CITY), "NOT_SAME_LEVEL"),
                        (token("province", "province:ha"), "NOT_SAME_LEVEL"),
                        (token("county", "county:xp", city=CITY, county=OTHER_COUNTY), "OUTSIDE_AREA")):
        status, body = ask(appeals.rule, other, ruling, filing_id="SC1-2026-09")
        assert (status, body["error"]) == (403, code)
    assert store.recorded == []
    status, body = ask(appeals.rule, county, ruling, filing_id="SC1-2026-09")
    assert (status, body) == (200, {"filing_id": "SC1-2026-09", "student_id": "G001", "decision": "approved",
                                    "decided_by": "county"})
    resolved = only(store.recorded, "AppealResolved")
    assert (resolved.stream, resolved.payload["reason"]) == (month_stream("SC1", "2026-09"), "病历属实")
    assert resolved.actor == Actor(kind="authority", id="county:yc:zhao")
    status, body = ask(appeals.rule, county, ruling, filing_id="SC1-2026-09")
    assert (status, body["error"]) == (409, "ALREADY_RULED")
    status, body = ask(appeals.rule, county, {**ruling, "student_id": "G002"}, filing_id="SC1-2026-09")
    assert (status, body["error"]) == (404, "NOT_IN_FILING")


def test_the_inbox_lists_what_waits_for_the_callers_level_and_area_with_the_evidence(
        appeals: AppealsService, store: FakeStore, token: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []  # the personal-data reads the edge would log (no database here)
    monkeypatch.setattr(backbone.edge, "_record_reads", lambda service, call: reads.extend(call.reads))
    legacy = AppealFiledV1(appeal_id="A-old", student_id="G001", school_id="SC1", month="2026-10",
                           objected_on="2026-10-12", letter_ref="blob:" + "b" * 64)
    old = build_envelope(legacy, stream="appeal-A-old", actor=Actor(kind="school", id="staff:SC1"),
                         occurred_at=NOW)  # filed this month: the inbox lists the month's filings
    check_c1 = check("C1")
    store.given(filed(), parse_envelope(old.to_dict()), check_c1, rejected("K1"),
                build_envelope(CheckClosed(check_id="C1", closed_at=f"{DAY}T15:00:00+08:00"),
                               stream=check_c1.stream, actor=COUNTY_OFFICER))
    county = token("county", "county:yc:zhao", city=CITY, county=COUNTY)
    status, body = ask(appeals.inbox, county)
    assert status == 200, body
    assert [f["filing_id"] for f in body["filings"]] == ["SC1-2026-09", "A-old"]  # a v1 appeal too
    (student,) = body["filings"][1]["students"]
    (failed,) = student["failed_checks"]  # October's check: closed, only a rejected capture
    assert (failed["check_id"], failed["result"], [v["reasons"] for v in failed["verdicts"]]) == (
        "C1", "failed", [["NO_MATCH"]])
    assert body["filings"][0]["students"][0]["failed_checks"] == []  # no check in September
    assert reads == ["G001", "G001"]
    for other in (token("county", "county:xp", city=CITY, county=OTHER_COUNTY), token("city", "city:zmd",
                                                                                     city=CITY)):
        assert ask(appeals.inbox, other) == (200, {"filings": []})


def test_the_month_end_timer_closes_what_was_not_ruled_once(
        appeals: AppealsService, store: FakeStore, clock: Callable[[datetime], None]) -> None:
    store.given(filed())  # filed on 2026-10-14, not ruled
    appeals.close_months()
    assert store.recorded == []  # October is not over
    clock(datetime(2026, 11, 1, 0, 5, tzinfo=SHANGHAI))
    appeals.close_months()
    closing = only(store.recorded, "AppealClosedUnhandled")
    assert (closing.stream, closing.payload["student_ids"], closing.payload["closed_on"]) == (
        month_stream("SC1", "2026-09"), ["G001"], "2026-10-31")
    assert closing.actor == Actor(kind="system", id="appeals:month-end")
    appeals.close_months()
    assert len(store.recorded) == 1


# ============================================================================= hardship


def determine(hardship: HardshipService, bearer: str, **over: Any) -> tuple[int, dict[str, Any]]:
    body = {"student_id": "G001", "categories": [2], "effective_semester": "2026-autumn",
            "methods": ["information_comparison"], **over}
    return ask(hardship.determine, bearer, body)


def test_categories_one_to_six_make_a_student_especially_difficult(hardship: HardshipService,
                                                                   store: FakeStore, staff: str) -> None:
    status, body = determine(hardship, staff, categories=[2, 8])
    assert status == 201 and body["level"] == "especially_difficult"
    determined = only(store.recorded, "HardshipDetermined")
    assert body["determination_id"] == determined.payload["determination_id"]
    assert body["position"] == determined.position
    assert (determined.stream, determined.payload["school_id"]) == (hardship_stream("G001"), "SC1")
    assert determined.payload["categories"] == [2, 8]
    assert determined.actor == Actor(kind="school", id="staff:SC1:wang", school="SC1")


@pytest.mark.parametrize(("categories", "judged", "level"), [
    ([7], False, "difficult"),
    ([8], False, "difficult"),
    ([7, 8], True, "especially_difficult"),
    ([], False, "not_difficult"),
])
def test_categories_seven_and_eight_are_difficult_unless_the_school_judges_them_especially_so(
        hardship: HardshipService, staff: str, categories: list[int], judged: bool, level: str) -> None:
    status, body = determine(hardship, staff, categories=categories, judged_especially_difficult=judged)
    assert (status, body["level"]) == (201, level)


def test_a_school_determines_only_its_own_students(hardship: HardshipService, store: FakeStore,
                                                   staff: str) -> None:
    status, body = determine(hardship, staff, student_id="G002")
    assert (status, body["error"]) == (403, "OUTSIDE_AREA")
    assert store.recorded == []


# ============================================================================= the edge, for every write


def test_a_body_cannot_say_who_acts(hardship: HardshipService, store: FakeStore, staff: str) -> None:
    status, body = determine(hardship, staff, actor={"kind": "authority", "id": "province:boss"})
    assert (status, body["error"]) == (422, "INVALID_REQUEST")
    assert [f["path"] for f in body["fields"]] == ["body.actor"]
    assert store.recorded == []


def test_a_write_without_a_token_is_refused(hardship: HardshipService, store: FakeStore) -> None:
    status, body = determine(hardship, "")
    assert (status, body["error"]) == (401, "UNAUTHENTICATED")
    assert store.recorded == []


@pytest.mark.parametrize("route", [
    "enrolment evidence", "enrolment capture", "check-in capture", "forced pass", "appeal letter",
    "signed letter"])
def test_a_request_whose_event_cannot_be_recorded_keeps_no_photo(
        route: str, store: FakeStore, blobs: FakeBlobs, enrolment: EnrolmentService,
        spotcheck: SpotcheckService, appeals: AppealsService, staff: str, kiosk: str) -> None:
    store.given(student("G003", "SC1"), check("C1"), rejected("K1"), rejected("K2"), rejected("K3"))
    if route == "appeal letter":
        store.given(published(), objection())
    if route == "signed letter":
        store.given(filed())
    store.fail_next_append(psycopg.OperationalError("the database went away"))
    calls: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
        "enrolment evidence": lambda: ask(enrolment.evidence, staff, EVIDENCE),
        "enrolment capture": lambda: ask(enrolment.capture, kiosk, NEW_CAPTURE),
        "check-in capture": lambda: ask(spotcheck.submit_capture, kiosk, CHECK_IN, check_id="C1"),
        "forced pass": lambda: force(spotcheck, kiosk),
        "appeal letter": lambda: ask(appeals.file_month, staff, {"month": "2026-09"}),
        "signed letter": lambda: ask(appeals.attach_signed, staff, {"scan": b64(PHOTO)},
                                     filing_id="SC1-2026-09"),
    }
    status, body = calls[route]()
    assert (status, body["error"]) == (503, "DATABASE_UNAVAILABLE")
    assert store.recorded == []
    assert blobs.kept == {}
