"""Shared events without a stall (issue 14): with ``defer_everyone`` a province-wide event stores its
fact and marks a backlog; the students a batch names are re-derived at once, everyone else by
``rederive_step`` in chunks; once drained, the projection equals a replay."""

from __future__ import annotations

import psycopg

from services.eligibility.projection import audit, queries
from services.eligibility.projection.writer import Projection
from tests.eligibility.elig_builders import Log, at, replay
from tests.eligibility.test_elig_projection_pg import _history


def _rows(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        return {(sid, sem): st for sid, sem, st in audit.iter_statuses(conn)}


def _drain(conn: psycopg.Connection, live: Projection, limit: int) -> list[int]:
    steps = []
    while (n := live.rederive_step(conn, limit)) > 0:
        steps.append(n)
    return steps


def test_a_province_wide_event_marks_a_backlog_drained_in_chunks(pg_dsn: str) -> None:
    log = _history()
    events = log.events
    live = Projection(defer_everyone=True)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for e in events:
            live.apply_events(conn, [e])
        assert live.backlog(conn) is not None  # the roster import, the checks...
        steps = _drain(conn, live, limit=2)
        assert steps and max(steps) <= 2 and live.backlog(conn) is None
        assert _rows(pg_dsn) == replay(events)
        for month in ("2026-10", "2026-11", "2026-12"):
            assert queries.province_summary(conn, month) == queries.province_summary_scan(conn, month)


def test_a_student_named_in_a_batch_is_current_at_once_while_the_backlog_waits(pg_dsn: str) -> None:
    log = Log()
    for sid in ("S1", "S2", "S3"):
        log.ordinary(sid)
    live = Projection(defer_everyone=True)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        live.apply_events(conn, log.events)
        _drain(conn, live, limit=10)
        before = _rows(pg_dsn)
        day = at("2026-11-12").date()
        check = log.check("R-2026-11", "2026-11", day, closed=False)
        opened = log.events[-1]
        result = live.apply_events(conn, [opened])
        assert result.rederived == 0 and live.backlog(conn) == (0, 3)
        assert _rows(pg_dsn) == before  # nobody re-derived yet: the batch did not stall on everyone
        passed = log.passed("S2", check, day)
        assert live.apply_events(conn, [passed]).rederived == 1
        now = _rows(pg_dsn)
        assert now[("S2", "2026-autumn")] == replay(log.events)[("S2", "2026-autumn")]
        assert now[("S1", "2026-autumn")] == before[("S1", "2026-autumn")]
        steps = _drain(conn, live, limit=2)  # a step takes at most 2 students of one partition
        assert sum(steps) == 3 and max(steps) <= 2
        assert _rows(pg_dsn) == replay(log.events)
        # a second province-wide event while a backlog runs starts it again from the first student
        log.closed(check, day)
        live.apply_events(conn, [log.events[-1]])
        assert live.rederive_step(conn, 2) in (1, 2)
        log.check("R-2026-12", "2026-12", at("2026-12-10").date(), closed=False)
        live.apply_events(conn, [log.events[-1]])
        assert live.backlog(conn) == (0, 3)
        _drain(conn, live, limit=2)
        assert _rows(pg_dsn) == replay(log.events)


def test_without_deferral_everyone_is_re_derived_in_the_batch(pg_dsn: str) -> None:
    log = Log()
    for sid in ("S1", "S2"):
        log.ordinary(sid)
    log.check("R-2026-11", "2026-11", at("2026-11-12").date(), closed=False)
    live = Projection()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        live.apply_events(conn, log.events[:-1])
        assert live.apply_events(conn, log.events[-1:]).rederived == 2
        assert live.backlog(conn) is None
    assert _rows(pg_dsn) == replay(log.events)


def test_a_step_yields_to_a_batch_holding_the_lock(pg_dsn: str) -> None:
    from services.eligibility.projection.writer import LOCK_KEY

    log = Log()
    log.ordinary("S1")
    log.check("R-2026-11", "2026-11", at("2026-11-12").date(), closed=False)
    live = Projection(defer_everyone=True)
    with psycopg.connect(pg_dsn, autocommit=True) as conn, psycopg.connect(pg_dsn) as batch:
        live.apply_events(conn, log.events)
        assert live.backlog(conn) == (0, 1)
        batch.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))  # a batch in flight
        assert live.rederive_step(conn, 10, nowait=True) == -1
        batch.rollback()
        assert live.rederive_step(conn, 10, nowait=True) == 1
        assert live.rederive_step(conn, 10, nowait=True) == 0 and live.backlog(conn) is None
    assert _rows(pg_dsn) == replay(log.events)
