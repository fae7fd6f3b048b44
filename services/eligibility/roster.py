"""Import the national student-aid system's list (全国学生资助管理信息系统名单) for a semester.

    python -m services.eligibility.roster import FILE --semester 2026-autumn [--dsn DSN | --out-jsonl PATH]

FILE is CSV (UTF-8, UTF-8 with BOM, or GB18030) or XLSX (first sheet). The first row names the
columns; names are matched case-insensitively, English or Chinese:

- ``student_id`` / ``全国学籍系统学号`` / ``学籍号`` / ``学号``: national student number (required);
- ``id_number`` / ``身份证号码`` / ``身份证号``: 18-character resident ID number (required);
- any other column (name, school, ...) is ignored and never stored.

Every row is checked (ID number: 18 characters with a valid MOD 11-2 check digit; student
number present; neither repeated). Errors are listed with their row numbers (the header is
row 1) and never show an ID number; with any error nothing is imported (exit 1). Otherwise
the ID numbers are hashed (HMAC-SHA256, key ``AID_ID_HASH_KEY``) and NationalRosterImported
events (parts of at most 5,000 entries, one import id) are appended in one call, to the
PostgreSQL store (``--dsn``, default ``$AID_DATABASE_URL``) or to a JSONL file (``--out-jsonl``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts.envelope import Actor, Envelope
from contracts.events import NationalRosterImported, RosterEntry
from contracts.identity import hash_id_number, id_number_problem, normalise_id_number
from contracts.registry import build_envelope
from services.eligibility.domain.calendar import CalendarError, parse_semester

PART_SIZE = 5000
HEADERS = {
    "student_id": ("student_id", "全国学籍系统学号", "学籍号", "学号", "national_student_number"),
    "id_number": ("id_number", "身份证号码", "身份证号", "身份证"),
}


class RosterError(ValueError):
    """The file cannot be read as a roster (before any row is judged)."""


@dataclass(frozen=True)
class RosterRow:
    row: int
    student_id: str
    id_number: str


@dataclass(frozen=True)
class ImportReport:
    import_id: str
    semester: str
    entries: int
    parts: int
    source_sha256: str


# --------------------------------------------------------------------------- reading


def _columns(header: Sequence[Any]) -> dict[str, int]:
    names = [str(h or "").strip().lower() for h in header]
    found: dict[str, int] = {}
    for field, aliases in HEADERS.items():
        for alias in aliases:
            if alias.lower() in names:
                found[field] = names.index(alias.lower())
                break
        else:
            raise RosterError(f"no {field} column (expected one of: {', '.join(aliases)})")
    return found


def _cell(value: Any, field: str, row: int, problems: list[str]) -> str:
    if value is None:
        return ""
    if isinstance(value, float) or (field == "id_number" and isinstance(value, int)):
        problems.append(f"row {row}: {field} is stored as a number (a spreadsheet loses digits);"
                        " store it as text")
        return ""
    return str(value).strip()


def read_roster(path: str | Path) -> tuple[list[RosterRow], list[str]]:
    """Rows of the file and the problems found while reading them."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        table = _xlsx_rows(data)
    elif path.suffix.lower() in (".csv", ".txt"):
        table = _csv_rows(data)
    else:
        raise RosterError(f"{path.name}: expected a .csv or .xlsx file")
    if not table:
        raise RosterError(f"{path.name}: the file is empty")
    columns = _columns(table[0])
    rows: list[RosterRow] = []
    problems: list[str] = []
    for number, values in enumerate(table[1:], start=2):
        if not any(str(v or "").strip() for v in values):
            continue
        cells = {f: _cell(values[i] if i < len(values) else None, f, number, problems)
                 for f, i in columns.items()}
        rows.append(RosterRow(number, cells["student_id"], cells["id_number"]))
    return rows, problems


def _csv_rows(data: bytes) -> list[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return [list(r) for r in csv.reader(io.StringIO(text, newline=""))]
    raise RosterError("the CSV is neither UTF-8 nor GB18030")


def _xlsx_rows(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a broken file
        raise RosterError(f"not a readable XLSX file ({type(exc).__name__})") from None
    try:
        return [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()


# --------------------------------------------------------------------------- checking, events


def validate_rows(rows: Iterable[RosterRow]) -> list[str]:
    """Every problem, by row number; ID numbers are never echoed."""
    problems: list[str] = []
    seen_students: dict[str, int] = {}
    seen_ids: dict[str, int] = {}
    for r in rows:
        if not r.student_id:
            problems.append(f"row {r.row}: student_id is missing")
        elif r.student_id in seen_students:
            problems.append(f"row {r.row}: student_id repeats row {seen_students[r.student_id]}")
        else:
            seen_students[r.student_id] = r.row
        if not r.id_number:
            problems.append(f"row {r.row}: id_number is missing")
            continue
        problem = id_number_problem(r.id_number)
        if problem:
            problems.append(f"row {r.row}: id_number {problem}")
            continue
        normal = normalise_id_number(r.id_number)
        if normal in seen_ids:
            problems.append(f"row {r.row}: id_number repeats row {seen_ids[normal]}")
        else:
            seen_ids[normal] = r.row
    return problems


def roster_events(rows: Sequence[RosterRow], semester: str, key: bytes, *, source_sha256: str,
                  actor: Actor, import_id: str | None = None, part_size: int = PART_SIZE,
                  occurred_at: datetime | None = None) -> list[Envelope]:
    """NationalRosterImported envelopes (one per part of at most ``part_size`` entries)."""
    parse_semester(semester)
    import_id = import_id or str(uuid.uuid4())
    occurred_at = occurred_at or datetime.now(UTC)
    entries = [RosterEntry(student_id=r.student_id, id_number_hash=hash_id_number(key, r.id_number))
               for r in rows]
    chunks = [entries[i:i + part_size] for i in range(0, len(entries), part_size)] or [[]]
    correlation = uuid.uuid4()
    return [
        build_envelope(
            NationalRosterImported(import_id=import_id, semester=semester, part=n, parts=len(chunks),
                                   source_sha256=source_sha256, entries=chunk),
            stream=f"roster-{semester}", actor=actor, occurred_at=occurred_at, correlation_id=correlation,
        )
        for n, chunk in enumerate(chunks, start=1)
    ]


def import_roster(path: str | Path, semester: str, key: bytes, append: Callable[[list[Envelope]], Any], *,
                  actor: Actor, part_size: int = PART_SIZE) -> ImportReport:
    """Read, check, hash and append. Raises :class:`RosterError` (with every problem) on a bad file."""
    rows, problems = read_roster(path)
    problems += validate_rows(rows)
    if problems:
        raise RosterError("\n".join(problems))
    if not rows:
        raise RosterError("the roster has no entries")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    events = roster_events(rows, semester, key, source_sha256=digest, actor=actor, part_size=part_size)
    append(events)
    return ImportReport(events[0].payload["import_id"], semester, len(rows), len(events), digest)


# --------------------------------------------------------------------------- CLI


def _jsonl_appender(path: str) -> Callable[[list[Envelope]], None]:
    def append(events: list[Envelope]) -> None:
        with open(path, "a", encoding="utf-8") as handle:
            for e in events:
                handle.write(json.dumps(e.to_dict(), ensure_ascii=False) + "\n")
    return append


def _store_appender(dsn: str) -> Callable[[list[Envelope]], None]:
    from backbone.eventstore import PostgresEventStore

    store = PostgresEventStore(dsn)

    def append(events: list[Envelope]) -> None:
        store.append(events)
    return append


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.eligibility.roster",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("import", help="import a national roster file for a semester")
    p.add_argument("file")
    p.add_argument("--semester", required=True, help="e.g. 2026-autumn")
    p.add_argument("--dsn", help="append to this PostgreSQL event store (default: $AID_DATABASE_URL)")
    p.add_argument("--out-jsonl", help="append the events to this JSONL file instead of the store")
    p.add_argument("--actor", default="roster-import", help="operator id recorded as the events' actor")
    args = parser.parse_args(argv)

    from backbone.config import ConfigError, load

    try:
        settings = load()
        parse_semester(args.semester)
        append = _jsonl_appender(args.out_jsonl) if args.out_jsonl \
            else _store_appender(args.dsn or settings.database_url)
        report = import_roster(args.file, args.semester, settings.id_hash_key, append,
                               actor=Actor(kind="operator", id=args.actor))
    except RosterError as exc:
        print(f"roster: {args.file}: not imported:\n{exc}", file=sys.stderr)
        return 1
    except (ConfigError, CalendarError, OSError) as exc:
        print(f"roster: error: {exc}", file=sys.stderr)
        return 2
    print(f"roster: imported {report.entries:,} entries for {report.semester} in {report.parts} part(s),"
          f" import {report.import_id}, file sha256 {report.source_sha256}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
