"""Read models over derived statuses (pure: they take status dicts, as stored in the projection).

``projection.py`` answers the same questions in SQL; the tests check both agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from services.eligibility.domain.calendar import first_day, semester_of

Status = dict[str, Any]


def semester_of_month(month: str) -> str:
    """The semester whose aid months include ``month`` (e.g. 2027-01 -> 2026-autumn)."""
    return semester_of(first_day(month))


def _entry(items: list[dict[str, Any]], month: str) -> dict[str, Any] | None:
    return next((i for i in items if i["month"] == month), None)


def school_month(statuses: Iterable[Status], school_id: str, month: str) -> dict[str, Any]:
    """One school's month: counts by check status and the list of students (names masked)."""
    semester = semester_of_month(month)
    rows = []
    for s in statuses:
        if s["school_id"] != school_id or s["semester"] != semester:
            continue
        m = _entry(s["months"], month)
        g = _entry(s["grant"], month)
        rows.append({
            "student_id": s["student_id"],
            "name_masked": s["name_masked"],
            "class_name": s["class_name"],
            "status": m["status"] if m else None,
            "outcome": m["outcome"] if m else None,
            "excuse": m["excuse"] if m else None,
            "grant": g["decision"] if g else None,
            "grant_rule": g["rules"][0]["rule"] if g and g["rules"] else None,
        })
    rows.sort(key=lambda r: r["student_id"])
    return {
        "school_id": school_id,
        "month": month,
        "semester": semester,
        "counts": dict(sorted(Counter(r["status"] or "not_a_check_month" for r in rows).items())),
        "students": rows,
    }


def summarize(statuses: Iterable[Status], month: str, *, school_id: str | None = None,
              county: str | None = None, city: str | None = None) -> dict[str, Any]:
    """Province (or filtered) summary of one month: checks, grant paid, grant withheld by reason."""
    semester = semester_of_month(month)
    out: dict[str, Any] = {"month": month, "semester": semester, "students": 0, "checked": 0, "passed": 0,
                           "failed": 0, "pending": 0, "grant_granted": 0, "grant_yuan": 0, "grant_pending": 0,
                           "grant_withheld": 0}
    reasons: Counter[str] = Counter()
    for s in statuses:
        if s["semester"] != semester or (school_id and s["school_id"] != school_id) \
                or (county and s["county"] != county) or (city and s["city"] != city):
            continue
        out["students"] += 1
        m = _entry(s["months"], month)
        if m is not None:
            out["checked"] += bool(m["checks"])
            if m["outcome"] in ("passed", "failed", "pending"):
                out[m["outcome"]] += 1
        g = _entry(s["grant"], month)
        if g is not None:
            if g["decision"] == "granted":
                out["grant_granted"] += 1
                out["grant_yuan"] += g["amount_yuan"] or 0
            elif g["decision"] == "pending":
                out["grant_pending"] += 1
            else:
                out["grant_withheld"] += 1
                reasons[g["rules"][0]["rule"]] += 1
    out["withheld_by_reason"] = dict(sorted(reasons.items()))
    return out
