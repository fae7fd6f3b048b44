"""Summaries that do not scan: eligibility_counts (migration 0102, kept by triggers) gives the same
summary as a scan of the status rows, after every batch, whatever the order, duplicates, a rebuild, or
statuses that change back and forth."""

from __future__ import annotations

import random

import psycopg

from services.eligibility.domain import Ledger
from services.eligibility.policyfile import load_policy_book
from services.eligibility.projection import queries
from services.eligibility.projection.writer import Projection, rebuild
from tests.eligibility.elig_builders import Log, at
from tests.eligibility.test_elig_projection_pg import _history

MONTHS = ("2026-09", "2026-10", "2026-11", "2026-12", "2027-01")
SCOPES = ({}, {"school_id": "A"}, {"school_id": "B"}, {"county": "Yicheng"}, {"city": "Zhumadian"},
          {"city": "x"})


def _same_as_a_scan(conn: psycopg.Connection) -> None:
    for month in MONTHS:
        for scope in SCOPES:
            counted = queries.province_summary(conn, month, **scope)
            scanned = queries.province_summary_scan(conn, month, **scope)
            assert counted == scanned, (month, scope)


def test_counts_follow_every_batch(pg_dsn: str) -> None:
    events = _history().events
    noisy = events + random.Random(1).sample(events, 15)
    random.Random(2).shuffle(noisy)
    live = Projection()
    with psycopg.connect(pg_dsn) as conn:
        i, rng = 0, random.Random(3)
        while i < len(noisy):
            size = rng.randint(1, 12)
            live.apply_events(conn, noisy[i:i + size])
            i += size
            _same_as_a_scan(conn)
        nov = queries.province_summary(conn, "2026-11")
        assert nov["students"] == 5 and nov["withheld_by_reason"] == {"roster_mismatch": 2}
        # nothing left over: no counter of a metric that no status contributes any more
        (negative,) = conn.execute("SELECT count(*) FROM eligibility_counts WHERE n < 0").fetchone()
        assert negative == 0


def test_counts_after_a_rebuild_and_then_incremental_changes(pg_dsn: str) -> None:
    log = _history()
    ledger = Ledger()
    for e in log.events:
        ledger.apply(e)
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, log.events[:7])  # stale rows and counts the rebuild replaces
        rebuild(conn, ledger, load_policy_book(), through_position=len(log.events))
        _same_as_a_scan(conn)
        before = queries.province_summary(conn, "2026-12")
        # a late capture of S2 in a December school check changes one status: counts move by one student
        later = Log()
        later.events = list(log.events)
        check = later.check("R-A-12", "2026-12", at("2026-12-17").date(), schools=["A"])
        later.passed("S2", check, at("2026-12-17").date())
        Projection().apply_events(conn, later.events[len(log.events):])
        _same_as_a_scan(conn)
        after = queries.province_summary(conn, "2026-12")
        assert after["students"] == before["students"]


def test_the_summary_reads_the_counts_not_the_statuses(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, _history().events)
        expected = queries.province_summary(conn, "2026-11")
        conn.execute("ALTER TABLE eligibility_status DISABLE TRIGGER USER")
        conn.execute("DELETE FROM eligibility_status")  # the counts no longer hear of it
        assert queries.province_summary(conn, "2026-11") == expected
        assert queries.province_summary_scan(conn, "2026-11")["students"] == 0
        conn.rollback()
