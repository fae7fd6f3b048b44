"""Internship plans and placement internships over the real enrolment and spotcheck services,
issuer and PostgreSQL: a plan filed late is accepted with a warning, departure and return are
events; a placement confirmed at the terminal, a first-year student refused (409) with the
refusal recorded, an update and an early end by the school; Attachment 2 as an XLSX workbook in
the seed's column order with masked values only."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from openpyxl import load_workbook

from contracts.identity import mask_id_number, mask_name
from services.spotcheck.internships import ATTACHMENT2_HEADER
from tests import flows
from tests.support import System

pytestmark = pytest.mark.integration
TODAY = datetime.fromisoformat("2026-09-02T11:00:00+08:00")
ZMD, YICHENG, XIPING = "驻马店市", "驿城区", "西平县"


def rows(system: System, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(system.database_url) as conn:
        return list(conn.execute(query, params).fetchall())


def test_internship_plans_placements_and_attachment2(system: System) -> None:
    enrolment = system.service("enrolment").start(wait=False)
    offset = str((TODAY - datetime.now(UTC)).total_seconds())
    spot = system.service("spotcheck", AID_CLOCK_OFFSET_SECONDS=offset).start(wait=False)
    enrolment.wait_healthy(timeout=120)
    spot.wait_healthy(timeout=120)
    flows.setup_school(system, enrolment, "SC1", ZMD, YICHENG)
    flows.setup_school(system, enrolment, "SC2", ZMD, XIPING)
    terminal = flows.setup_terminal(system, enrolment, "T1", "SC1")
    flows.register_student(system, enrolment, "A0001", 1, "SC1")
    status, body = enrolment.api("POST", "/students", flows.student_body("F0001", 2, "SC1", grade=1),
                                 token=flows.school_token(system, "SC1"))
    assert status == 201, body
    staff, other_staff = flows.school_token(system, "SC1"), flows.school_token(system, "SC2")

    # an internship plan of 3 full months, both filings 14 and 13 days before departure: late
    plan = {"student_id": "A0001", "kind": "shadowing", "starts_on": "2026-09-01", "ends_on": "2026-11-30",
            "education_filed_on": "2026-08-18", "aid_authority_filed_on": "2026-08-19"}
    assert spot.api("POST", "/internships", plan, token=other_staff)[1]["error"] == "OUTSIDE_AREA"
    assert spot.api("POST", "/internships", plan, token=terminal)[1]["error"] == "ROLE_FORBIDDEN"
    status, body = spot.api("POST", "/internships", {**plan, "ends_on": "2026-11-29"}, token=staff)
    assert (status, body["error"]) == (400, "PLAN_NOT_REQUIRED")
    status, filed = spot.api("POST", "/internships", plan, token=staff)
    assert status == 201, filed
    assert (filed["filed_on"], filed["filed_late"]) == ("2026-08-19", True)
    assert len(filed["warnings"]) == 1 and filed["warnings"][0].startswith("LATE_FILING")
    (payload,) = [r[0] for r in rows(system, "SELECT payload FROM events WHERE type = 'InternshipPlanFiled'")]
    assert (payload["education_filed_on"], payload["aid_authority_filed_on"], payload["filed_late"]) == (
        "2026-08-18", "2026-08-19", True)

    plan_id = filed["plan_id"]
    status, body = spot.api("POST", f"/internships/{plan_id}/returned", {"on": "2026-09-02"}, token=staff)
    assert (status, body["error"]) == (409, "NOT_DEPARTED")
    status, body = spot.api("POST", f"/internships/{plan_id}/departed", {"on": "2026-09-01"}, token=staff)
    assert (status, body["departed_on"], body["returned_on"]) == (200, "2026-09-01", None), body
    assert spot.api("POST", f"/internships/{plan_id}/departed", {"on": "2026-09-01"},
                    token=other_staff)[0] == 404  # another school has no such plan
    status, body = spot.api("POST", f"/internships/{plan_id}/returned", {"on": "2026-09-02"}, token=staff)
    assert (status, body["returned_on"]) == (200, "2026-09-02"), body
    moves = rows(system, "SELECT type, payload->>'plan_id', payload->>'student_id', payload->>'school_id'"
                         " FROM events WHERE type IN ('InternshipDeparted', 'InternshipReturned')"
                         " ORDER BY position")
    assert moves == [("InternshipDeparted", plan_id, "A0001", "SC1"),
                     ("InternshipReturned", plan_id, "A0001", "SC1")]

    # a placement internship confirmed at the school's terminal
    placement = {"student_id": "A0001", "company": "郑州宇通客车股份有限公司",
                 "location": "河南省郑州市管城区宇通路6号", "supervisor": "李建国",
                 "supervisor_contact": "13812345678",
                 "starts_on": "2026-09-10", "ends_on": "2027-01-15", "remark": "首批"}
    assert spot.api("POST", "/placements", placement, token=staff)[1]["error"] == "ROLE_FORBIDDEN"
    status, body = spot.api("POST", "/placements", {k: v for k, v in placement.items() if k != "location"},
                            token=terminal)
    assert (status, body["error"]) == (422, "INVALID_REQUEST")
    status, confirmed = spot.api("POST", "/placements", placement, token=terminal)
    assert status == 201, confirmed
    assert (confirmed["grade"], confirmed["class_name"], confirmed["supervisor_contact_masked"]) == (
        2, "会计2班", "138****5678")
    actor = rows(system, "SELECT actor->>'kind', actor->>'id', payload->>'filed_on' FROM events"
                         " WHERE type = 'PlacementConfirmed'")
    assert actor == [("terminal", "terminal:T1", "2026-09-02")]

    # a first-year student: refused, and the refusal recorded
    status, body = spot.api("POST", "/placements", {**placement, "student_id": "F0001"}, token=terminal)
    assert (status, body["error"]) == (409, "FIRST_YEAR")
    refusals = rows(system, "SELECT payload->>'student_id', payload->>'reason', (payload->>'grade')::int,"
                            " payload->>'terminal_id' FROM events WHERE type = 'PlacementRefused'")
    assert refusals == [("F0001", "FIRST_YEAR", 1, "T1")]
    assert rows(system, "SELECT count(*) FROM events WHERE type = 'PlacementConfirmed'") == [(1,)]

    # the school updates it, then ends it early
    pid = confirmed["placement_id"]
    status, body = spot.api("POST", f"/placements/{pid}/update",
                            {"company": "宇通重工有限公司", "supervisor_contact": "13900001111"}, token=staff)
    assert (status, body["company"], body["supervisor_contact_masked"]) == (200, "宇通重工有限公司",
                                                                            "139****1111")
    assert spot.api("POST", f"/placements/{pid}/update", {"company": "x"}, token=terminal)[0] == 403
    assert spot.api("POST", f"/placements/{pid}/end", {"ended_on": "2026-10-20"}, token=other_staff)[0] == 404
    status, body = spot.api("POST", f"/placements/{pid}/end", {"ended_on": "2026-10-20"}, token=staff)
    assert (status, body["ended_on"]) == (200, "2026-10-20"), body
    status, body = spot.api("POST", f"/placements/{pid}/end", {"ended_on": "2026-10-19"}, token=staff)
    assert (status, body["error"]) == (409, "PLACEMENT_ENDED")
    changes = rows(system, "SELECT type, payload FROM events"
                           " WHERE type IN ('PlacementUpdated', 'PlacementEnded') ORDER BY position")
    assert changes == [
        ("PlacementUpdated", {"placement_id": pid, "student_id": "A0001",
                              "changes": {"company": "宇通重工有限公司",
                                          "supervisor_contact_masked": "139****1111"}}),
        ("PlacementEnded", {"placement_id": pid, "student_id": "A0001", "ended_on": "2026-10-20"}),
    ]

    # Attachment 2 of October: who may read it, and what it holds
    path = "/schools/SC1/placements/2026-10/attachment2"
    for token, expected in ((staff, 200), (system.token("county", city=ZMD, county=YICHENG), 200),
                            (system.token("city", city=ZMD), 200), (system.token("auditor"), 200),
                            (other_staff, 403), (system.token("county", city=ZMD, county=XIPING), 403),
                            (terminal, 403)):
        assert spot.api("GET", path, token=token)[0] == expected, spot.log_tail(3000)
    status, body = spot.api("GET", path, token=staff)
    assert status == 200 and body["rows"] == 1 and body["filename"].endswith(".xlsx")
    content = base64.b64decode(body["content_base64"])
    sheet = load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert values[1] == ATTACHMENT2_HEADER
    assert values[2] == (1, "测试中等职业学校SC1", ZMD, YICHENG, mask_name("测试学生"),
                         mask_id_number(flows.id_number(1)), "A0001", "2025", "秋季", "会计", "会计2班",
                         "2026-09-10", "2026-10-20", "河南省郑州市管城区宇通路6号", "宇通重工有限公司",
                         "李建国", "139****1111", "首批")
    cells = " ".join(str(v) for row in values for v in row if v is not None)
    for secret in ("测试学生", flows.id_number(1), flows.id_number(2), "13812345678", "13900001111"):
        assert secret not in cells
    assert spot.api("GET", "/schools/SC1/placements/2026-08/attachment2", token=staff)[1]["rows"] == 0
    assert rows(system, "SELECT count(*) FROM personal_data_reads WHERE route = 'placements_attachment2'"
                        " AND student_id = 'A0001'")[0][0] >= 1

    # the school's list of placements (of a month, or all): who may read it, masked names and IDs
    for token, expected in ((staff, 200), (system.token("county", city=ZMD, county=YICHENG), 200),
                            (system.token("auditor"), 200), (other_staff, 403),
                            (system.token("county", city=ZMD, county=XIPING), 403), (terminal, 403)):
        assert spot.api("GET", "/schools/SC1/placements", token=token)[0] == expected
    status, listed = spot.api("GET", "/schools/SC1/placements?month=2026-10", token=staff)
    assert status == 200, listed
    assert (listed["school_id"], listed["month"]) == ("SC1", "2026-10")
    (item,) = listed["placements"]
    assert (item["placement_id"], item["student_id"], item["company"], item["ended_on"]) == (
        pid, "A0001", "宇通重工有限公司", "2026-10-20")
    assert (item["name_masked"], item["id_number_masked"]) == (mask_name("测试学生"),
                                                               mask_id_number(flows.id_number(1)))
    for secret in ("测试学生", flows.id_number(1), "13900001111"):
        assert secret not in str(listed)
    assert spot.api("GET", "/schools/SC1/placements?month=2026-11", token=staff)[1]["placements"] == []
    status, everything = spot.api("GET", "/schools/SC1/placements", token=staff)
    assert (status, [p["placement_id"] for p in everything["placements"]], everything["month"]) == (
        200, [pid], None)
    status, body = spot.api("GET", "/schools/SC1/placements?month=2026-13", token=staff)
    assert (status, body["error"]) == (422, "INVALID_REQUEST")
    assert rows(system, "SELECT count(*) FROM personal_data_reads WHERE route = 'list_placements'"
                        " AND student_id = 'A0001'")[0][0] >= 1
