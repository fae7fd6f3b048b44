"""Issue 9 over the real services (relay, enrolment, spotcheck, eligibility), issuer, RabbitMQ and
PostgreSQL: a student's leaving recorded by the school or operations (refusals: another school's
student, an unknown one, a day to come, a second leaving), shown by the student view and stopping
aid from the next month; a school's monthly results list as JSON, CSV and XLSX, masked, a draft
before the publication and published after it, with the objection window's last working day."""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
from openpyxl import load_workbook

from contracts.calendar import local_date
from contracts.identity import mask_id_number, mask_name
from contracts.workdays import load_work_calendar, objection_window_end
from services.eligibility.results import HEADER
from tests import flows
from tests.support import System, wait_for

pytestmark = pytest.mark.integration
ZMD, YICHENG, XIPING = "驻马店市", "驿城区", "西平县"


def rows(system: System, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(system.database_url) as conn:
        return list(conn.execute(query, params).fetchall())


def test_leaving_and_the_monthly_results_list(system: System) -> None:
    system.relay().start()
    names = ("enrolment", "spotcheck", "eligibility")
    procs = {name: system.service(name).start(wait=False) for name in names}
    for proc in procs.values():
        proc.wait_healthy(timeout=120)
    enrolment, spot, eligibility = procs["enrolment"], procs["spotcheck"], procs["eligibility"]
    flows.setup_school(system, enrolment, "SC1", ZMD, YICHENG)
    flows.setup_school(system, enrolment, "SC2", ZMD, XIPING)
    for student_id, seq, school in (("A0001", 1, "SC1"), ("A0002", 2, "SC1"), ("B0001", 3, "SC2")):
        flows.register_student(system, enrolment, student_id, seq, school)
    staff, other_staff = flows.school_token(system, "SC1"), flows.school_token(system, "SC2")
    operations = flows.operations_token(system)
    terminal = flows.setup_terminal(system, enrolment, "T1", "SC1")
    today = local_date(datetime.now(UTC))

    # ---------------------------------------------------------------- leaving
    leave = {"reason": "withdrawn", "left_on": "2026-11-05"}
    status, body = enrolment.api("POST", "/students/A0001/leave", leave, token=other_staff)
    assert (status, body["error"]) == (403, "OUTSIDE_AREA")
    status, body = enrolment.api("POST", "/students/A0001/leave", leave, token=terminal)
    assert (status, body["error"]) == (403, "ROLE_FORBIDDEN")
    status, body = enrolment.api("POST", "/students/NOPE1/leave", leave, token=staff)
    assert (status, body["error"]) == (404, "UNKNOWN_STUDENT")
    status, body = enrolment.api("POST", "/students/A0001/leave", {**leave, "left_on": "2099-01-01"},
                                 token=staff)
    assert (status, body["error"]) == (422, "BAD_DATE")
    status, body = enrolment.api("POST", "/students/A0001/leave", {**leave, "reason": "expelled"},
                                 token=staff)
    assert (status, body["error"]) == (422, "INVALID_REQUEST")
    status, body = enrolment.api("POST", "/students/A0001/leave", leave, token=staff)
    assert status == 201, body
    assert body == {"student_id": "A0001", "school_id": "SC1", "reason": "withdrawn", "left_on": "2026-11-05",
                    "to_school_id": None, "aid_stops_from": "2026-12"}
    status, body = enrolment.api("POST", "/students/A0001/leave", leave, token=staff)
    assert (status, body["error"]) == (409, "ALREADY_LEFT")
    status, body = enrolment.api("POST", "/students/B0001/leave", {
        "reason": "transferred", "left_on": today.isoformat(), "to_school_id": "SC1"}, token=operations)
    assert status == 201 and body["to_school_id"] == "SC1", body
    status, body = enrolment.api("GET", "/students/A0001", token=staff)
    assert (body["left_on"], body["leaving_reason"], body["to_school_id"]) == (
        "2026-11-05", "withdrawn", None)
    recorded = rows(system, "SELECT stream, payload FROM events WHERE type = 'StudentLeft' ORDER BY position")
    assert recorded == [
        ("student-A0001", {"student_id": "A0001", "school_id": "SC1", "reason": "withdrawn",
                           "left_on": "2026-11-05", "to_school_id": None}),
        ("student-B0001", {"student_id": "B0001", "school_id": "SC2", "reason": "transferred",
                           "left_on": today.isoformat(), "to_school_id": "SC1"}),
    ]

    # ---------------------------------------------------------------- eligibility: aid stops from December
    province = flows.province_token(system)

    def a0001() -> dict[str, Any] | None:
        status, body = eligibility.api("GET", "/students/A0001?semester=2026-autumn", token=province)
        if status != 200:
            return None
        (st,) = body["statuses"]
        return st if any(m["status"] == "left_school" for m in st["months"]) else None

    st = wait_for(a0001, timeout=60, what="the leaving in the eligibility projection")
    grant = {g["month"]: g for g in st["grant"]}
    assert [grant[m]["rules"][0]["rule"] for m in ("2026-12", "2027-01")] == ["left_school", "left_school"]
    assert all(r["rule"] != "left_school"
               for m in ("2026-09", "2026-10", "2026-11") for r in grant[m]["rules"])

    # ---------------------------------------------------------------- the results list, a draft
    path = "/schools/SC1/results/2026-12"
    wait_for(lambda: len(eligibility.api("GET", path, token=staff)[1].get("rows", [])) == 2, timeout=60,
             what="both SC1 students in the projection")
    status, draft = eligibility.api("GET", path, token=staff)
    assert status == 200, draft
    assert (draft["state"], draft["published_on"], draft["objection_ends_on"]) == ("draft", None, None)
    assert draft["header"] == list(HEADER)
    masked = {(r["name_masked"], r["id_number_masked"]) for r in draft["rows"]}
    assert masked == {(mask_name("测试学生"), mask_id_number(flows.id_number(1))),
                      (mask_name("测试学生"), mask_id_number(flows.id_number(2)))}
    by_id = {r["id_number_masked"]: r for r in draft["rows"]}
    left_row = by_id[mask_id_number(flows.id_number(1))]
    assert (left_row["class_name"], left_row["check_result"], left_row["aid_outcome"]) == (
        "会计2班", "已离校", "不予资助（已离校）")
    assert by_id[mask_id_number(flows.id_number(2))]["check_result"] == "本月未抽查"
    assert draft["content_base64"] is None and draft["filename"] is None

    # who may read it
    assert eligibility.api("GET", path, token=other_staff)[1]["error"] == "OUTSIDE_AREA"
    assert eligibility.api("GET", path, token=system.token("county", city=ZMD, county=XIPING))[0] == 403
    assert eligibility.api("GET", path, token=system.token("student", student="A0002"))[0] == 403
    readers = {"county": system.token("county", city=ZMD, county=YICHENG),
               "city": system.token("city", city=ZMD), "auditor": system.token("auditor")}
    for role, token in readers.items():
        assert eligibility.api("GET", path, token=token)[0] == 200, role
    assert eligibility.api("GET", "/schools/SC1/results/2026-13", token=staff)[0] == 422
    assert eligibility.api("GET", path + "?format=pdf", token=staff)[0] == 422

    # ---------------------------------------------------------------- published: the window's last day
    status, published = spot.api("POST", "/results/publish", {"school_id": "SC1", "month": "2026-11"},
                                 token=staff)
    assert status == 201, published
    published_on = date.fromisoformat(published["published_on"])
    expected_end = objection_window_end(load_work_calendar(), published_on, 5)
    assert published["published_on"] == today.isoformat()
    assert published["objection_ends_on"] == expected_end.isoformat()
    status, listed = eligibility.api("GET", "/schools/SC1/results/2026-11?format=xlsx", token=staff)
    assert status == 200, listed
    assert (listed["state"], listed["published_on"], listed["objection_ends_on"]) == (
        "published", today.isoformat(), expected_end.isoformat())
    assert listed["filename"] == "抽查结果公示名单-SC1-2026-11.xlsx"
    sheet = load_workbook(io.BytesIO(base64.b64decode(listed["content_base64"]))).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert expected_end.isoformat() in str(values[0][0])
    assert values[1] == list(HEADER)
    assert sorted(v[3] for v in values[2:]) == sorted(mask_id_number(flows.id_number(s)) for s in (1, 2))
    text = repr(values)
    assert flows.id_number(1) not in text and "测试学生" not in text

    status, as_csv = eligibility.api("GET", "/schools/SC1/results/2026-11?format=csv", token=province)
    assert status == 200 and as_csv["filename"].endswith(".csv")
    raw = base64.b64decode(as_csv["content_base64"])
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[1] == list(HEADER) and len(table) == 4
    assert {row[4] for row in table[2:]} == {"本月未抽查"}  # November: no check was held
    assert flows.id_number(2) not in raw.decode("utf-8-sig")
    # December is still a draft: publications are per month
    assert eligibility.api("GET", path, token=staff)[1]["state"] == "draft"


def test_a_check_missed_while_away_on_an_internship_is_decided_by_its_plan(system: System) -> None:
    """Spotcheck's plan, departure and check over the real services; eligibility links them: a plan
    filed 7 days before departure fails the check (internship_filed_late, the semester suspended),
    one filed 22 days before excuses it, without any absence marked."""

    def offset(at: str) -> str:
        return str((datetime.fromisoformat(at) - datetime.now(UTC)).total_seconds())

    system.relay().start()
    enrolment = system.service("enrolment", AID_CLOCK_OFFSET_SECONDS=offset("2026-09-10T11:00:00+08:00"))
    spot = system.service("spotcheck", AID_CLOCK_OFFSET_SECONDS=offset("2026-11-12T11:00:00+08:00"))
    procs = [enrolment.start(wait=False), spot.start(wait=False),
             system.service("eligibility").start(wait=False)]
    for proc in procs:
        proc.wait_healthy(timeout=120)
    eligibility = procs[2]
    flows.setup_school(system, enrolment, "SC1", ZMD, YICHENG)
    staff, province = flows.school_token(system, "SC1"), flows.province_token(system)
    plans = {"A0001": "2026-10-25", "A0002": "2026-10-10"}  # 7 and 22 days before departure
    for seq, (student_id, filed_on) in enumerate(plans.items(), start=1):
        flows.register_student(system, enrolment, student_id, seq, "SC1")
        evidence = base64.b64encode(b"\xff\xd8\xff\xe0" + b"evidence" * 20).decode()
        status, body = enrolment.api("POST", "/enrolments/evidence",
                                     {"student_id": student_id, "evidence_photo": evidence}, token=staff)
        assert status == 201, body  # enrolled (evidence filed) before the capture deadline
        status, plan = spot.api("POST", "/internships", {
            "student_id": student_id, "kind": "shadowing", "starts_on": "2026-11-01", "ends_on": "2027-01-31",
            "education_filed_on": filed_on, "aid_authority_filed_on": filed_on}, token=staff)
        assert status == 201 and plan["filed_late"] is (student_id == "A0001"), plan
        status, body = spot.api("POST", f"/internships/{plan['plan_id']}/departed", {"on": "2026-11-01"},
                                token=staff)
        assert status == 200, body
        plans[student_id] = plan["plan_id"]
    status, check = spot.api("POST", "/checks", {"opens_at": "2026-11-12T10:00:00+08:00",
                                                 "closes_at": "2026-11-12T15:00:00+08:00",
                                                 "school_ids": ["SC1"]}, token=province)
    assert status == 201, check
    assert spot.api("POST", f"/checks/{check['check_id']}/close", token=province)[0] == 200

    def november(student_id: str) -> dict[str, Any] | None:
        status, body = eligibility.api("GET", f"/students/{student_id}?semester=2026-autumn", token=province)
        if status != 200:
            return None
        (st,) = body["statuses"]
        month = next(m for m in st["months"] if m["month"] == "2026-11")
        return {"status": st, "month": month} if month["checks"] and month["outcome"] != "pending" else None

    late = wait_for(lambda: november("A0001"), timeout=60, what="A0001's November in the projection")
    (result,) = late["month"]["checks"]
    assert (result["result"], result["reason"]) == ("failed", "internship_filed_late")
    assert late["status"]["suspension"]["rule"] == "unfiled_internship"
    assert any(plans["A0001"] in note and "filed late" in note for note in late["month"]["notes"])
    in_time = wait_for(lambda: november("A0002"), timeout=60, what="A0002's November in the projection")
    assert (in_time["month"]["outcome"], in_time["month"]["excuse"]) == ("passed", "shadowing_internship")
    assert in_time["status"]["suspension"] is None
    status, listed = eligibility.api("GET", "/schools/SC1/results/2026-11", token=staff)
    assert status == 200, listed
    assert {r["check_result"] for r in listed["rows"]} == {
        "通过（跟岗实习）", "未通过（实习计划未在外出实习15日前备案）"}
