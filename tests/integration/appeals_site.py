"""The month of appeals that the appeals integration tests share (``test_appeals_edge.py``,
``test_appeals_reads.py``): two schools of one city (SC1 in 驿城区, SC2 in 西平县), three students
of SC1 who never enrolled, an October check of SC1 opened and closed (they fail it:
``not_enrolled_in_time``), and results published on chosen days.

Spotcheck publishes on the days a test needs: one spotcheck process per day, its clock shifted
(``AID_CLOCK_OFFSET_SECONDS``); the process of the day labelled ``check`` opens and closes the check."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tests.flows import school_token, setup_school, student_body
from tests.support import Proc, System, throwaway_database, throwaway_vhost

ZMD, YICHENG, XIPING = "驻马店市", "驿城区", "西平县"
STUDENTS = {"A0001": "李明华", "A0002": "王小红", "A0003": "赵强"}  # masked: 李**, 王**, 赵*


@dataclass
class Site:
    system: System
    procs: dict[str, Proc]
    check_id: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def appeals(self) -> Proc:
        return self.procs["appeals"]

    @property
    def staff(self) -> str:
        return school_token(self.system, "SC1")

    def county(self, county: str = YICHENG) -> str:
        return self.system.token("county", city=ZMD, county=county, sub=f"county:{county}:officer")

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.system.database_url) as conn:
            return conn.execute(sql, args).fetchall()


def offset(moment: datetime) -> str:
    """``AID_CLOCK_OFFSET_SECONDS`` that puts a process's clock at ``moment``."""
    return str((moment - datetime.now(UTC)).total_seconds())


@contextmanager
def appeals_site(work: Path, services: Sequence[str], days: Mapping[str, datetime],
                 publish: Mapping[str, str]) -> Iterator[Site]:
    """Start ``services`` (plus the relay and one spotcheck per day of ``days``) on a throwaway
    database and vhost, set up the schools, students and the October check, and publish each month
    of ``publish`` (month -> the label of the day it is published on)."""
    with throwaway_database() as db, throwaway_vhost() as vhost:
        system = System(db, vhost, work)
        try:
            procs = {name: system.service(name).start(wait=False) for name in services}
            procs["relay"] = system.relay().start(wait=False)
            for label, day in days.items():
                procs[f"spot-{label}"] = system.service(
                    "spotcheck", name=f"spot-{label}", AID_CLOCK_OFFSET_SECONDS=offset(day)).start(wait=False)
            for proc in procs.values():
                proc.wait_healthy(timeout=120)
            enrolment = procs["enrolment"]
            setup_school(system, enrolment, "SC1", ZMD, YICHENG)
            setup_school(system, enrolment, "SC2", ZMD, XIPING)
            for seq, (student_id, name) in enumerate(STUDENTS.items(), 1):
                status, body = enrolment.api("POST", "/students",
                                             student_body(student_id, seq, "SC1", name=name),
                                             token=school_token(system, "SC1"))
                assert status == 201, body
            site = Site(system, procs)
            spot = procs["spot-check"]
            status, body = spot.api("POST", "/checks", {
                "opens_at": "2026-10-22T10:00:00+08:00", "closes_at": "2026-10-22T15:00:00+08:00",
                "school_ids": ["SC1"]}, token=site.county())
            assert status == 201, body
            site.check_id = body["check_id"]
            status, body = spot.api("POST", f"/checks/{site.check_id}/close", token=site.county())
            assert status == 200, body
            for month, label in publish.items():
                status, body = procs[f"spot-{label}"].api(
                    "POST", "/results/publish", {"school_id": "SC1", "month": month}, token=site.staff)
                assert status == 201, body
            yield site
        finally:
            system.stop_all()
