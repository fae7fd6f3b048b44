"""School rosters: a school's proposed-aid students from a CSV or XLSX file, read and checked
row by row. Pure code: the service (``POST /students/import``) and the command line below
call the same functions; every row that passes becomes a :class:`RegisterStudent` and goes
through :func:`services.enrolment.domain.register`, the one way a student is registered.

- :func:`parse` reads the file (a whole-file problem is a 422 :class:`RosterRefused` with a
  code) and checks each row's fields and the duplicates within the file;
- :func:`decide` checks the rows that passed against the system (student number registered
  already; the same ID number, compared by its keyed hash, under another student number) and
  gives the StudentRegistered event of each row that is left;
- :func:`report` is the answer: per row, its line in the sheet and the column and code of
  each problem, never an ID number or a name.

Command line (validates only; writes nothing)::

    python -m services.enrolment.roster import FILE --school SCHOOL [--dry-run] [--format csv|xlsx]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from backbone.errors import Conflict, DomainError
from contracts.events import StudentRegistered
from contracts.identity import is_valid_id_number, normalise_id_number
from contracts.students import SchoolView, StudentView
from services.enrolment import domain
from services.enrolment.commands import ImportReport, RegisterStudent, RosterRow, RowIssue

MAX_ROWS = 5000
MAX_UNZIPPED = 64 * 1024 * 1024  # what an XLSX may unpack to (a zip bomb is refused before reading)
FIELDS = ("student_id", "name", "id_number", "grade", "class_name", "major", "enrolment_year",
          "enrolment_season", "proposed_aid")
REQUIRED = FIELDS[:-1]
_ALIASES = {
    "student_id": ("student_id", "student number", "national student number", "学号", "学籍号", "全国学籍号",
                   "全国学籍系统学号", "全国学籍号码"),
    "name": ("name", "student name", "姓名", "学生姓名"),
    "id_number": ("id_number", "id number", "id card number", "身份证号", "身份证号码", "身份证件号码",
                  "身份证件号"),
    "grade": ("grade", "年级"),
    "class_name": ("class_name", "class", "班级", "班级名称"),
    "major": ("major", "专业", "专业名称"),
    "enrolment_year": ("enrolment_year", "enrollment_year", "入学年份", "入学年度", "入学年"),
    "enrolment_season": ("enrolment_season", "enrollment_season", "入学季节", "入学季"),
    "proposed_aid": ("proposed_aid", "拟受助", "是否拟受助", "拟受助学生", "是否拟受助学生"),
}


def _key(header: str) -> str:
    return re.sub(r"[\s_\-*（）()]", "", header).lower()


COLUMNS = {_key(alias): name for name, aliases in _ALIASES.items() for alias in aliases}
_SEASONS = {"autumn": "autumn", "fall": "autumn", "秋季": "秋季", "秋": "秋季", "spring": "spring",
            "春季": "春季", "春": "春季"}
_YES = {"是", "yes", "y", "true", "1", "拟受助"}
_NO = {"否", "no", "n", "false", "0"}
_CN_GRADES = {"一": 1, "二": 2, "三": 3, "四": 4}


class RosterRefused(domain.Unprocessable):
    """The whole file is refused (422): not a workbook, wrong encoding, empty, a column missing."""


@dataclass
class Row:
    """One data row: its line in the sheet, the command it makes if every field passed, and
    what is wrong with it."""

    row: int
    student_id: str | None = None
    command: RegisterStudent | None = None
    status: str = "registered"
    errors: list[RowIssue] = field(default_factory=list)

    def refuse(self, status: str, field_name: str, code: str, message: str) -> None:
        self.status = status
        self.errors.append(RowIssue(field=field_name, code=code, message=message))
        self.command = None


# ----------------------------------------------------------------------------- reading


def _decode_csv(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RosterRefused("WRONG_ENCODING", "the CSV is UTF-16; save it as UTF-8 (or GB18030)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise RosterRefused("WRONG_ENCODING", "the CSV is neither UTF-8 nor GB18030 text") from None
    if "\x00" in text:
        raise RosterRefused("WRONG_ENCODING", "the CSV holds NUL characters: it is not UTF-8 or GB18030 text")
    return text


def _csv_rows(data: bytes) -> Iterator[Sequence[Any]]:
    try:
        yield from csv.reader(io.StringIO(_decode_csv(data), newline=""))
    except csv.Error as exc:
        raise RosterRefused("MALFORMED_CSV", f"the CSV cannot be read ({exc})") from None


def _xlsx_rows(data: bytes) -> Iterator[Sequence[Any]]:
    import openpyxl

    if not data.startswith(b"PK\x03\x04"):
        raise RosterRefused("NOT_A_WORKBOOK",
                            "the file is not an XLSX workbook (an old .xls? save it as .xlsx)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_UNZIPPED:
            raise RosterRefused("FILE_TOO_LARGE", f"the workbook unpacks to more than {MAX_UNZIPPED} bytes")
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except RosterRefused:
        raise
    except Exception:  # openpyxl raises many kinds for a broken or foreign zip
        raise RosterRefused("NOT_A_WORKBOOK", "the file is not a readable XLSX workbook") from None
    try:
        if not book.worksheets:
            raise RosterRefused("EMPTY_FILE", "the workbook has no sheet")
        try:
            yield from book.worksheets[0].iter_rows(values_only=True)
        except RosterRefused:
            raise
        except Exception:
            raise RosterRefused("NOT_A_WORKBOOK", "the workbook's first sheet cannot be read") from None
    finally:
        book.close()


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def read_table(fmt: str, data: bytes) -> tuple[dict[str, int], list[tuple[int, Sequence[Any]]]]:
    """The column of each field, and the non-blank data rows with their line in the sheet."""
    if not data.strip():
        raise RosterRefused("EMPTY_FILE", "the file is empty")
    if fmt not in ("csv", "xlsx"):
        raise RosterRefused("UNKNOWN_FORMAT", "the format is csv or xlsx")
    lines = _csv_rows(data) if fmt == "csv" else _xlsx_rows(data)
    header: dict[str, int] | None = None
    rows: list[tuple[int, Sequence[Any]]] = []
    for number, cells in enumerate(lines, start=1):
        if all(_blank(c) for c in cells):
            continue
        if header is None:
            header = _header(cells)
            continue
        if len(rows) >= MAX_ROWS:
            raise RosterRefused("TOO_MANY_ROWS", f"a roster has at most {MAX_ROWS} rows; split the file")
        rows.append((number, cells))
    if header is None:
        raise RosterRefused("EMPTY_FILE", "the file holds no header row and no student")
    if not rows:
        raise RosterRefused("NO_ROWS", "the file holds a header row but no student")
    return header, rows


def _header(cells: Sequence[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        name = COLUMNS.get(_key(str(cell))) if not _blank(cell) else None
        if name is None:
            continue  # other columns (序号, 备注...) are ignored
        if name in found:
            raise RosterRefused("DUPLICATE_COLUMN", f"two columns are {name}")
        found[name] = index
    missing = [name for name in REQUIRED if name not in found]
    if missing:
        raise RosterRefused("MISSING_COLUMN",
                            f"required column(s) missing in the header row: {', '.join(missing)}")
    return found


# ----------------------------------------------------------------------------- fields


class _Bad(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _text(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _integer(cell: Any, what: str) -> int:
    if isinstance(cell, bool):
        raise _Bad("int_parsing", f"{what} is a whole number")
    if isinstance(cell, int):
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    value = str(cell).strip()
    if what == "grade":
        value = value.removesuffix("年级")
        if value in _CN_GRADES:
            return _CN_GRADES[value]
    else:
        value = value.removesuffix("年")
    if not re.fullmatch(r"\d{1,4}", value):
        raise _Bad("int_parsing", f"{what} is a whole number")
    return int(value)


def _convert(name: str, cell: Any) -> Any:
    if name == "id_number":
        if isinstance(cell, int | float):
            raise _Bad("ID_NUMBER_NOT_TEXT", "the ID number is stored as a number (digits are lost): "
                                             "format the column as text")
        value = str(cell).strip().replace(" ", "").upper()
        try:
            return normalise_id_number(value)
        except ValueError as exc:  # InvalidIdNumber never repeats the number
            raise _Bad("INVALID_ID_NUMBER", str(exc)) from None
    if name in ("grade", "enrolment_year"):
        return _integer(cell, name)
    if name == "enrolment_season":
        value = _text(cell)
        return _SEASONS.get(value.lower(), value)
    if name == "proposed_aid":
        value = _text(cell).lower()
        if value in _YES:
            return True
        if value in _NO:
            return False
        raise _Bad("bool_parsing", "proposed_aid is 是/否 (yes/no)")
    return _text(cell)


def _check_row(number: int, cells: Sequence[Any], header: Mapping[str, int], school_id: str) -> Row:
    row = Row(row=number)
    values: dict[str, Any] = {"school_id": school_id}
    for name in FIELDS:
        index = header.get(name)
        cell = cells[index] if index is not None and index < len(cells) else None
        if _blank(cell):
            if name in REQUIRED:
                row.refuse("invalid", name, "missing", f"{name} is required")
            continue
        try:
            values[name] = _convert(name, cell)
        except _Bad as exc:
            row.refuse("invalid", name, exc.code, str(exc))
    try:
        command = RegisterStudent.model_validate(values, strict=False)
    except ValidationError as exc:
        reported = {issue.field for issue in row.errors}
        for err in exc.errors(include_url=False, include_input=False, include_context=False):
            name = str(err["loc"][0]) if err["loc"] else "row"
            if name not in reported and err["type"] != "missing":
                row.refuse("invalid", name, str(err["type"]), str(err["msg"])[:200])
                reported.add(name)
        command = None
    student_id = values.get("student_id")
    if isinstance(student_id, str) and re.fullmatch(r"[A-Za-z0-9]{4,40}", student_id) \
            and not is_valid_id_number(student_id):  # an ID number in the wrong column is not echoed
        row.student_id = student_id
    if not row.errors:
        row.command = command
    return row


def parse(fmt: str, data: bytes, school_id: str) -> list[Row]:
    """Every data row of the file, checked field by field and against the earlier rows (the
    first of two rows with the same student number or ID number is kept)."""
    header, table = read_table(fmt, data)
    rows = [_check_row(number, cells, header, school_id) for number, cells in table]
    first_student: dict[str, int] = {}
    first_id: dict[str, int] = {}
    for row in rows:
        if row.command is None:
            continue
        earlier_student = first_student.get(row.command.student_id)
        earlier_id = first_id.get(row.command.id_number)
        if earlier_student is not None:
            row.refuse("duplicate", "student_id", "DUPLICATE_STUDENT_ID",
                       f"the same student number is on row {earlier_student}")
        if earlier_id is not None:
            row.refuse("duplicate", "id_number", "DUPLICATE_ID_NUMBER",
                       f"the same ID number is on row {earlier_id}")
        if row.command is not None:
            first_student[row.command.student_id] = first_id[row.command.id_number] = row.row
    return rows


# ----------------------------------------------------------------------------- against the system


def decide(rows: Iterable[Row], school: SchoolView, hash_key: bytes, student_of: Callable[[str], StudentView],
           owners_of: Callable[[Sequence[str]], Mapping[str, str]]) -> list[tuple[Row, StudentRegistered]]:
    """The StudentRegistered event of each row left after checking it against the system:
    ``student_of`` reads a student, ``owners_of`` answers, for ID-number hashes, the student
    number each is registered under. Refused rows are marked ``exists``."""
    planned: list[tuple[Row, StudentRegistered]] = []
    for row in rows:
        if row.command is None:
            continue
        try:
            event = domain.register(row.command, school, hash_key, student_of(row.command.student_id))
        except Conflict as exc:
            row.refuse("exists", "student_id", exc.code, "this student number is registered already")
            continue
        except DomainError as exc:  # the rules refuse a field the row check let through
            row.refuse("invalid", "row", exc.code, exc.message)
            continue
        planned.append((row, event))
    owners = owners_of(sorted({event.id_number_hash for _, event in planned}))
    kept = []
    for row, event in planned:
        owner = owners.get(event.id_number_hash)
        if owner is not None and owner != event.student_id:
            row.refuse("exists", "id_number", "ID_NUMBER_REGISTERED",
                       "this ID number is registered under another student number")
        else:
            kept.append((row, event))
    return kept


def report(rows: Iterable[Row], dry_run: bool) -> ImportReport:
    listed = [RosterRow(row=r.row, student_id=r.student_id, status=r.status,  # type: ignore[arg-type]
                        errors=r.errors) for r in rows]
    registered = sum(1 for r in listed if r.status == "registered")
    return ImportReport(rows=listed, registered=registered, refused=len(listed) - registered, dry_run=dry_run)


# ----------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.enrolment.roster",
        description="Check a school roster (CSV or XLSX) with the same code as POST /students/import. "
                    "Validate-only: it reads the file, checks every field and the duplicates within "
                    "the file, and prints the per-row report (JSON). It writes nothing and does not "
                    "compare with the registry (students or ID numbers registered already): upload the "
                    "file to POST /students/import for that, with dry_run to see the result first.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("import", help="check a roster file and print the per-row report")
    check.add_argument("file", help="the roster, .csv (UTF-8 or GB18030) or .xlsx")
    check.add_argument("--school", required=True, help="the school's id (school_id)")
    check.add_argument("--dry-run", action="store_true",
                       help="accepted for symmetry with the API; this command never writes")
    check.add_argument("--format", choices=("csv", "xlsx"), help="default: from the file's extension")
    args = parser.parse_args(argv)
    fmt = args.format or ("xlsx" if args.file.lower().endswith(".xlsx") else "csv")
    with open(args.file, "rb") as f:
        data = f.read()
    try:
        rows = parse(fmt, data, args.school)
    except RosterRefused as exc:
        print(json.dumps({"error": exc.code, "message": exc.message}, ensure_ascii=False))
        return 2
    answer = report(rows, dry_run=True)
    print(answer.model_dump_json(indent=2))
    print(f"{answer.registered} row(s) pass, {answer.refused} refused; nothing written "
          "(not compared with the registry)", file=sys.stderr)
    return 1 if answer.refused else 0


if __name__ == "__main__":
    sys.exit(main())
