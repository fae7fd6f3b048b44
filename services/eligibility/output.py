"""Writers for derived statuses: a JSON document (schema eligibility-status.v1) and a flat CSV.

Both stream: a status is written as soon as it is derived, nothing is kept.
"""

from __future__ import annotations

import csv
import json
import sys
from contextlib import AbstractContextManager
from typing import IO, Any

from services.eligibility.domain.policy import PolicyBook
from services.eligibility.domain.rules import SCHEMA

Status = dict[str, Any]


def _open(path: str) -> tuple[IO[str], bool]:
    if path == "-":
        return sys.stdout, False
    return open(path, "w", encoding="utf-8", newline=""), True


class JsonWriter(AbstractContextManager["JsonWriter"]):
    """``{"schema": ..., "generated_at": ..., "as_of": ..., "source": ..., "statuses": [...], "count": n}``."""

    def __init__(self, path: str, *, header: dict[str, Any]) -> None:
        self.handle, self._close = _open(path)
        self.count = 0
        head = json.dumps({"schema": SCHEMA, **header}, ensure_ascii=False)
        self.handle.write(head[:-1] + ', "statuses": [')

    def write(self, status: Status) -> None:
        self.handle.write(("\n" if self.count == 0 else ",\n") + json.dumps(status, ensure_ascii=False))
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self.handle.write(f'\n], "count": {self.count}}}\n')
        if self._close:
            self.handle.close()
        else:
            self.handle.flush()


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


def csv_row(status: Status) -> dict[str, Any]:
    row: dict[str, Any] = {k: status[k] for k in ("student_id", "semester", "school_id", "city", "county",
                                                  "name_masked", "grade", "class_name", "policy_version",
                                                  "grant_total_yuan")}
    row.update(participation=status["participation"]["status"], hardship=status["hardship"]["status"],
               hardship_level=status["hardship"]["level"], roster=status["roster"]["status"],
               suspended=status["suspension"]["rule"] if status["suspension"] else "",
               tuition_waiver=status["tuition_waiver"]["decision"],
               tuition_waiver_rule=status["tuition_waiver"]["rules"][0]["rule"]
               if status["tuition_waiver"]["rules"] else "")
    for i, m in enumerate(status["months"], start=1):
        row.update({f"check_{i}_month": m["month"], f"check_{i}_status": m["status"], f"check_{i}_outcome": m["outcome"]})
    for i, g in enumerate(status["grant"], start=1):
        row.update({f"grant_{i}_month": g["month"], f"grant_{i}_decision": g["decision"],
                    f"grant_{i}_yuan": g["amount_yuan"], f"grant_{i}_rule": g["rules"][0]["rule"] if g["rules"] else ""})
    return row


class CsvWriter(AbstractContextManager["CsvWriter"]):
    """One row per (student, semester); check and grant months as numbered column groups."""

    def __init__(self, path: str, book: PolicyBook) -> None:
        self.handle, self._close = _open(path)
        self.writer = csv.DictWriter(self.handle, fieldnames=csv_columns(book), restval="", extrasaction="raise")
        self.writer.writeheader()

    def write(self, status: Status) -> None:
        self.writer.writerow({k: ("" if v is None else v) for k, v in csv_row(status).items()})

    def __exit__(self, *exc: object) -> None:
        if self._close:
            self.handle.close()
        else:
            self.handle.flush()
