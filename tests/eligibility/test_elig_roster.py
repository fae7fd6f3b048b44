"""National roster import (CSV, XLSX) and the ID-number helpers it relies on."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from contracts.envelope import Actor
from contracts.identity import (
    check_digit,
    hash_id_number,
    id_number_problem,
    is_valid_id_number,
    mask_id_number,
)
from contracts.registry import parse_envelope
from services.eligibility.roster import RosterError, import_roster, main
from tests.eligibility.elig_builders import Log, id_number_for, replay

KEY = b"test-key"
ACTOR = Actor(kind="operator", id="tester")


def idn(serial: int) -> str:
    body = f"41010220080101{serial:03d}"
    return body + check_digit(body)


def write_csv(
    path: Path,
    rows: list[tuple[str, str]],
    header: tuple[str, ...] = ("全国学籍系统学号", "身份证号码", "学生姓名"),
) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(header)
        for sid, number in rows:
            w.writerow([sid, number, "张三"])
    return path


# --------------------------------------------------------------------------- identity


def test_mod_11_2_check_digit_accepts_valid_numbers_and_x() -> None:
    assert is_valid_id_number("11010519491231002X")
    assert is_valid_id_number("11010519491231002x")
    assert check_digit("44052418800101001") == "4"
    assert is_valid_id_number(idn(7))


def test_mod_11_2_check_digit_rejects_a_wrong_digit_and_bad_shapes() -> None:
    assert id_number_problem("110105194912310021") == "the check digit of the ID number is wrong (MOD 11-2)"
    assert id_number_problem("1101051949123100") == "an ID number has 18 characters, got 16"
    assert id_number_problem("11010519491231002Y") == "an ID number is 17 digits followed by a digit or X"


def test_hash_is_keyed_and_normalises_x() -> None:
    a = hash_id_number(KEY, "11010519491231002x")
    assert a == hash_id_number(KEY, " 11010519491231002X ")
    assert a != hash_id_number(b"other", "11010519491231002X")
    assert len(a) == 64 and "11010519" not in a
    assert mask_id_number("11010519491231002X") == "110105********002X"


# --------------------------------------------------------------------------- import


def test_csv_roster_becomes_parts_of_at_most_5000_entries(tmp_path: Path) -> None:
    rows = [(f"G{i:06d}", f"{41010219900101000 + i}") for i in range(12001)]
    rows = [(sid, n + check_digit(n)) for sid, n in rows]
    path = write_csv(tmp_path / "roster.csv", rows)
    appended: list = []
    report = import_roster(path, "2026-autumn", KEY, appended.extend, actor=ACTOR)
    assert (report.entries, report.parts) == (12001, 3)
    assert [len(e.payload["entries"]) for e in appended] == [5000, 5000, 2001]
    assert {e.payload["import_id"] for e in appended} == {report.import_id}
    assert [(e.payload["part"], e.payload["parts"]) for e in appended] == [(1, 3), (2, 3), (3, 3)]
    first = appended[0].payload["entries"][0]
    assert first == {"student_id": "G000000", "id_number_hash": hash_id_number(KEY, rows[0][1])}
    for e in appended:
        parse_envelope(json.loads(json.dumps(e.to_dict())))


def test_roster_errors_name_the_rows_and_never_the_id_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_digit = idn(1)[:-1] + ("0" if idn(1)[-1] != "0" else "1")
    rows = [("G1", idn(1)), ("", idn(2)), ("G1", idn(3)), ("G4", idn(1)), ("G5", bad_digit), ("G6", "4101"),
            ("G7", "")]
    path = write_csv(tmp_path / "roster.csv", rows)
    monkeypatch.setenv("AID_ID_HASH_KEY", "k")
    out = tmp_path / "events.jsonl"
    assert main(["import", str(path), "--semester", "2026-autumn", "--out-jsonl", str(out)]) == 1
    err = capsys.readouterr().err
    assert "row 3: student_id is missing" in err
    assert "row 4: student_id repeats row 2" in err
    assert "row 5: id_number repeats row 2" in err
    assert "row 6: id_number the check digit of the ID number is wrong (MOD 11-2)" in err
    assert "row 7: id_number an ID number has 18 characters, got 4" in err
    assert "row 8: id_number is missing" in err
    assert all(number not in err for _, number in rows if len(number) > 4)
    assert not out.exists()


def test_roster_file_without_the_required_columns_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [("G1", idn(1))], header=("学号", "姓名"))
    with pytest.raises(RosterError, match="no id_number column"):
        import_roster(path, "2026-autumn", KEY, list().extend, actor=ACTOR)


def test_xlsx_roster_is_read_and_numeric_id_cells_are_refused(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["student_id", "id_number", "name"])
    sheet.append(["G1", idn(1), "张三"])
    sheet.append([12345, idn(2), "李四"])
    path = tmp_path / "roster.xlsx"
    book.save(path)
    appended: list = []
    report = import_roster(path, "2027-spring", KEY, appended.extend, actor=ACTOR)
    assert report.entries == 2
    assert [e["student_id"] for e in appended[0].payload["entries"]] == ["G1", "12345"]
    sheet.append(["G3", 410102200801010031, "王五"])
    book.save(path)
    with pytest.raises(RosterError, match="row 4: id_number is stored as a number"):
        import_roster(path, "2027-spring", KEY, appended.extend, actor=ACTOR)


def test_imported_roster_is_compared_with_the_system_on_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Log()
    log.ordinary("S1")
    log.ordinary("S2")
    log.pass_checks("S1", log.routine_checks())
    monkeypatch.setenv("AID_ID_HASH_KEY", KEY.decode())
    path = write_csv(tmp_path / "roster.csv", [("S1", id_number_for("S1")), ("S9", idn(9))])
    out = tmp_path / "events.jsonl"
    assert main(["import", str(path), "--semester", "2026-autumn", "--out-jsonl", str(out)]) == 0
    imported = [parse_envelope(json.loads(line)) for line in out.read_text(encoding="utf-8").splitlines()]
    statuses = replay(log.events + imported)
    assert statuses[("S1", "2026-autumn")]["roster"]["status"] == "matched"
    assert statuses[("S2", "2026-autumn")]["roster"]["status"] == "system_only"
    assert statuses[("S9", "2026-autumn")]["roster"]["status"] == "national_only"


@pytest.mark.integration
def test_roster_import_appends_to_the_postgres_store(pg_dsn: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AID_ID_HASH_KEY", "k")
    path = write_csv(tmp_path / "roster.csv", [(f"G{i}", idn(i)) for i in range(3)])
    assert main(["import", str(path), "--semester", "2026-autumn", "--dsn", pg_dsn]) == 0
    from backbone.eventstore import PostgresEventStore

    stored = list(PostgresEventStore(pg_dsn).read_all())
    assert [(e.type, e.stream, e.payload["parts"], len(e.payload["entries"])) for e in stored] == [
        ("NationalRosterImported", "roster-2026-autumn", 1, 3)]
