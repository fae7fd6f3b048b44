"""The enrolment service over the edge, as a real process with the real issuer: the school and
terminal registry (client credentials, rotation, revocation), student registration and new
capture; who may do what, which inputs are refused (with a code, never a 500), idempotent
retries, the actor of every event taken from the token, and no photo kept for a refused
request."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.flows import (
    id_number,
    operations_token,
    province_token,
    register_student,
    register_terminal,
    school_token,
    setup_terminal,
    student_body,
    terminal_token,
)
from tests.support import Proc, System, wait_for

pytestmark = pytest.mark.integration


def rows(system: System, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(system.database_url) as conn:
        return list(conn.execute(query, params).fetchall())


def events(system: System, type_: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(actor, payload) of every event of ``type_``, in log order."""
    found = rows(system, "SELECT actor, payload FROM events WHERE type = %s ORDER BY position", type_)
    return [(r[0], r[1]) for r in found]


def blob_files(system: System) -> int:
    root = Path(system.tmp) / "blobs"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def image(label: str) -> str:
    return base64.b64encode(b"\xff\xd8\xff\xe0" + label.encode() * 20).decode()


def capture_body(student_id: str, label: str, count: int = 3, **over: Any) -> dict[str, Any]:
    body = {"student_id": student_id, "frames": [image(f"{label}-{i}") for i in range(count)],
            "id_photo": image(f"{label}-id")}
    body.update(over)
    return body


def refused(answer: tuple[int, Any]) -> tuple[int, str]:
    status, body = answer
    return status, body["error"] if isinstance(body, dict) else body


# ----------------------------------------------------------------------------- schools, terminals


def test_schools_are_registered_by_operations_and_read_within_their_area(system: System,
                                                                         enrolment: Proc) -> None:
    ops = operations_token(system)
    status, school = enrolment.api("GET", "/schools/SC1", token=school_token(system, "SC1"))
    assert status == 200, school
    assert school == {"school_id": "SC1", "name": "测试中等职业学校SC1", "city": "驻马店市",
                      "county": "驿城区", "administered_by": "county", "directly_administered": False}
    in_area = system.token("county", city="驻马店市", county="驿城区")
    other_county = system.token("county", city="驻马店市", county="西平县")
    for token, expected in ((in_area, 200), (system.token("city", city="驻马店市"), 200),
                            (province_token(system), 200), (system.token("auditor"), 200), (ops, 200),
                            (school_token(system, "SC2"), 403), (other_county, 403),
                            (system.token("city", city="信阳市"), 403),
                            (system.token("student", student="A0001"), 403)):
        assert enrolment.api("GET", "/schools/SC1", token=token)[0] == expected, token
    assert refused(enrolment.api("GET", "/schools/SC9", token=ops)) == (404, "UNKNOWN_SCHOOL")
    assert refused(enrolment.api("GET", "/schools/SC1")) == (401, "UNAUTHENTICATED")

    # re-registering corrects the school: the latest registration wins
    status, body = enrolment.api("POST", "/schools", {"school_id": "SC1", "name": "驻马店财经学校",
                                                      "city": "驻马店市", "county": "驿城区",
                                                      "directly_administered": True}, token=ops)
    assert (status, body) == (201, {"school_id": "SC1"})
    school = enrolment.api("GET", "/schools/SC1", token=ops)[1]
    assert (school["name"], school["administered_by"], school["directly_administered"]) == (
        "驻马店财经学校", "province", True)
    assert [actor["id"] for actor, _ in events(system, "SchoolRegistered")] == ["operations:ops-1"] * 3

    # only operations register schools; bad fields are refused with their path
    body = {"school_id": "SC3", "name": "x", "city": "c", "county": "d"}
    answer = enrolment.api("POST", "/schools", body, token=school_token(system))
    assert refused(answer) == (403, "ROLE_FORBIDDEN")
    for bad in ({"name": "a\x00b"}, {"school_id": "S C"}, {"name": "x" * 65},
                {"directly_administered": "yes"}, {"operator": "someone"}):
        status, answer = enrolment.api("POST", "/schools", {**body, **bad}, token=ops)
        assert (status, answer["error"]) == (422, "INVALID_REQUEST"), (bad, answer)
        assert answer["fields"] and all(f["path"].startswith("body.") for f in answer["fields"])
    assert enrolment.api("GET", "/schools/SC3", token=ops)[0] == 404


def test_terminal_credentials_rotation_and_revocation(system: System, enrolment: Proc) -> None:
    ops = operations_token(system)
    register_student(system, enrolment, "A0001", 1, "SC1")
    body = {"terminal_id": "T1", "school_id": "SC9", "label": "大厅"}
    assert refused(enrolment.api("POST", "/terminals", body, token=ops)) == (404, "UNKNOWN_SCHOOL")
    assert refused(enrolment.api("POST", "/terminals", {**body, "school_id": "SC1"},
                                 token=school_token(system))) == (403, "ROLE_FORBIDDEN")
    credential = register_terminal(system, enrolment, "T1", "SC1")
    assert credential["client_id"] == "T1" and len(credential["client_secret"]) >= 40
    assert refused(enrolment.api("POST", "/terminals", {**body, "school_id": "SC2"}, token=ops)) == (
        409, "TERMINAL_EXISTS")
    (stored,) = rows(system, "SELECT school_id, secret_hash FROM terminal_credentials")
    assert stored == ("SC1", hashlib.sha256(credential["client_secret"].encode()).hexdigest())
    dump = " ".join(str(r) for r in rows(system, "SELECT payload, actor FROM events"))
    assert credential["client_secret"] not in dump
    setup_terminal(system, enrolment, "T2", "SC2")

    # lists: operations see any school's, staff their own; never a secret
    listed = enrolment.api("GET", "/terminals?school_id=SC1", token=ops)[1]["terminals"]
    assert listed == [{"terminal_id": "T1", "school_id": "SC1", "label": "一楼大厅 T1", "revoked": False}]
    every = enrolment.api("GET", "/terminals", token=ops)[1]["terminals"]
    assert {t["terminal_id"] for t in every} == {"T1", "T2"}
    own = enrolment.api("GET", "/terminals", token=school_token(system, "SC2"))[1]["terminals"]
    assert [t["terminal_id"] for t in own] == ["T2"]
    assert refused(enrolment.api("GET", "/terminals?school_id=SC1", token=school_token(system, "SC2"))) == (
        403, "OUTSIDE_AREA")
    assert refused(enrolment.api("GET", "/terminals?school=SC1", token=ops)) == (422, "INVALID_REQUEST")
    polluted = enrolment.api("GET", "/terminals?school_id=SC2&school_id=SC1",
                             token=school_token(system, "SC2"))
    assert refused(polluted) == (422, "INVALID_REQUEST") and polluted[1]["fields"][0]["code"] == "repeated"

    # the issuer's token works at the service; the actor of the capture is the terminal
    status, answer = terminal_token(system, "T1", credential["client_secret"])
    assert status == 200, answer
    old_token = answer["access_token"]
    status, answer = enrolment.api("POST", "/enrolments", capture_body("A0001", "a"), token=old_token)
    assert status == 202, answer
    ((actor, payload),) = events(system, "CaptureSubmitted")
    assert (actor["kind"], actor["id"], actor["school"]) == ("terminal", "terminal:T1", "SC1")
    assert (payload["terminal_id"], payload["school_id"], payload["channel"]) == ("T1", "SC1", "terminal")
    assert refused(terminal_token(system, "T1", "wrong")) == (401, "invalid_client")

    # rotation: the old secret gets no token, the new one does
    status, rotated = enrolment.api("POST", "/terminals/T1/secret", token=ops)
    assert status == 200 and rotated["client_secret"] != credential["client_secret"], rotated
    assert refused(terminal_token(system, "T1", credential["client_secret"])) == (401, "invalid_client")
    assert terminal_token(system, "T1", rotated["client_secret"])[0] == 200
    assert refused(enrolment.api("POST", "/terminals/T9/secret", token=ops)) == (404, "UNKNOWN_TERMINAL")

    # revocation: no new token from the issuer, and the live token is refused within seconds
    probe = capture_body("NOPE1", "probe", count=1)
    assert refused(enrolment.api("POST", "/enrolments", probe, token=old_token)) == (404, "UNKNOWN_STUDENT")
    assert refused(enrolment.api("POST", "/terminals/T1/revoke", {}, token=ops)) == (422, "INVALID_REQUEST")
    status, answer = enrolment.api("POST", "/terminals/T1/revoke", {"reason": "stolen"}, token=ops)
    assert (status, answer) == (200, {"terminal_id": "T1", "school_id": "SC1", "revoked": True})
    assert refused(terminal_token(system, "T1", rotated["client_secret"])) == (401, "invalid_client")
    wait_for(lambda: refused(enrolment.api("POST", "/enrolments", probe, token=old_token))
             == (401, "TERMINAL_REVOKED"), timeout=10, interval=0.5,
             what="the revoked terminal's token refused")
    assert refused(enrolment.api("POST", "/terminals/T1/revoke", {"reason": "again"}, token=ops)) == (
        409, "ALREADY_REVOKED")
    assert refused(enrolment.api("POST", "/terminals/T1/secret", token=ops)) == (409, "TERMINAL_REVOKED")
    ((actor, payload),) = events(system, "TerminalRevoked")
    assert actor["id"] == "operations:ops-1" and payload == {"terminal_id": "T1", "school_id": "SC1",
                                                             "reason": "stolen"}
    listed = enrolment.api("GET", "/terminals?school_id=SC1", token=ops)[1]["terminals"]
    assert [t["revoked"] for t in listed] == [True]
    revoked = "SELECT revoked_at IS NOT NULL FROM terminal_credentials WHERE terminal_id = 'T1'"
    assert rows(system, revoked) == [(True,)]


# ----------------------------------------------------------------------------- students


def test_student_registration_takes_the_area_from_the_registry_and_the_actor_from_the_token(
        system: System, enrolment: Proc) -> None:
    staff = school_token(system, "SC1")
    body = student_body("A0001", 1, "SC1")
    assert refused(enrolment.api("POST", "/students", body)) == (401, "UNAUTHENTICATED")
    assert refused(enrolment.api("POST", "/students", body, token="not-a-jwt")) == (401, "BAD_TOKEN")
    assert refused(enrolment.api("POST", "/students", body, token=school_token(system, "SC2"))) == (
        403, "OUTSIDE_AREA")
    assert refused(enrolment.api("POST", "/students", body, token=province_token(system))) == (
        403, "ROLE_FORBIDDEN")
    assert refused(enrolment.api("POST", "/students", {**body, "school_id": "SC9"}, token=staff)) == (
        404, "UNKNOWN_SCHOOL")
    for extra in ({"operator": "张老师"}, {"actor": {"kind": "school", "id": "x"}}, {"city": "信阳市"},
                  {"school": {"school_id": "SC1", "city": "c", "county": "d"}}):
        status, answer = enrolment.api("POST", "/students", {**body, **extra}, token=staff)
        assert (status, answer["error"]) == (422, "INVALID_REQUEST"), extra
        assert [f["code"] for f in answer["fields"]] == ["extra_forbidden"]

    # a retry with the same Idempotency-Key answers the first answer and records one event
    key = {"Idempotency-Key": "register-A0001-1"}
    first = enrolment.api("POST", "/students", body, token=staff, headers=key)
    assert first[0] == 201, first
    assert enrolment.api("POST", "/students", body, token=staff, headers=key) == first
    assert refused(enrolment.api("POST", "/students", {**body, "grade": 3}, token=staff, headers=key)) == (
        422, "IDEMPOTENCY_KEY_REUSED")
    assert refused(enrolment.api("POST", "/students", body, token=staff)) == (409, "ALREADY_REGISTERED")
    ((actor, payload),) = events(system, "StudentRegistered")
    assert (actor["kind"], actor["id"], actor["school"]) == ("school", "staff:SC1", "SC1")
    assert payload["school"] == {"school_id": "SC1", "city": "驻马店市", "county": "驿城区"}
    assert payload["enrolment_season"] == "autumn" and payload["name_masked"] == "测试**"

    # operations may register for any school
    status, answer = enrolment.api("POST", "/students", student_body("B0001", 2, "SC2"),
                                   token=operations_token(system))
    assert status == 201, answer


BAD_REGISTRATIONS: list[tuple[dict[str, Any], tuple[int, str]]] = [
    ({"name": "王\x00明"}, (422, "INVALID_REQUEST")),
    ({"grade": "2"}, (422, "INVALID_REQUEST")),
    ({"grade": 9}, (422, "INVALID_REQUEST")),
    ({"grade": 2.0}, (422, "INVALID_REQUEST")),
    ({"enrolment_year": "2025"}, (422, "INVALID_REQUEST")),
    ({"enrolment_year": 10**30}, (422, "INVALID_REQUEST")),
    ({"enrolment_season": "summer"}, (422, "INVALID_REQUEST")),
    ({"proposed_aid": "false"}, (422, "INVALID_REQUEST")),
    ({"student_id": "A 01"}, (422, "INVALID_REQUEST")),
    ({"student_id": None}, (422, "INVALID_REQUEST")),
    ({"school_id": "../SC1"}, (422, "INVALID_REQUEST")),
    ({"major": ""}, (422, "INVALID_REQUEST")),
    ({"class_name": "x" * 5000}, (422, "INVALID_REQUEST")),
    ({"major": "专" * 30_000}, (413, "BODY_TOO_LARGE")),
    ({"id_number": "110101200703070011"}, (422, "INVALID_ID_NUMBER")),
    ({"id_number": "11010120071307001X"}, (422, "INVALID_ID_NUMBER")),
    ({"id_number": "1" * 20}, (422, "INVALID_ID_NUMBER")),
    ({"id_number": "4101022007030700\x001"}, (422, "INVALID_ID_NUMBER")),
    ({"id_number": "1" * 33}, (422, "INVALID_REQUEST")),
]


def test_bad_registrations_are_refused_with_a_code_and_never_echoed(system: System, enrolment: Proc) -> None:
    staff = school_token(system, "SC1")
    for over, expected in BAD_REGISTRATIONS:
        answer = enrolment.api("POST", "/students", {**student_body("A0001", 1, "SC1"), **over}, token=staff)
        assert refused(answer) == expected, (over, answer)
        text = str(answer[1])
        assert "110101200703070011" not in text and "11010120071307001X" not in text and "王" not in text
    status, answer = enrolment.api("POST", "/students", student_body("A0001", 1, "SC1", name="王\ud800明"),
                                   token=staff)
    assert status in (400, 422) and answer["error"] in ("MALFORMED_JSON", "INVALID_REQUEST"), answer
    status, answer = enrolment.api("POST", "/students", token=staff)
    assert (status, answer["error"]) == (400, "MISSING_BODY")
    assert events(system, "StudentRegistered") == []
    log = enrolment.log_tail(200_000)
    assert "Traceback" not in log and "11010120070307" not in log and "测试学生" not in log


def test_a_student_is_read_masked_within_the_area_and_every_read_is_recorded(
        system: System, enrolment: Proc) -> None:
    register_student(system, enrolment, "A0001", 1, "SC1")
    status, student = enrolment.api("GET", "/students/A0001", token=school_token(system, "SC1"))
    assert status == 200, student
    assert student["id_number_masked"] == id_number(1)[:6] + "*" * 8 + id_number(1)[-4:]
    assert student["name_masked"] == "测试**" and student["enrolled"] is None
    assert id_number(1) not in str(student) and "测试学生" not in str(student)
    for token, expected in ((system.token("county", city="驻马店市", county="驿城区"), 200),
                            (system.token("student", student="A0001"), 200), (system.token("auditor"), 200),
                            (system.token("student", student="B0001"), 403),
                            (school_token(system, "SC2"), 403), (operations_token(system), 403),
                            (system.token("city", city="信阳市"), 403)):
        assert enrolment.api("GET", "/students/A0001", token=token)[0] == expected, token
    assert refused(enrolment.api("GET", "/students/NOPE1", token=province_token(system))) == (
        404, "UNKNOWN_STUDENT")
    reads = rows(system, "SELECT caller, caller_role, student_id, route FROM personal_data_reads ORDER BY id")
    assert [r[:3] for r in reads] == [("staff:SC1", "school", "A0001"),
                                      ("county:驻马店市:驿城区", "county", "A0001"),
                                      ("student:A0001", "student", "A0001"), ("auditor", "auditor", "A0001")]


# ----------------------------------------------------------------------------- captures


def test_captures_come_from_terminals_of_the_student_school_and_refusals_store_no_photo(
        system: System, enrolment: Proc) -> None:
    terminal = setup_terminal(system, enrolment, "T1", "SC1")
    register_student(system, enrolment, "A0001", 1, "SC1")
    register_student(system, enrolment, "B0001", 2, "SC2")
    assert blob_files(system) == 0

    def refused_without_photos(body: dict[str, Any], token: str, expected: tuple[int, str]) -> None:
        before = blob_files(system)
        assert refused(enrolment.api("POST", "/enrolments", body, token=token)) == expected
        assert blob_files(system) == before, f"{expected} left a photo behind"

    refused_without_photos(capture_body("B0001", "b"), terminal, (403, "OUTSIDE_AREA"))
    refused_without_photos(capture_body("NOPE1", "n"), terminal, (404, "UNKNOWN_STUDENT"))
    refused_without_photos(capture_body("A0001", "s"), school_token(system, "SC1"), (403, "ROLE_FORBIDDEN"))
    refused_without_photos(capture_body("A0001", "u"), "", (401, "UNAUTHENTICATED"))
    for bad in ({"frames": []}, {"frames": [image(str(i)) for i in range(11)]}, {"id_photo": "not base64!"},
                {"school_id": "SC2"}, {"terminal_id": "T9"}, {"channel": "app"}, {"operator": "x"}):
        refused_without_photos(capture_body("A0001", "x", **bad), terminal, (422, "INVALID_REQUEST"))

    # a submitted capture, retried with its Idempotency-Key: one event, the first answer
    key = {"Idempotency-Key": "capture-A0001-1"}
    first = enrolment.api("POST", "/enrolments", capture_body("A0001", "ok"), token=terminal, headers=key)
    assert first[0] == 202 and first[1]["status"] == "submitted", first
    retry = enrolment.api("POST", "/enrolments", capture_body("A0001", "ok"), token=terminal, headers=key)
    assert retry == first
    ((_, payload),) = events(system, "CaptureSubmitted")
    assert payload["capture_id"] == first[1]["capture_id"] and len(payload["frame_refs"]) == 3
    assert blob_files(system) == 4
    assert rows(system, "SELECT stream FROM events WHERE type = 'CaptureSubmitted'") == [
        (f"capture-{first[1]['capture_id']}",)]

    # evidence filed by the school: the student is enrolled, a new capture is refused before storing
    status, answer = enrolment.api("POST", "/enrolments/evidence", {
        "student_id": "A0001", "evidence_photo": image("evidence")}, token=school_token(system, "SC1"))
    assert (status, answer) == (201, {"student_id": "A0001", "mode": "evidence_filed"})
    ((actor, enrolled),) = events(system, "StudentEnrolled")
    assert actor["id"] == "staff:SC1" and enrolled["mode"] == "evidence_filed"
    refused_without_photos(capture_body("A0001", "late"), terminal, (409, "ALREADY_ENROLLED"))
    before = blob_files(system)
    for token, expected in ((terminal, (409, "ALREADY_ENROLLED")),
                            (school_token(system, "SC2"), (403, "OUTSIDE_AREA"))):
        assert refused(enrolment.api("POST", "/enrolments/evidence", {
            "student_id": "A0001", "evidence_photo": image("evidence-2")}, token=token)) == expected
    assert blob_files(system) == before

    # the events carry references, never the photos
    dump = " ".join(str(r[0]) for r in rows(system, "SELECT payload FROM events"))
    assert image("ok-0") not in dump and "blob:" in dump


def test_the_openapi_document_describes_every_route(system: System) -> None:
    proc = system.service("enrolment").start()
    status, document = proc.api("GET", "/openapi.json")
    assert status == 200
    paths = document["paths"]
    assert {"/schools", "/schools/{school_id}", "/terminals", "/terminals/{terminal_id}/secret",
            "/terminals/{terminal_id}/revoke", "/students", "/students/{student_id}", "/enrolments",
            "/enrolments/evidence"} <= set(paths)
