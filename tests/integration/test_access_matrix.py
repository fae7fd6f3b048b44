"""Every route x every role against the running services, real issuer, RabbitMQ and PostgreSQL:
401 without a token (or with a bad one), 403 ROLE_FORBIDDEN for a role the route does not
allow, and for the allowed roles an answer past the role check. Then areas: school A's staff,
terminal or app acting on school B's student get 403 OUTSIDE_AREA."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from backbone.auth import ROLES
from backbone.edge import Route, routes_of
from backbone.openapi import service_classes
from tests import flows
from tests.support import Proc, System

pytestmark = pytest.mark.integration
SERVICES = service_classes()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[System, dict[str, Proc], dict[str, str]]]:
    from tests.support import throwaway_database, throwaway_vhost

    with throwaway_database() as db, throwaway_vhost() as vhost:
        system = System(db, vhost, tmp_path_factory.mktemp("matrix"))
        try:
            procs = {name: system.service(name).start(wait=False) for name in SERVICES}
            for proc in procs.values():
                proc.wait_healthy()
            enrolment = procs["enrolment"]
            flows.setup_school(system, enrolment, "SC1", "驻马店市", "驿城区")
            flows.setup_school(system, enrolment, "SC2", "驻马店市", "西平县")
            flows.register_student(system, enrolment, "A0001", 1, "SC1")
            flows.register_student(system, enrolment, "B0001", 2, "SC2")
            tokens = {
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


def cells() -> list[tuple[str, Route]]:
    return [(name, r) for name, cls in SERVICES.items() for r in routes_of(cls) if not r.public]


def concrete(path: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: {"month": "2026-10"}.get(m.group(1), "A0001"), path)


def call(procs: dict[str, Proc], service: str, r: Route, token: str | None) -> tuple[int, Any]:
    body = {} if r.body is not None else None
    return procs[service].api(r.method, concrete(r.path), body, token=token)


@pytest.mark.parametrize(("service", "route"), cells(), ids=lambda v: v.name if isinstance(v, Route) else v)
def test_every_route_refuses_a_caller_without_a_valid_token(running: Any, service: str, route: Route) -> None:
    system, procs, _ = running
    for token in (None, "not-a-jwt", system.token("province", ttl=-120)):
        status, body = call(procs, service, route, token)
        assert status == 401, (route.path, token and token[:10], body)
        assert body["error"] in ("UNAUTHENTICATED", "BAD_TOKEN", "TOKEN_EXPIRED")


@pytest.mark.parametrize(("service", "route"), cells(), ids=lambda v: v.name if isinstance(v, Route) else v)
def test_every_role_is_allowed_or_refused_as_the_matrix_says(running: Any, service: str, route: Route) -> None:
    _, procs, tokens = running
    for role in ROLES:
        status, body = call(procs, service, route, tokens[role])
        if role in route.roles:
            assert status != 401 and not (status == 403 and body.get("error") == "ROLE_FORBIDDEN"), \
                (role, route.path, status, body)
            assert status < 500, (role, route.path, status, body)
        else:
            assert (status, body.get("error")) == (403, "ROLE_FORBIDDEN"), (role, route.path, status, body)


def test_school_staff_terminal_and_app_act_only_in_their_area(running: Any) -> None:
    system, procs, tokens = running
    other_school = system.token("school", school="SC2")
    other_county = system.token("county", city="驻马店市", county="西平县")
    other_app = system.token("student", student="B0001")
    for token in (other_school, other_county, other_app):
        status, body = procs["enrolment"].api("GET", "/students/A0001", token=token)
        assert (status, body["error"]) == (403, "OUTSIDE_AREA"), body
    status, body = procs["enrolment"].api("GET", "/students/A0001", token=tokens["school"])
    assert status == 200, body
    status, body = procs["enrolment"].api("GET", "/students/B0001", token=tokens["terminal"])
    assert status == 403, body
    status, body = procs["hardship"].api("POST", "/determinations", {
        "student_id": "A0001", "categories": [1], "effective_semester": "2026-autumn",
        "methods": ["school_review"]}, token=other_school)
    assert (status, body["error"]) == (403, "OUTSIDE_AREA"), body
    status, body = procs["appeals"].api("POST", "/appeals", {
        "student_id": "A0001", "month": "2026-10", "objected_on": "2026-11-03", "letter": "aGVsbG8="},
        token=other_school)
    assert (status, body["error"]) == (403, "OUTSIDE_AREA"), body
    status, body = procs["eligibility"].api("GET", "/schools/SC1/months/2026-10", token=other_county)
    assert (status, body["error"]) == (403, "OUTSIDE_AREA"), body
