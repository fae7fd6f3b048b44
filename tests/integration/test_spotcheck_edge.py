"""The spotcheck service over the edge, against the real relay, enrolment, facematch (real face
models on real photos), issuer, RabbitMQ and PostgreSQL: a capture's verdict awaited with
``wait``, with Chinese and English reasons; who may capture, open and close checks, mark
absences and publish results (roles and areas); bad input refused with a code, never a 500;
idempotent retries; forced passes counted from the log; no photo kept for a refused request;
the actor of every event taken from the token."""

from __future__ import annotations

import base64
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest

from contracts.reasons import describe
from tests.flows import province_token, register_student, school_token, setup_school, setup_terminal
from tests.support import Proc, System, http_json, throwaway_database, throwaway_vhost, wait_for

pytestmark = pytest.mark.integration
CHECK_DAY = datetime.fromisoformat("2026-10-22T11:00:00+08:00")
CAPTURE_DAY = datetime.fromisoformat("2026-10-12T11:00:00+08:00")  # new capture before the Oct 20 deadline
WINDOW = {"opens_at": "2026-10-22T10:00:00+08:00", "closes_at": "2026-10-22T15:00:00+08:00"}
GENUINE = ("obama_720p.jpg", "obama_4.jpg", "obama_1.jpg")
SOMEONE_ELSE = ("kit_harington_1.jpg", "kit_harington_2.jpg", "kit_harington_3.jpg")
ZMD, YICHENG, XIPING = "驻马店市", "驿城区", "西平县"


def faces_dir() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "shared" / "faces").is_dir():
            return folder / "shared" / "faces"
    pytest.fail("shared/faces not found beside the repository")


def photo(name: str) -> str:
    return base64.b64encode((faces_dir() / name.rsplit("_", 1)[0] / name).read_bytes()).decode()


class Site:
    """The running system and the tokens of the people and terminals in it."""

    def __init__(self, system: System, spot: Proc) -> None:
        self.system, self.spot = system, spot
        self.t1 = self.t2 = ""
        self.province = province_token(system)
        self.county = system.token("county", city=ZMD, county=YICHENG)
        self.other_county = system.token("county", city=ZMD, county=XIPING)
        self.city = system.token("city", city=ZMD)
        self.staff1, self.staff2 = school_token(system, "SC1"), school_token(system, "SC2")
        self.app_a = system.token("student", student="A0001")
        self.auditor = system.token("auditor")

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.system.database_url) as conn:
            return list(conn.execute(query, params).fetchall())

    def count(self, type_: str) -> int:
        return int(self.rows("SELECT count(*) FROM events WHERE type = %s", type_)[0][0])

    def blobs(self) -> int:
        root = Path(self.system.tmp) / "blobs"
        return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0

    def open(self, token: str, **body: Any) -> tuple[int, Any]:
        return self.spot.api("POST", "/checks", {**WINDOW, **body}, token=token)

    def capture(self, check_id: str, token: str, student: str, frames: tuple[str, ...] = GENUINE,
                **extra: Any) -> tuple[int, Any]:
        body = {"student_id": student, "frames": [photo(f) for f in frames], **extra}
        return self.spot.api("POST", f"/checks/{check_id}/captures", body, token=token)

    def verdict(self, capture_id: str, token: str, wait: int = 25) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.spot.api_port}/captures/{capture_id}?wait={wait}"
        return http_json("GET", url, token=token, timeout=wait + 15)

    def raw(self, method: str, path: str, data: bytes, token: str) -> tuple[int, Any]:
        """Send ``data`` as it is (bodies json.dumps cannot make)."""
        import json

        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        req = urllib.request.Request(f"http://127.0.0.1:{self.spot.api_port}{path}", data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with throwaway_database() as db, throwaway_vhost() as vhost:
        system = System(db, vhost, tmp_path_factory.mktemp("spotcheck"))
        try:
            def offset(day: datetime) -> str:
                return str((day - datetime.now(UTC)).total_seconds())

            system.relay().start(wait=False)
            enrolment = system.service("enrolment", AID_CLOCK_OFFSET_SECONDS=offset(CAPTURE_DAY))
            enrolment.start(wait=False)
            spot = system.service("spotcheck", AID_CLOCK_OFFSET_SECONDS=offset(CHECK_DAY)).start(wait=False)
            system.service("facematch", AID_CLOCK_OFFSET_SECONDS=offset(CHECK_DAY)).start(wait=False)
            for proc in system.procs.values():
                if proc.metrics_port:
                    proc.wait_healthy(timeout=180)
            site = Site(system, spot)
            setup_school(system, enrolment, "SC1", ZMD, YICHENG)
            setup_school(system, enrolment, "SC2", ZMD, XIPING)
            status, body = enrolment.api("POST", "/schools", {
                "school_id": "SC4", "name": "省直属学校", "city": "郑州市", "county": "金水区",
                "directly_administered": True}, token=system.token("operations", sub="operations:ops-1"))
            assert status == 201, body
            site.t1 = setup_terminal(system, enrolment, "T1", "SC1")
            site.t2 = setup_terminal(system, enrolment, "T2", "SC2")
            register_student(system, enrolment, "A0001", 1, "SC1")
            register_student(system, enrolment, "B0001", 2, "SC2")
            register_student(system, enrolment, "D0001", 3, "SC4")
            status, body = enrolment.api("POST", "/enrolments", {
                "student_id": "A0001", "frames": [photo(f"obama_{i}.jpg") for i in (1, 2, 3)],
                "id_photo": photo("obama_4.jpg")}, token=site.t1)
            assert status == 202, body
            wait_for(lambda: site.rows("SELECT payload->>'mode' FROM events WHERE type = 'StudentEnrolled'")
                     == [("verified",)], timeout=180, what="A0001 enrolled")
            yield site
        finally:
            system.stop_all()


def refused(answer: tuple[int, Any]) -> tuple[int, str]:
    status, body = answer
    return status, body.get("error") if isinstance(body, dict) else body


def subject(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


@pytest.fixture(scope="module")
def check(site: Site) -> str:
    """A routine check of SC1 and SC2 opened by the province."""
    status, body = site.open(site.province, school_ids=["SC1", "SC2"])
    assert status == 201, body
    assert (body["kind"], body["initiated_by"], body["month"], body["schools"]) == ("routine", "province",
                                                                                   "2026-10", 2)
    return str(body["check_id"])


def test_the_verdict_of_a_real_capture_is_awaited_with_its_reasons_in_chinese_and_english(site: Site,
                                                                                         check: str) -> None:
    status, body = site.capture(check, site.app_a, "A0001", SOMEONE_ELSE, attempt=1)
    assert (status, body["status"]) == (202, "submitted"), body
    capture_id = body["capture_id"]

    # several long polls at once do not hold up other requests (the service runs under eventlet)
    answers: list[tuple[int, Any]] = []
    polls = [threading.Thread(target=lambda: answers.append(site.verdict(capture_id, site.app_a)))
             for _ in range(3)]
    for poll in polls:
        poll.start()
    started = time.monotonic()
    assert site.spot.api("GET", "/openapi.json")[0] == 200
    assert refused(site.open(site.county, school_ids=[])) == (422, "INVALID_REQUEST")
    assert time.monotonic() - started < 2.0
    for poll in polls:
        poll.join(timeout=60)
    assert len(answers) == 3 and all(a == answers[0] for a in answers)

    status, verdict = answers[0]
    assert status == 200, verdict
    assert (verdict["capture_id"], verdict["status"], verdict["channel"]) == (capture_id, "rejected", "app")
    assert (verdict["student_id"], verdict["school_id"], verdict["check_id"]) == ("A0001", "SC1", check)
    codes = [r["code"] for r in verdict["reasons"]]
    assert "NO_MATCH" in codes and verdict["decided_at"]
    for reason in verdict["reasons"]:
        assert (reason["message_zh"], reason["message_en"]) == describe(reason["code"])
        assert any("\u4e00" <= ch <= "\u9fff" for ch in reason["message_zh"]) and reason["message_en"]

    # a genuine check-in at the school's terminal is verified
    status, body = site.capture(check, site.t1, "A0001", attempt=2)
    assert status == 202, body
    status, verdict = site.verdict(body["capture_id"], site.t1)
    assert (status, verdict["status"], verdict["reasons"]) == (200, "verified", [])
    assert verdict["channel"] == "terminal"
    assert verdict["attempt"] == 2

    # who may read a verdict: the school, its terminal, the student, authorities in area, auditors
    for token, expected in ((site.staff1, 200), (site.county, 200), (site.city, 200), (site.province, 200),
                            (site.auditor, 200), (site.staff2, 403), (site.t2, 403), (site.other_county, 403),
                            (site.system.token("student", student="B0001"), 403)):
        assert site.spot.api("GET", f"/captures/{capture_id}", token=token)[0] == expected, subject(token)
    assert refused(site.spot.api("GET", "/captures/nope", token=site.auditor)) == (404, "UNKNOWN_CAPTURE")
    readers = site.rows("SELECT DISTINCT caller FROM personal_data_reads WHERE student_id = 'A0001'"
                        " AND service = 'spotcheck'")
    assert (subject(site.auditor),) in readers

    # the actor of each capture is the caller's credential
    actors = site.rows("SELECT actor->>'kind', actor->>'id' FROM events WHERE type = 'CaptureSubmitted'"
                       " AND payload->>'purpose' = 'spot_check' ORDER BY position")
    assert actors[:2] == [("student", subject(site.app_a)), ("terminal", subject(site.t1))]


def test_terminals_and_app_tokens_capture_only_for_their_own_students(site: Site, check: str) -> None:
    before = (site.blobs(), site.count("CaptureSubmitted"))
    assert refused(site.capture(check, site.t1, "B0001")) == (403, "OUTSIDE_AREA")
    assert refused(site.capture(check, site.t2, "A0001")) == (403, "OUTSIDE_AREA")
    assert refused(site.capture(check, site.app_a, "B0001")) == (403, "OUTSIDE_AREA")
    assert refused(site.capture(check, site.staff1, "A0001")) == (403, "ROLE_FORBIDDEN")
    assert refused(site.capture(check, site.t1, "NOPE1")) == (404, "UNKNOWN_STUDENT")
    assert refused(site.capture("nope", site.t1, "A0001")) == (404, "UNKNOWN_CHECK")
    assert refused(site.capture(check, site.t2, "B0001")) == (409, "NOT_ENROLLED")  # never captured
    assert refused(site.capture(check, site.t1, "A0001", channel="terminal")) == (422, "INVALID_REQUEST")
    assert refused(site.capture(check, site.t1, "A0001", school_id="SC1")) == (422, "INVALID_REQUEST")
    assert (site.blobs(), site.count("CaptureSubmitted")) == before  # a refused capture stores no photo


def test_who_opens_checks_for_which_schools(site: Site) -> None:
    targeted = {"kind": "targeted", "student_ids": ["D0001"]}
    assert refused(site.open(site.county, **targeted)) == (403, "TARGETED_BY_PROVINCE")
    assert refused(site.open(site.city, **targeted)) == (403, "TARGETED_BY_PROVINCE")
    assert refused(site.open(site.county, school_ids=["SC2"])) == (403, "OUTSIDE_AREA")
    assert refused(site.open(site.county, school_ids=["SC1", "SC2"])) == (403, "OUTSIDE_AREA")
    assert refused(site.open(site.city, school_ids=["SC4"])) == (403, "OUTSIDE_AREA")
    assert refused(site.open(site.county, school_ids=["SC9"])) == (404, "UNKNOWN_SCHOOL")
    assert refused(site.open(site.county)) == (400, "SCHOOLS_REQUIRED")
    assert refused(site.open(site.county, school_ids=[])) == (422, "INVALID_REQUEST")
    assert refused(site.open(site.province, school_ids=[])) == (422, "INVALID_REQUEST")
    assert refused(site.open(site.staff1, school_ids=["SC1"])) == (403, "ROLE_FORBIDDEN")
    assert refused(site.open(site.province, kind="targeted", student_ids=["A0001"])) == (
        400, "NOT_DIRECTLY_ADMINISTERED")
    assert refused(site.open(site.province, opens_at="2026-10-22T09:00:00+08:00")) == (400, "BAD_WINDOW")
    assert refused(site.open(site.province, opens_at="2026-10-23T10:00:00+08:00",
                             closes_at="2026-10-23T15:00:00+08:00")) == (409, "NOT_TODAY")
    opened = site.count("CheckOpened")

    status, body = site.open(site.province, **targeted)
    assert (status, body["kind"], body["students"], body["schools"]) == (201, "targeted", 1, None), body
    status, by_county = site.open(site.county, school_ids=["SC1"])
    assert (status, by_county["initiated_by"]) == (201, "county"), by_county
    status, everyone = site.open(site.province)
    assert (status, everyone["schools"]) == (201, None), everyone
    assert site.count("CheckOpened") == opened + 3
    actors = site.rows("SELECT actor->>'id' FROM events WHERE type = 'CheckOpened'"
                       " AND payload->>'check_id' = %s", by_county["check_id"])
    assert actors == [(subject(site.county),)]

    # closed by the level that opened it (in its area) or the province
    close = f"/checks/{by_county['check_id']}/close"
    assert refused(site.spot.api("POST", close, token=site.other_county)) == (403, "OUTSIDE_AREA")
    assert refused(site.spot.api("POST", close, token=site.city)) == (403, "NOT_CHECK_OWNER")
    assert site.spot.api("POST", close, token=site.county)[0] == 200
    assert refused(site.spot.api("POST", close, token=site.province)) == (409, "ALREADY_CLOSED")
    assert refused(site.spot.api("POST", f"/checks/{everyone['check_id']}/close", token=site.county)) == (
        403, "NOT_CHECK_OWNER")
    assert site.spot.api("POST", f"/checks/{everyone['check_id']}/close", token=site.province)[0] == 200


def test_bad_input_is_refused_with_a_code_and_never_a_500(site: Site, check: str) -> None:
    for body in ({"school_ids": 1.5}, {"school_ids": ["SC\x001"]}, {"opens_at": "0001-10-22T10:00:00+08:00"},
                 {"closes_at": "9999-10-22T15:00:00+08:00"}, {"opens_at": "2026-10-22T10:00:00"},
                 {"kind": "surprise"}, {"initiated_by": "province"}, {"student_ids": "A0001"},
                 {"school_ids": ["SC1"] * 5001}):
        status, answer = site.open(site.province, **body)
        assert (status, answer["error"]) == (422, "INVALID_REQUEST"), (body, answer)
        assert answer["fields"] and all(f["path"].startswith("body.") for f in answer["fields"])
    for extra in ({"attempt": "abc"}, {"attempt": 0}, {"attempt": 11}, {"student_id": "A\x000001"},
                  {"frames": []}, {"frames": ["not base64!"]}, {"frames": "abc"}):
        body = {"student_id": "A0001", "frames": [photo("obama_1.jpg")], **extra}
        status, answer = site.spot.api("POST", f"/checks/{check}/captures", body, token=site.t1)
        assert (status, answer["error"]) == (422, "INVALID_REQUEST"), (extra, answer)
    absences = f"/checks/{check}/absences"
    for body in ({"student_id": "A0001", "reason": "leave\x00"},
                 {"student_id": "A0001", "reason": "leave", "reported_at": "9999-12-31T10:00:00+08:00"},
                 {"student_id": "A0001", "reason": "leave", "reported_at": "0001-01-01T10:00:00+08:00"}):
        assert refused(site.spot.api("POST", absences, body, token=site.staff1)) == (422, "INVALID_REQUEST")
    publish = {"school_id": "SC1", "month": "2026-13"}
    assert refused(site.spot.api("POST", "/results/publish", publish, token=site.staff1)) == (
        422, "INVALID_REQUEST")
    for month in ("0001-10", "9999-10", "2026-1", "2026-10\x00"):
        body = {"school_id": "SC1", "month": month}
        answer = site.spot.api("POST", "/results/publish", body, token=site.staff1)
        assert refused(answer) == (422, "INVALID_REQUEST"), month
    deep = b'{"student_id": "A0001", "frames": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    status, answer = site.raw("POST", f"/checks/{check}/captures", deep, site.t1)
    assert 400 <= status < 500 and answer["error"], answer
    assert refused(site.raw("POST", "/checks", b'{"opens_at": ', site.province)) == (400, "MALFORMED_JSON")
    for query in ("wait=abc", "wait=31", "wait=-1", "other=1"):
        answer = site.spot.api("GET", f"/captures/x1?{query}", token=site.auditor)
        assert refused(answer) == (422, "INVALID_REQUEST"), query
    assert refused(site.spot.api("GET", "/captures/a%00b", token=site.auditor)) == (422, "INVALID_REQUEST")
    answer = site.spot.api("POST", "/checks/a%00b/close", token=site.province)
    assert refused(answer) == (422, "INVALID_REQUEST")
    assert site.rows("SELECT count(*) FROM events WHERE type = 'CheckOpened'"
                     " AND payload->>'opens_at' LIKE %s", "0001%") == [(0,)]
    errors = [line for line in site.spot.metrics().splitlines()
              if line.startswith("aid_http_requests_total") and 'status="500"' in line
              and not line.endswith(" 0.0")]
    assert not errors, errors


def test_the_same_idempotency_key_twice_records_one_capture_and_gives_the_same_answer(site: Site,
                                                                                     check: str) -> None:
    before = site.count("CaptureSubmitted")
    body = {"student_id": "A0001", "frames": [photo(f) for f in GENUINE], "attempt": 1}
    path, key = f"/checks/{check}/captures", {"Idempotency-Key": "kiosk-T1-0001"}
    first = site.spot.api("POST", path, body, token=site.t1, headers=key)
    second = site.spot.api("POST", path, body, token=site.t1, headers=key)
    assert first[0] == 202 and first == second, (first, second)
    assert site.count("CaptureSubmitted") == before + 1
    assert refused(site.spot.api("POST", path, {**body, "attempt": 2}, token=site.t1, headers=key)) == (
        422, "IDEMPOTENCY_KEY_REUSED")
    assert site.count("CaptureSubmitted") == before + 1


def test_a_forced_pass_needs_three_failed_confirmations_at_the_terminal(site: Site) -> None:
    status, body = site.open(site.province, school_ids=["SC1"])
    assert status == 201, body
    check = body["check_id"]
    forced = f"/checks/{check}/forced-passes"
    evidence = {"student_id": "A0001", "evidence_photo": photo("obama_small.jpg")}  # a new photo
    blobs = site.blobs()
    assert refused(site.spot.api("POST", forced, evidence, token=site.t1)) == (409, "FORCED_PASS_TOO_EARLY")
    assert site.blobs() == blobs  # the refused evidence photo is not kept
    assert refused(site.spot.api("POST", forced, evidence, token=site.staff1)) == (403, "ROLE_FORBIDDEN")
    assert refused(site.spot.api("POST", forced, evidence, token=site.t2)) == (403, "OUTSIDE_AREA")

    # an app rejection does not count; three rejected terminal confirmations do
    for attempt, (token, channel) in enumerate([(site.app_a, "app")] + [(site.t1, "terminal")] * 3, start=1):
        status, body = site.capture(check, token, "A0001", SOMEONE_ELSE, attempt=attempt)
        assert status == 202, body
        status, verdict = site.verdict(body["capture_id"], token)
        assert (status, verdict["status"], verdict["channel"]) == (200, "rejected", channel), verdict
        if attempt < 4:
            answer = site.spot.api("POST", forced, evidence, token=site.t1)
            assert refused(answer) == (409, "FORCED_PASS_TOO_EARLY")
    status, body = site.spot.api("POST", forced, evidence, token=site.t1)
    assert (status, body) == (201, {"check_id": check, "student_id": "A0001", "forced_pass": True,
                                    "attempts": 3})
    assert refused(site.spot.api("POST", forced, evidence, token=site.t1)) == (409, "ALREADY_FORCED")
    (recorded,) = site.rows("SELECT actor->>'id', payload FROM events WHERE type = 'ForcedPassRecorded'")
    assert recorded[0] == subject(site.t1) and recorded[1]["terminal_id"] == "T1"
    assert recorded[1]["evidence_ref"].startswith("blob:") and site.blobs() == blobs + 1


def test_absences_are_marked_by_the_school_of_the_student(site: Site, check: str) -> None:
    path = f"/checks/{check}/absences"
    leave = {"student_id": "A0001", "reason": "leave", "reported_at": "2026-10-22T10:05:00+08:00"}
    assert refused(site.spot.api("POST", path, leave, token=site.staff2)) == (403, "OUTSIDE_AREA")
    assert refused(site.spot.api("POST", path, leave, token=site.t1)) == (403, "ROLE_FORBIDDEN")
    late = {**leave, "reported_at": "2026-10-22T23:00:00+08:00"}  # the service's clock says about 11:00
    assert refused(site.spot.api("POST", path, late, token=site.staff1)) == (400, "BAD_TIME")
    status, body = site.spot.api("POST", path, leave, token=site.staff1)
    assert (status, body) == (201, {"check_id": check, "student_id": "A0001", "reason": "leave",
                                    "warnings": []})
    internship = {"student_id": "A0001", "reason": "shadowing_internship"}
    assert site.spot.api("POST", path, internship, token=site.staff1)[0] == 201
    recorded = site.rows("SELECT actor->>'kind', actor->>'id', actor->>'school', payload->>'reported_at'"
                         " FROM events WHERE type = 'AbsenceMarked' ORDER BY position")
    assert [r[:3] for r in recorded] == [("school", subject(site.staff1), "SC1")] * 2
    assert recorded[0][3] == "2026-10-22T10:05:00+08:00" and recorded[1][3].startswith("2026-10-22T")


def test_month_results_are_published_once_by_the_school(site: Site) -> None:
    body = {"school_id": "SC1", "month": "2026-10"}

    def publish(token: str, **over: str) -> tuple[int, Any]:
        return site.spot.api("POST", "/results/publish", {**body, **over}, token=token)

    assert refused(publish(site.staff2)) == (403, "OUTSIDE_AREA")
    assert refused(publish(site.county)) == (403, "ROLE_FORBIDDEN")
    assert refused(publish(site.staff1, month="2026-11")) == (409, "MONTH_NOT_STARTED")
    assert refused(publish(site.staff1, school_id="SC9")) == (404, "UNKNOWN_SCHOOL")
    # objections until the 5th working day after Thursday Oct 22: Thursday Oct 29
    assert publish(site.staff1) == (201, {**body, "published_on": "2026-10-22",
                                          "objection_ends_on": "2026-10-29"})
    assert refused(publish(site.staff1)) == (409, "ALREADY_PUBLISHED")
    streams = site.rows("SELECT stream, actor->>'id' FROM events WHERE type = 'MonthResultsPublished'")
    assert streams == [("results-SC1-2026-10", subject(site.staff1))]
