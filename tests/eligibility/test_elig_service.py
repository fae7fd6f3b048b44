"""The nameko entry point over the injected live projection (``ProjectionProvider``), on a
throwaway database: consuming events, the RPC methods and the HTTP routes' answers through the
edge (a real token, verified against a JWKS file; schools and students read from the events)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder

from backbone import edge
from backbone.auth import AuthSettings, TokenVerifier
from backbone.db import Pool
from backbone.errors import DomainError, NotFound
from backbone.issuer import SigningKey, load_or_create_key, mint, person_claims
from contracts.events import SchoolRegistered
from contracts.students import school_stream
from services.eligibility.projection.provider import LiveProjection, ProjectionProvider
from services.eligibility.projection.writer import Projection
from services.eligibility.service import EligibilityService
from tests.eligibility.elig_builders import SCHOOL, Log, at, replay

pytestmark = pytest.mark.integration


ISSUER = "http://issuer.test"


def _log() -> Log:
    log = Log()
    log.ordinary("S1")
    log.ordinary("S2", school="B")
    checks = log.routine_checks()
    log.pass_checks("S1", checks)
    log.pass_checks("S2", checks, except_months=["2026-11"])
    for school in (SCHOOL, "B"):
        log.add(SchoolRegistered(school_id=school, name="school", city="Zhumadian", county="Yicheng",
                                 administered_by="county"), at(date(2026, 8, 1), 9), school_stream(school))
    return log


class LogReader:
    """The part of the store the edge uses: a stream's events (from the test's log) and the
    database pool (the personal-data read log)."""

    def __init__(self, log: Log, pool: Pool) -> None:
        self.log, self.pool = log, pool

    def read_stream(self, stream: str) -> list[Any]:
        return [e for e in self.log.events if e.stream == stream]


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SigningKey:
    key = load_or_create_key(tmp_path / "key.pem")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(key.jwks()))
    monkeypatch.setattr(edge, "_verifier", TokenVerifier(AuthSettings(ISSUER, jwks.as_uri(), "studentaid")))
    return key


@pytest.fixture
def service(pg_dsn: str, key: SigningKey) -> Iterator[Any]:
    pool = Pool(pg_dsn, size=2)
    try:
        yield worker_factory(EligibilityService, projection=LiveProjection(pool, Projection()),
                             store=LogReader(_log(), pool))
    finally:
        pool.close()


def get(key: SigningKey, path: str, role: str = "province", **area: str) -> Any:
    token = mint(key, ISSUER, "studentaid", person_claims(role, **area))
    return EnvironBuilder(method="GET", path=path, headers={"Authorization": f"Bearer {token}"}).get_request()


def test_the_projection_is_a_nameko_dependency() -> None:
    assert isinstance(EligibilityService.projection, ProjectionProvider)


def test_events_in_statuses_out_through_rpc_and_http(service: Any, key: SigningKey) -> None:
    log = _log()
    for envelope in log.events + log.events[:3]:  # redelivered events change nothing
        service.on_event(envelope)
    expected = replay(log.events)
    assert service.student_status("S2") == {"student_id": "S2", "statuses": [expected[("S2", "2026-autumn")]]}
    with pytest.raises(NotFound):
        service.student_status("S2", "2027-spring")
    school = service.school_month("B", "2026-11")
    assert school["counts"] == {"failed": 1} and school["students"][0]["student_id"] == "S2"
    summary = service.province_summary("2026-11", county="Yicheng")
    assert (summary["students"], summary["passed"], summary["failed"]) == (2, 1, 1)

    status, _, body = service.school_http(get(key, "/"), school_id="B", month="2026-11")
    assert (status, json.loads(body)) == (200, school)
    status, _, body = service.summary_http(get(key, "/?county=Yicheng"), month="2026-11")
    assert (status, json.loads(body)) == (200, summary)
    status, _, body = service.student_http(get(key, "/?semester=2026-autumn"), student_id="S1")
    assert (status, json.loads(body)["statuses"]) == (200, [expected[("S1", "2026-autumn")]])
    with service.store.pool.connection() as conn:  # the read of S1's personal data is logged
        reads = edge.personal_data_reads(conn, student_id="S1")
    assert [(r["caller_role"], r["route"]) for r in reads] == [("province", "student")]
    county = {"role": "county", "city": "Zhumadian", "county": "Yicheng"}
    status, _, body = service.summary_http(get(key, "/", **county), month="2026-11")
    assert (status, json.loads(body)) == (200, summary)  # a county sees its own county
    status, _, body = service.summary_http(get(key, "/?county=Xiping", **county), month="2026-11")
    assert (status, json.loads(body)["error"]) == (403, "OUTSIDE_AREA")
    status, _, body = service.summary_by_school_http(get(key, "/", **county), month="2026-11")
    assert status == 200 and {row["county"] for row in json.loads(body)["schools"]} == {"Yicheng"}
    status, _, body = service.summary_by_school_http(get(key, "/?county=Xiping", **county), month="2026-11")
    assert (status, json.loads(body)["error"]) == (403, "OUTSIDE_AREA")
    status, _, body = service.student_http(get(key, "/", "school", school="B"), student_id="S1")
    assert (status, json.loads(body)["error"]) == (403, "OUTSIDE_AREA")  # S1 is at another school


def test_bad_months_and_unknown_students_are_clear_errors(service: Any, key: SigningKey) -> None:
    for month in ("2026-13", "2026-1", "26-11", "1999-12"):
        with pytest.raises(DomainError) as bad:
            service.school_month("B", month)
        assert bad.value.code == "BAD_MONTH" and month in bad.value.message
        status, _, body = service.summary_http(get(key, "/"), month=month)
        assert (status, json.loads(body)["error"]) == (422, "INVALID_REQUEST")
    with pytest.raises(NotFound):
        service.student_status("NOPE")
    status, _, body = service.student_http(get(key, "/"), student_id="NOPE")
    assert (status, json.loads(body)["error"]) == (404, "UNKNOWN_STUDENT")
