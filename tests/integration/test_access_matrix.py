"""Every route x every role against the running services, real issuer, RabbitMQ and PostgreSQL:
401 without a token (or with a bad one), 403 ROLE_FORBIDDEN for a role the route does not
allow, and for the allowed roles an answer past the role check. Then areas: school A's staff,
terminal or app acting on school B's student get 403 OUTSIDE_AREA."""

from __future__ import annotations

import re
from typing import Any

import pytest

from backbone.auth import ROLES
from backbone.edge import Route, routes_of
from backbone.openapi import service_classes
from tests.support import Proc

pytestmark = pytest.mark.integration
SERVICES = service_classes()


def cells() -> list[tuple[str, Route]]:
    return [(name, r) for name, cls in SERVICES.items() for r in routes_of(cls) if not r.public]


def concrete(path: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: {"month": "2026-10"}.get(m.group(1), "A0001"), path)


def call(procs: dict[str, Proc], service: str, r: Route, token: str | None) -> tuple[int, Any]:
    body = {} if r.body is not None else None
    return procs[service].api(r.method, concrete(r.path), body, token=token)


@pytest.mark.parametrize(("service", "route"), cells(), ids=lambda v: v.name if isinstance(v, Route) else v)
def test_every_route_refuses_a_caller_without_a_valid_token(edge_system: Any, service: str,
                                                            route: Route) -> None:
    system, procs, _ = edge_system
    for token in (None, "not-a-jwt", system.token("province", ttl=-120)):
        status, body = call(procs, service, route, token)
        assert status == 401, (route.path, token and token[:10], body)
        assert body["error"] in ("UNAUTHENTICATED", "BAD_TOKEN", "TOKEN_EXPIRED")


@pytest.mark.parametrize(("service", "route"), cells(), ids=lambda v: v.name if isinstance(v, Route) else v)
def test_every_role_is_allowed_or_refused_as_the_matrix_says(edge_system: Any, service: str,
                                                             route: Route) -> None:
    _, procs, tokens = edge_system
    for role in ROLES:
        status, body = call(procs, service, route, tokens[role])
        if role in route.roles:
            assert status != 401 and not (status == 403 and body.get("error") == "ROLE_FORBIDDEN"), \
                (role, route.path, status, body)
            assert status < 500, (role, route.path, status, body)
        else:
            assert (status, body.get("error")) == (403, "ROLE_FORBIDDEN"), (role, route.path, status, body)


def test_school_staff_terminal_and_app_act_only_in_their_area(edge_system: Any) -> None:
    system, procs, tokens = edge_system
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
    status, body = procs["appeals"].api("POST", "/appeals/objections", {
        "student_id": "A0001", "month": "2026-10", "received_on": "2026-11-03", "reason": "病假"},
        token=other_school)
    assert (status, body["error"]) == (403, "OUTSIDE_AREA"), body
    status, body = procs["eligibility"].api("GET", "/schools/SC1/months/2026-10", token=other_county)
    assert (status, body["error"]) == (403, "OUTSIDE_AREA"), body
