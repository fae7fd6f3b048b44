"""The edge tests share one running system (session scope): every HTTP service as a real
process with the real issuer, RabbitMQ and PostgreSQL; two schools in two counties, a student
at each, a terminal at the first, and a token for every role (areas on the first school)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backbone.openapi import HTTP_SERVICES
from tests import flows
from tests.support import Proc, System, throwaway_database, throwaway_vhost


@pytest.fixture(scope="session")
def edge_system(
    tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[System, dict[str, Proc], dict[str, str]]]:
    with throwaway_database() as db, throwaway_vhost() as vhost:
        system = System(db, vhost, Path(tmp_path_factory.mktemp("edge")))
        try:
            procs = {name: system.service(name).start(wait=False) for name in HTTP_SERVICES}
            for proc in procs.values():
                proc.wait_healthy()
            enrolment = procs["enrolment"]
            flows.setup_school(system, enrolment, "SC1", "驻马店市", "驿城区")
            flows.setup_school(system, enrolment, "SC2", "驻马店市", "西平县")
            flows.register_student(system, enrolment, "A0001", 1, "SC1")
            flows.register_student(system, enrolment, "B0001", 2, "SC2")
            tokens: dict[str, Any] = {
                "terminal": flows.setup_terminal(system, enrolment, "T1", "SC1"),
                "school": system.token("school", school="SC1"),
                "county": system.token("county", city="驻马店市", county="驿城区"),
                "city": system.token("city", city="驻马店市"),
                "province": system.token("province"),
                "auditor": system.token("auditor"),
                "operations": system.token("operations"),
                "student": system.token("student", student="A0001"),
            }
            yield system, procs, tokens
        finally:
            system.stop_all()


@pytest.fixture()
def enrolment(system: System) -> Proc:
    """The enrolment service on the test's own system, with schools SC1 and SC2 registered in
    two cities."""
    proc = system.service("enrolment").start()
    flows.setup_school(system, proc, "SC1", "驻马店市", "驿城区")
    flows.setup_school(system, proc, "SC2", "信阳市", "浉河区")
    return proc
