"""The month's counts school by school (GET :8004/summary/{month}/schools, the live view of a
check day): each school's row is that school's summary, and the rows add up to the area's."""

from __future__ import annotations

import psycopg

from services.eligibility.projection import queries
from services.eligibility.projection.writer import Projection
from tests.eligibility.test_elig_projection_pg import _history

MONTHS = ("2026-09", "2026-10", "2026-11", "2026-12", "2027-01")
CHECK_COUNTS = ("students", "checked", "passed", "failed", "pending")


def test_each_school_row_is_its_summary_and_the_rows_add_up(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, _history().events)
        for month in MONTHS:
            for area in ({}, {"county": "Yicheng"}, {"city": "Zhumadian"}, {"city": "elsewhere"}):
                rows = queries.summary_by_school(conn, month, **area)
                total = queries.province_summary(conn, month, **area)
                for key in CHECK_COUNTS:
                    assert sum(r[key] for r in rows) == total[key], (month, area, key)
                for row in rows:
                    alone = queries.province_summary(conn, month, school_id=row["school_id"])
                    assert {k: row[k] for k in CHECK_COUNTS} == {k: alone[k] for k in CHECK_COUNTS}
                    assert all(row[k] == v for k, v in area.items())
        assert {r["school_id"] for r in queries.summary_by_school(conn, "2026-11")} >= {"A"}
