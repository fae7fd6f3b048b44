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
    for role in ("county", "city", "auditor"):
        area = {"county": {"city": ZMD, "county": YICHENG}, "city": {"city": ZMD}, "auditor": {}}[role]
        assert eligibility.api("GET", path, token=system.token(role, **area))[0] == 200, role
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
