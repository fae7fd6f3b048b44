"""School rosters over the real enrolment service and issuer: POST /students/import registers
the rows that pass (one StudentRegistered each, actor from the token, area from the registry),
refuses the others with a per-row report that holds no ID number or name, writes nothing in a
dry run, and refuses a file it cannot read with a 422 and a code."""

from __future__ import annotations

import base64
from typing import Any

import psycopg
import pytest

from contracts.identity import check_digit
from tests.flows import id_number, operations_token, register_student, school_token
from tests.support import Proc, System

pytestmark = pytest.mark.integration
HEADER = "学号,姓名,身份证号,年级,班级,专业,入学年份,入学季节,拟受助"


def registrations(system: System) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    with psycopg.connect(system.database_url) as conn:
        found = conn.execute("SELECT actor, payload FROM events WHERE type = 'StudentRegistered'"
                             " ORDER BY position").fetchall()
    return [(r[0], r[1]) for r in found]


def csv_file(rows: list[tuple[str, str]]) -> str:
    lines = [HEADER] + [f"{sid},王小明,{idn},2,会计2班,会计,2025,秋季,是" for sid, idn in rows]
    return base64.b64encode(("\r\n".join(lines) + "\r\n").encode()).decode()


def bad_check(seq: int) -> str:
    good = id_number(seq)
    return good[:17] + ("0" if good[17] != "0" else "1")


def test_a_roster_registers_the_rows_that_pass_and_reports_the_others(system: System,
                                                                       enrolment: Proc) -> None:
    register_student(system, enrolment, "OLD0001", 50, "SC1")   # registered already
    register_student(system, enrolment, "OLD0002", 51, "SC2")   # its ID number is reused below
    rows = [("R0001", id_number(1)),
            ("R0002", bad_check(2)),       # wrong check digit
            ("R0001", id_number(3)),       # the same student number twice in the file
            ("OLD0001", id_number(4)),     # registered already
            ("R0005", id_number(51)),      # the ID number of OLD0002
            ("R0006", id_number(6))]
    body = {"school_id": "SC1", "format": "csv", "file": csv_file(rows)}
    staff = school_token(system, "SC1")
    before = registrations(system)

    status, report = enrolment.api("POST", "/students/import", {**body, "dry_run": True}, token=staff)
    assert status == 200, report
    assert (report["registered"], report["refused"], report["dry_run"]) == (2, 4, True)
    assert registrations(system) == before  # a dry run writes nothing

    status, report = enrolment.api("POST", "/students/import", body, token=staff)
    assert status == 200, report
    assert report == {"registered": 2, "refused": 4, "dry_run": False, "rows": [
        {"row": 2, "student_id": "R0001", "status": "registered", "errors": []},
        {"row": 3, "student_id": "R0002", "status": "invalid", "errors": [
            {"field": "id_number", "code": "INVALID_ID_NUMBER",
             "message": "the check digit of the ID number is wrong (MOD 11-2)"}]},
        {"row": 4, "student_id": "R0001", "status": "duplicate", "errors": [
            {"field": "student_id", "code": "DUPLICATE_STUDENT_ID",
             "message": "the same student number is on row 2"}]},
        {"row": 5, "student_id": "OLD0001", "status": "exists", "errors": [
            {"field": "student_id", "code": "ALREADY_REGISTERED",
             "message": "this student number is registered already"}]},
        {"row": 6, "student_id": "R0005", "status": "exists", "errors": [
            {"field": "id_number", "code": "ID_NUMBER_REGISTERED",
             "message": "this ID number is registered under another student number"}]},
        {"row": 7, "student_id": "R0006", "status": "registered", "errors": []},
    ]}
    text = str(report)
    for _, number in rows:
        assert number not in text and number[:17] not in text
    assert "王" not in text

    added = registrations(system)[len(before):]
    assert [(actor["id"], p["student_id"], p["school"]) for actor, p in added] == [
        ("staff:SC1", "R0001", {"school_id": "SC1", "city": "驻马店市", "county": "驿城区"}),
        ("staff:SC1", "R0006", {"school_id": "SC1", "city": "驻马店市", "county": "驿城区"}),
    ]
    assert all(id_number(1) not in str(p) for _, p in added)
    status, student = enrolment.api("GET", "/students/R0006", token=staff)
    assert status == 200 and student["grade"] == 2 and student["enrolment_season"] == "autumn", student

    # the same file again: every row is refused, nothing is added
    status, again = enrolment.api("POST", "/students/import", body, token=staff)
    assert (status, again["registered"], again["refused"]) == (200, 0, 6)
    assert len(registrations(system)) == len(before) + 2


def test_who_may_import_and_files_that_cannot_be_read(system: System, enrolment: Proc) -> None:
    first17 = "41010220070307777"
    good = csv_file([("R0100", first17 + check_digit(first17))])
    body = {"school_id": "SC1", "format": "csv", "file": good, "dry_run": True}
    assert enrolment.api("POST", "/students/import", body, token=operations_token(system))[0] == 200
    status, answer = enrolment.api("POST", "/students/import", body, token=school_token(system, "SC2"))
    assert (status, answer["error"]) == (403, "OUTSIDE_AREA")
    county = system.token("county", city="驻马店市", county="驿城区")
    status, answer = enrolment.api("POST", "/students/import", body, token=county)
    assert (status, answer["error"]) == (403, "ROLE_FORBIDDEN")
    status, answer = enrolment.api("POST", "/students/import", {**body, "school_id": "SC9"},
                                   token=operations_token(system))
    assert (status, answer["error"]) == (404, "UNKNOWN_SCHOOL")

    staff = school_token(system, "SC1")
    for fmt, data, code in (
            ("xlsx", b"student_id,name\r\n", "NOT_A_WORKBOOK"),
            ("csv", HEADER.encode("utf-16"), "WRONG_ENCODING"),
            ("csv", b"", "EMPTY_FILE"),
            ("csv", "学号,姓名\r\nR0001,王小明\r\n".encode("gb18030"), "MISSING_COLUMN")):
        status, answer = enrolment.api("POST", "/students/import", {
            **body, "format": fmt, "file": base64.b64encode(data).decode(), "dry_run": False}, token=staff)
        assert (status, answer["error"]) == (422, code), (fmt, data, answer)
    status, answer = enrolment.api("POST", "/students/import", {**body, "file": "not base64!"}, token=staff)
    assert (status, answer["error"], answer["fields"][0]["path"]) == (422, "INVALID_REQUEST", "body.file")
    assert registrations(system) == []
