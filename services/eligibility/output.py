"""Writers for derived statuses: a JSON document (schema eligibility-status.v1) and a flat CSV.

:func:`write_statuses` builds each derived status through the typed model
(:class:`contracts.eligibility_status.EligibilityStatus`: a status the model does not describe
is refused, naming the field) and hands the model to every writer. The writers stream: a status
is written as soon as it is derived, nothing is kept.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import IO, Any, NamedTuple

from contracts.eligibility_status import EligibilityStatus, ReportHeader
from services.eligibility.domain.policy import PolicyBook
from services.eligibility.domain.rules import StudentStatus


def _open(path: str) -> tuple[IO[str], bool]:
    if path == "-":
        return sys.stdout, False
    return open(path, "w", encoding="utf-8", newline=""), True


class _Writer:
    def __init__(self, path: str) -> None:
        self.handle, self._close = _open(path)

    def close(self) -> None:
        if self._close:
            self.handle.close()
        else:
            self.handle.flush()


class JsonWriter(_Writer, AbstractContextManager["JsonWriter"]):
    """``{"schema": ..., "generated_at": ..., "as_of": ..., "source": ..., "statuses": [...],
    "count": n}``."""

    def __init__(self, path: str, *, header: ReportHeader) -> None:
        super().__init__(path)
        self.count = 0
        head = json.dumps(header.to_dict(), ensure_ascii=False)
        self.handle.write(head[:-1] + ', "statuses": [')

    def write(self, status: EligibilityStatus) -> None:
        self.write_text(status.to_json())

    def write_text(self, text: str) -> None:
        """One status already rendered (:meth:`EligibilityStatus.to_json`)."""
        self.handle.write(("\n" if self.count == 0 else ",\n") + text)
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self.handle.write(f'\n], "count": {self.count}}}\n')
        self.close()


def csv_columns(book: PolicyBook) -> list[str]:
    checks = max(len(s.check_months) for p in book.versions for s in p.seasons.values())
    aid = max(len(s.aid_months) for p in book.versions for s in p.seasons.values())
    columns = ["student_id", "semester", "school_id", "city", "county", "name_masked", "grade", "class_name",
               "policy_version", "participation", "hardship", "hardship_level", "roster", "suspended"]
    for i in range(1, checks + 1):
        columns += [f"check_{i}_month", f"check_{i}_status", f"check_{i}_outcome"]
    for i in range(1, aid + 1):
        columns += [f"grant_{i}_month", f"grant_{i}_decision", f"grant_{i}_yuan", f"grant_{i}_rule"]
    return columns + ["grant_total_yuan", "tuition_waiver", "tuition_waiver_rule"]


def csv_row(s: EligibilityStatus) -> dict[str, Any]:
    waiver = s.tuition_waiver
    row: dict[str, Any] = {
        "student_id": s.student_id, "semester": s.semester, "school_id": s.school_id, "city": s.city,
        "county": s.county, "name_masked": s.name_masked, "grade": s.grade, "class_name": s.class_name,
        "policy_version": s.policy_version, "participation": s.participation.status,
        "hardship": s.hardship.status, "hardship_level": s.hardship.level, "roster": s.roster.status,
        "suspended": s.suspension.rule if s.suspension else "",
    }
    for i, m in enumerate(s.months, start=1):
        row.update({f"check_{i}_month": m.month, f"check_{i}_status": m.status,
                    f"check_{i}_outcome": m.outcome})
    for i, g in enumerate(s.grant, start=1):
        row.update({f"grant_{i}_month": g.month, f"grant_{i}_decision": g.decision,
                    f"grant_{i}_yuan": g.amount_yuan,
                    f"grant_{i}_rule": g.rules[0].rule if g.rules else ""})
    row.update(grant_total_yuan=s.grant_total_yuan, tuition_waiver=waiver.decision,
               tuition_waiver_rule=waiver.rules[0].rule if waiver.rules else "")
    return row


class CsvWriter(_Writer, AbstractContextManager["CsvWriter"]):
    """One row per (student, semester); check and grant months as numbered column groups."""

    def __init__(self, path: str, book: PolicyBook) -> None:
        super().__init__(path)
        self.writer = csv.DictWriter(self.handle, fieldnames=csv_columns(book), restval="",
                                     extrasaction="raise")
        self.writer.writeheader()

    def write(self, status: EligibilityStatus) -> None:
        self.write_row(csv_row(status))

    def write_row(self, row: dict[str, Any]) -> None:
        """One status's :func:`csv_row`."""
        self.writer.writerow({k: ("" if v is None else v) for k, v in row.items()})

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_statuses(derived: Iterable[StudentStatus], writers: Sequence[JsonWriter | CsvWriter]) -> int:
    """Build each status through the model and write it with every writer; closes the writers.
    Returns the number of statuses."""
    count = 0
    try:
        for status in derived:
            model = EligibilityStatus.from_dict(status)
            for writer in writers:
                writer.write(model)
            count += 1
    finally:
        for writer in writers:
            writer.__exit__(None, None, None)
    return count


class Rendered(NamedTuple):
    """A status built through the model and rendered where it was derived (a replay worker), so
    that the process writing the report only writes text: its JSON and, if wanted, its CSV row."""

    student_id: str
    json: str
    csv: dict[str, Any] | None


def render(status: StudentStatus, csv_too: bool = False) -> Rendered:
    """:func:`write_statuses`' work for one status, done ahead (the model refuses what it does not
    describe, as there)."""
    model = EligibilityStatus.from_dict(status)
    return Rendered(model.student_id, model.to_json(), csv_row(model) if csv_too else None)


def write_rendered(rendered: Iterable[Rendered], writers: Sequence[JsonWriter | CsvWriter]) -> int:
    """:func:`write_statuses` for statuses rendered ahead (:func:`render`, with ``csv_too`` when a
    CSV writer is among ``writers``); closes the writers. Returns the number of statuses."""
    count = 0
    try:
        for item in rendered:
            for writer in writers:
                if isinstance(writer, JsonWriter):
                    writer.write_text(item.json)
                else:
                    if item.csv is None:
                        raise ValueError("status rendered without its CSV row")
                    writer.write_row(item.csv)
            count += 1
    finally:
        for writer in writers:
            writer.__exit__(None, None, None)
    return count
