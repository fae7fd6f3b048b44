"""Reads the live projection: one student's statuses, one school's month, a province summary.

Each question has an SQL form over ``eligibility_status`` (what the service answers) and a pure
form over status dicts (``*_from``: the same answer from a replay's statuses); the tests check
that both agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from services.eligibility.domain.calendar import semester_key, semester_of_month
from services.eligibility.domain.rules import StudentStatus

_CHECK_COUNTS = ("students", "checked", "passed", "failed", "pending")
_COUNTS = ("students", "checked", "passed", "failed", "pending", "grant_granted", "grant_yuan",
           "grant_pending", "grant_withheld")


# --------------------------------------------------------------------------- SQL


def student_status(conn: Any, student_id: str, semester: str | None = None) -> list[StudentStatus]:
    """One student's statuses (every semester, or one), oldest semester first."""
    sql = "SELECT status FROM eligibility_status WHERE student_id = %s"
    params: list[Any] = [student_id]
    if semester is not None:
        sql += " AND semester = %s"
        params.append(semester)
    rows = conn.execute(sql, params).fetchall()
    return sorted((r[0] for r in rows), key=lambda s: semester_key(s["semester"]))


def school_month(conn: Any, school_id: str, month: str) -> dict[str, Any]:
    """One school's month: counts by check status and the student list (names masked)."""
    rows = conn.execute("SELECT status FROM eligibility_status WHERE semester = %s AND school_id = %s",
                        (semester_of_month(month), school_id)).fetchall()
    return school_month_from((r[0] for r in rows), school_id, month)


def province_summary(conn: Any, month: str, *, school_id: str | None = None, county: str | None = None,
                     city: str | None = None) -> dict[str, Any]:
    """Per month: students, checked, passed, failed, pending, grant paid (count, yuan), withheld by reason;
    from ``eligibility_counts`` (kept by triggers as statuses change, migration 0102): it reads one
    row per school and metric, never the statuses. :func:`province_summary_scan` is the same answer
    from the status rows (the tests check that both agree)."""
    where = ["semester = %(semester)s", "month IN (%(month)s, '*')"]
    params: dict[str, Any] = {"semester": semester_of_month(month), "month": month}
    for column, value in (("school_id", school_id), ("county", county), ("city", city)):
        if value is not None:
            where.append(f"{column} = %({column})s")
            params[column] = value
    rows = conn.execute("SELECT metric, sum(n) FROM eligibility_counts WHERE " + " AND ".join(where)
                        + " GROUP BY metric", params).fetchall()
    totals = {metric: int(n) for metric, n in rows}
    reasons = {(metric[len("withheld:"):] or None): n for metric, n in sorted(totals.items())
               if metric.startswith("withheld:") and n}
    return {"month": month, "semester": params["semester"], **{n: totals.get(n, 0) for n in _COUNTS},
            "withheld_by_reason": reasons}


def summary_by_school(conn: Any, month: str, *, county: str | None = None,
                      city: str | None = None) -> list[dict[str, Any]]:
    """The check counts of :func:`province_summary` per school (with its county and city), from
    ``eligibility_counts``: what a live view of a check day shows, school by school."""
    where = ["semester = %(semester)s", "month IN (%(month)s, '*')"]
    params: dict[str, Any] = {"semester": semester_of_month(month), "month": month}
    for column, value in (("county", county), ("city", city)):
        if value is not None:
            where.append(f"{column} = %({column})s")
            params[column] = value
    rows = conn.execute(
        "SELECT school_id, county, city, metric, sum(n) FROM eligibility_counts WHERE " + " AND ".join(where)
        + " AND metric = ANY(%(metrics)s) GROUP BY school_id, county, city, metric ORDER BY school_id",
        {**params, "metrics": list(_CHECK_COUNTS)}).fetchall()
    schools: dict[str, dict[str, Any]] = {}
    for school_id, school_county, school_city, metric, n in rows:
        entry = schools.setdefault(school_id, {"school_id": school_id, "county": school_county,
                                               "city": school_city, **dict.fromkeys(_CHECK_COUNTS, 0)})
        entry[metric] = int(n)
    return list(schools.values())


def province_summary_scan(conn: Any, month: str, *, school_id: str | None = None, county: str | None = None,
                          city: str | None = None) -> dict[str, Any]:
    """:func:`province_summary` computed from every status row of the semester (a scan)."""
    where = ["s.semester = %(semester)s"]
    params: dict[str, Any] = {"semester": semester_of_month(month), "month": month}
    for column, value in (("school_id", school_id), ("county", county), ("city", city)):
        if value is not None:
            where.append(f"s.{column} = %({column})s")
            params[column] = value
    base = (
        " FROM eligibility_status s"
        " LEFT JOIN LATERAL (SELECT e AS m FROM jsonb_array_elements(s.status->'months') e"
        "   WHERE e->>'month' = %(month)s LIMIT 1) mm ON true"
        " LEFT JOIN LATERAL (SELECT e AS g FROM jsonb_array_elements(s.status->'grant') e"
        "   WHERE e->>'month' = %(month)s LIMIT 1) gg ON true"
        " WHERE " + " AND ".join(where)
    )
    row = conn.execute(
        "SELECT count(*),"
        " count(*) FILTER (WHERE jsonb_array_length(m->'checks') > 0),"
        " count(*) FILTER (WHERE m->>'outcome' = 'passed'),"
        " count(*) FILTER (WHERE m->>'outcome' = 'failed'),"
        " count(*) FILTER (WHERE m->>'outcome' = 'pending'),"
        " count(*) FILTER (WHERE g->>'decision' = 'granted'),"
        " coalesce(sum((g->>'amount_yuan')::int) FILTER (WHERE g->>'decision' = 'granted'), 0),"
        " count(*) FILTER (WHERE g->>'decision' = 'pending'),"
        " count(*) FILTER (WHERE g->>'decision' = 'withheld')" + base, params).fetchone()
    reasons = conn.execute(
        "SELECT g->'rules'->0->>'rule', count(*)" + base
        + " AND g->>'decision' = 'withheld' GROUP BY 1 ORDER BY 1",
        params).fetchall()
    return {"month": month, "semester": params["semester"],
            **{n: int(v) for n, v in zip(_COUNTS, row, strict=True)},
            "withheld_by_reason": {r: int(c) for r, c in reasons}}


# --------------------------------------------------------------------------- the same, over status dicts


def _entry(items: list[dict[str, Any]], month: str) -> dict[str, Any] | None:
    return next((i for i in items if i["month"] == month), None)


def school_month_from(statuses: Iterable[StudentStatus], school_id: str, month: str) -> dict[str, Any]:
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


def province_summary_from(statuses: Iterable[StudentStatus], month: str, *, school_id: str | None = None,
                          county: str | None = None, city: str | None = None) -> dict[str, Any]:
    """Province (or filtered) summary of one month: checks, grant paid, grant withheld by reason."""
    semester = semester_of_month(month)
    out: dict[str, Any] = {"month": month, "semester": semester, **dict.fromkeys(_COUNTS, 0)}
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
