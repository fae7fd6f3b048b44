"""School rosters (services.enrolment.roster): reading CSV and XLSX files built here, every field
checked, duplicates within the file and against the system, whole-file refusals, and a report
that never holds an ID number or a name."""

from __future__ import annotations

import io
from typing import Any

import openpyxl
import pytest

from contracts.events import SchoolRegistered
from contracts.identity import check_digit, hash_id_number
from contracts.students import SchoolView, StudentView
from services.enrolment import roster

KEY = b"test-key"
HEADER_CN = ["学号", "姓名", "身份证号", "年级", "班级", "专业", "入学年份", "入学季节", "拟受助"]
HEADER_EN = ["student_id", "name", "id_number", "grade", "class_name", "major", "enrolment_year",
             "enrolment_season", "proposed_aid"]


def id_number(seq: int) -> str:
    first17 = f"41010220070307{seq:03d}"
    return first17 + check_digit(first17)


def bad_check(seq: int) -> str:
    good = id_number(seq)
    return good[:17] + ("0" if good[17] != "0" else "1")


def row(student_id: Any, seq: int, **over: Any) -> list[Any]:
    values = {"student_id": student_id, "name": "王小明", "id_number": id_number(seq), "grade": "2",
              "class_name": "会计2班", "major": "会计", "enrolment_year": "2025", "enrolment_season": "秋季",
              "proposed_aid": "是"}
    values.update(over)
    return [values[k] for k in HEADER_EN]


def csv_bytes(rows: list[list[Any]], header: list[str] = HEADER_CN, encoding: str = "utf-8") -> bytes:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def xlsx_bytes(rows: list[list[Any]], header: list[str] = HEADER_EN) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for r in rows:
        sheet.append(r)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def refused(fmt: str, data: bytes) -> str:
    with pytest.raises(roster.RosterRefused) as caught:
        roster.parse(fmt, data, "SC1")
    assert caught.value.status == 422
    return caught.value.code


def statuses(rows: list[roster.Row]) -> list[tuple[int, str, list[tuple[str, str]]]]:
    return [(r.row, r.status, [(e.field, e.code) for e in r.errors]) for r in rows]


def test_csv_in_utf8_with_and_without_bom_and_gb18030_reads_the_same() -> None:
    rows = [row("R0001", 1), row("R0002", 2, enrolment_season="春季", proposed_aid="否")]
    for data in (csv_bytes(rows), b"\xef\xbb\xbf" + csv_bytes(rows), csv_bytes(rows, encoding="gb18030")):
        parsed = roster.parse("csv", data, "SC1")
        assert statuses(parsed) == [(2, "registered", []), (3, "registered", [])]
        first, second = (r.command for r in parsed)
        assert first is not None and second is not None
        assert (first.student_id, first.name, first.id_number, first.grade, first.enrolment_year,
                first.enrolment_season, first.proposed_aid) == (
            "R0001", "王小明", id_number(1), 2, 2025, "秋季", True)
        assert (second.enrolment_season, second.proposed_aid, second.school_id) == ("春季", False, "SC1")


def test_xlsx_with_english_headers_numbers_as_cells_and_blank_rows() -> None:
    rows = [row("R0001", 1, grade=3, enrolment_year=2024, enrolment_season="autumn", proposed_aid=None),
            [None] * 9,
            row(20250002, 2, grade=1.0, enrolment_season="Spring")]
    parsed = roster.parse("xlsx", xlsx_bytes(rows), "SC1")
    assert statuses(parsed) == [(2, "registered", []), (4, "registered", [])]
    first, second = (r.command for r in parsed)
    assert first is not None and second is not None
    assert (first.grade, first.enrolment_year, first.enrolment_season, first.proposed_aid) == (
        3, 2024, "autumn", True)
    assert (second.student_id, second.grade, second.enrolment_season) == ("20250002", 1, "spring")


def test_every_field_is_checked_and_named_never_echoed() -> None:
    rows = [
        row("R0001", 1, id_number=bad_check(1)),
        row("R-01", 2),
        row("R0003", 3, grade="5"),
        row("R0004", 4, enrolment_year="1999"),
        row("R0005", 5, enrolment_season="夏季"),
        row("R0006", 6, name="", major="x" * 65),
        row("R0007", 7, proposed_aid="maybe", grade="二年级"),
        row("R0008", 8, id_number=id_number(8)[:17]),
    ]
    parsed = roster.parse("csv", csv_bytes(rows), "SC1")
    assert statuses(parsed) == [
        (2, "invalid", [("id_number", "INVALID_ID_NUMBER")]),
        (3, "invalid", [("student_id", "string_pattern_mismatch")]),
        (4, "invalid", [("grade", "less_than_equal")]),
        (5, "invalid", [("enrolment_year", "greater_than_equal")]),
        (6, "invalid", [("enrolment_season", "literal_error")]),
        (7, "invalid", [("name", "missing"), ("major", "string_too_long")]),
        (8, "invalid", [("proposed_aid", "bool_parsing")]),
        (9, "invalid", [("id_number", "INVALID_ID_NUMBER")]),
    ]
    assert parsed[1].student_id is None  # an invalid student number is not echoed either
    text = roster.report(parsed, dry_run=True).model_dump_json()
    assert "王小明" not in text and id_number(1)[:17] not in text and "夏季" not in text


def test_an_id_number_stored_as_a_number_in_a_workbook_is_refused() -> None:
    parsed = roster.parse("xlsx", xlsx_bytes([row("R0001", 1, id_number=410102200703070)]), "SC1")
    assert statuses(parsed) == [(2, "invalid", [("id_number", "ID_NUMBER_NOT_TEXT")])]


def test_an_id_number_in_the_student_number_column_is_not_echoed() -> None:
    parsed = roster.parse("csv", csv_bytes([row(id_number(9), 1)]), "SC1")
    assert parsed[0].status == "registered" and parsed[0].student_id is None


def test_duplicates_within_the_file_keep_the_first_row() -> None:
    rows = [row("R0001", 1), row("R0001", 2), row("R0003", 1), row("R0004", 4), row("R0001", 4)]
    parsed = roster.parse("csv", csv_bytes(rows), "SC1")
    assert statuses(parsed) == [
        (2, "registered", []),
        (3, "duplicate", [("student_id", "DUPLICATE_STUDENT_ID")]),
        (4, "duplicate", [("id_number", "DUPLICATE_ID_NUMBER")]),
        (5, "registered", []),
        (6, "duplicate", [("student_id", "DUPLICATE_STUDENT_ID"), ("id_number", "DUPLICATE_ID_NUMBER")]),
    ]
    assert parsed[1].errors[0].message == "the same student number is on row 2"


@pytest.mark.parametrize(("fmt", "data", "code"), [
    ("csv", b"", "EMPTY_FILE"),
    ("csv", b" \r\n\r\n", "EMPTY_FILE"),
    ("xlsx", b"", "EMPTY_FILE"),
    ("csv", ",".join(HEADER_CN).encode() + b"\r\n,,,\r\n", "NO_ROWS"),
    ("csv", "学号,姓名\r\nR0001,王\r\n".encode(), "MISSING_COLUMN"),
    ("csv", ",".join(["student_id", *HEADER_CN]).encode() + b"\r\n", "DUPLICATE_COLUMN"),
    ("csv", ",".join(HEADER_CN).encode("utf-16"), "WRONG_ENCODING"),
    ("csv", b"\x81\x30\xff\xfe\x00", "WRONG_ENCODING"),
    ("xlsx", b"student_id,name\r\n", "NOT_A_WORKBOOK"),
    ("xlsx", b"PK\x03\x04 not really a zip", "NOT_A_WORKBOOK"),
    ("xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old xls", "NOT_A_WORKBOOK"),
])
def test_a_file_that_cannot_be_read_is_refused_with_a_code(fmt: str, data: bytes, code: str) -> None:
    assert refused(fmt, data) == code


def test_a_zip_that_is_not_a_workbook_and_a_workbook_missing_a_column() -> None:
    out = io.BytesIO()
    with __import__("zipfile").ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    assert refused("xlsx", out.getvalue()) == "NOT_A_WORKBOOK"
    assert refused("xlsx", xlsx_bytes([["R0001", "王"]], header=["student_id", "name"])) == "MISSING_COLUMN"
    assert refused("xlsx", xlsx_bytes([], header=HEADER_EN)) == "NO_ROWS"


def test_too_many_rows_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(roster, "MAX_ROWS", 2)
    assert refused("csv", csv_bytes([row(f"R000{i}", i) for i in range(3)])) == "TOO_MANY_ROWS"


def test_decide_refuses_students_and_id_numbers_registered_already() -> None:
    school = SchoolView("SC1", SchoolRegistered(school_id="SC1", name="学校", city="驻马店市",
                                                county="驿城区", administered_by="county"))
    rows = roster.parse("csv", csv_bytes([row("R0001", 1), row("R0002", 2), row("R0003", 3),
                                          row("R0004", 4, id_number=bad_check(4))]), "SC1")
    registered = {"R0002"}
    owner_of_3 = {hash_id_number(KEY, id_number(3)): "OTHER01"}

    def student_of(student_id: str) -> StudentView:
        view = StudentView(student_id)
        if student_id in registered:
            view.registered = object()  # type: ignore[assignment]
        return view

    asked: list[list[str]] = []

    def owners_of(hashes: Any) -> dict[str, str]:
        asked.append(list(hashes))
        return {h: s for h, s in owner_of_3.items() if h in hashes}

    planned = roster.decide(rows, school, KEY, student_of, owners_of)
    assert [(r.row, e.student_id, e.school.city, e.school.county) for r, e in planned] == [
        (2, "R0001", "驻马店市", "驿城区")]
    assert len(asked) == 1 and len(asked[0]) == 2  # one lookup for the file
    event = planned[0][1]
    assert event.id_number_hash == hash_id_number(KEY, id_number(1)) and "*" in event.id_number_masked
    report = roster.report(rows, dry_run=False)
    assert (report.registered, report.refused) == (1, 3)
    assert [(r.row, r.student_id, r.status, [(e.field, e.code) for e in r.errors]) for r in report.rows] == [
        (2, "R0001", "registered", []),
        (3, "R0002", "exists", [("student_id", "ALREADY_REGISTERED")]),
        (4, "R0003", "exists", [("id_number", "ID_NUMBER_REGISTERED")]),
        (5, "R0004", "invalid", [("id_number", "INVALID_ID_NUMBER")]),
    ]


def test_command_line_checks_a_file_and_writes_nothing(tmp_path: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "roster.xlsx"
    path.write_bytes(xlsx_bytes([row("R0001", 1), row("R0001", 2)]))
    assert roster.main(["import", str(path), "--school", "SC1", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert '"status": "duplicate"' in out and id_number(2) not in out and "王小明" not in out
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert roster.main(["import", str(empty), "--school", "SC1"]) == 2
    assert "EMPTY_FILE" in capsys.readouterr().out
