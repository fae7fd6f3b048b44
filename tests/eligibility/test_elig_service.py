"""The nameko entry point over the injected live projection (``ProjectionProvider``), on a
throwaway database: consuming events, the RPC methods and the HTTP routes' answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from nameko.testing.services import worker_factory

from backbone.db import Pool
from backbone.errors import DomainError, NotFound
from services.eligibility.projection.provider import LiveProjection, ProjectionProvider
from services.eligibility.projection.writer import Projection
from services.eligibility.service import EligibilityService
from tests.eligibility.elig_builders import Log, replay

pytestmark = pytest.mark.integration


@pytest.fixture
def service(pg_dsn: str) -> Iterator[Any]:
    pool = Pool(pg_dsn, size=2)
    try:
        yield worker_factory(EligibilityService, projection=LiveProjection(pool, Projection()))
    finally:
        pool.close()


def _log() -> Log:
    log = Log()
    log.ordinary("S1")
    log.ordinary("S2", school="B")
    checks = log.routine_checks()
    log.pass_checks("S1", checks)
    log.pass_checks("S2", checks, except_months=["2026-11"])
    return log


def test_the_projection_is_a_nameko_dependency() -> None:
    assert isinstance(EligibilityService.projection, ProjectionProvider)


def test_events_in_statuses_out_through_rpc_and_http(service: Any) -> None:
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

    status, _, body = service.school_http(SimpleNamespace(args={}), "B", "2026-11")
    assert (status, json.loads(body)) == (200, school)
    status, _, body = service.summary_http(SimpleNamespace(args={"county": "Yicheng"}), "2026-11")
    assert (status, json.loads(body)) == (200, summary)
    status, _, body = service.student_http(SimpleNamespace(args={"semester": "2026-autumn"}), "S1")
    assert (status, json.loads(body)["statuses"]) == (200, [expected[("S1", "2026-autumn")]])


def test_bad_months_and_unknown_students_are_clear_errors(service: Any) -> None:
    for month in ("2026-13", "2026-1", "26-11", "1999-12"):
        with pytest.raises(DomainError) as bad:
            service.school_month("B", month)
        assert bad.value.code == "BAD_MONTH" and month in bad.value.message
        status, _, body = service.summary_http(SimpleNamespace(args={}), month)
        assert (status, json.loads(body)["error"]) == (400, "BAD_MONTH")
    with pytest.raises(NotFound):
        service.student_status("NOPE")
    status, _, body = service.student_http(SimpleNamespace(args={}), "NOPE")
    assert (status, json.loads(body)["error"]) == (404, "UNKNOWN_STUDENT")
