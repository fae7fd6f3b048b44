"""The check-day simulation's province (``bench/province_build.py``) and its report's arithmetic
(``bench/checkday_sim.py``): the flat-memory projection build (two workers) writes exactly the
tables ``projection.writer.rebuild`` writes, on the real PostgreSQL; its generator is the
eligibility benchmark's, beyond 295,000 students too."""

from __future__ import annotations

import json
import random
import sys
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import checkday_sim  # noqa: E402
import province_build  # noqa: E402

TABLES = {
    "eligibility_facts": "SELECT student_id, school_id, facts, last_position FROM eligibility_facts"
                         " ORDER BY student_id",
    "eligibility_status": "SELECT student_id, semester, school_id, county, city, status, last_position"
                          " FROM eligibility_status ORDER BY student_id, semester",
    "eligibility_shared": "SELECT kind, key, fact FROM eligibility_shared ORDER BY kind, key",
    "eligibility_roster_entries": "SELECT * FROM eligibility_roster_entries ORDER BY 1, 2, 3, 4",
    "eligibility_counts": "SELECT * FROM eligibility_counts ORDER BY 1, 2, 3, 4, 5, 6",
    "rebuilt_through": "SELECT value FROM eligibility_meta WHERE key = 'rebuilt_through'",
}


def snapshot(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {name: conn.execute(query).fetchall() for name, query in TABLES.items()}


def test_the_flat_memory_build_writes_what_rebuild_writes(pg_dsn: str) -> None:
    from services.eligibility.domain.facts import Ledger
    from services.eligibility.logsource import postgres_events
    from services.eligibility.projection.writer import rebuild
    from services.eligibility.replay import fold_log

    copied = province_build.copy_log(pg_dsn, 300, 7)
    with psycopg.connect(pg_dsn) as conn:
        assert copied["events"] == conn.execute("SELECT count(*) FROM events").fetchone()[0] > 3000
        # the dropped indexes of the log are back
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'events'")}
        assert {"events_recorded_at_idx", "events_verdicts_by_check_idx"} <= indexes
        top = conn.execute("SELECT max(position) FROM events").fetchone()[0]
        rows = rebuild(conn, fold_log(postgres_events(pg_dsn), Ledger()), through_position=top)
        expected = snapshot(conn)
        conn.commit()
        figures = province_build.rebuild_low_memory(conn, pg_dsn, chunk=37, workers=2)
        got = snapshot(conn)
        trigger = conn.execute("SELECT tgenabled FROM pg_trigger"
                               " WHERE tgname = 'eligibility_counts_ins'").fetchone()
        contribs = conn.execute("SELECT count(*) FROM eligibility_status WHERE contrib IS NULL").fetchone()
    assert figures["status_rows"] == rows == sum(w["status_rows"] for w in figures["workers"])
    workers = figures["workers"]
    assert [w["part"] for w in workers] == [0, 1] and all(w["students"] for w in workers)
    assert trigger == ("O",)  # the counts' trigger is on again
    assert contribs == (0,)  # every status row has its contrib, as the live writer writes it
    # 300 students and the roster's 100 unknown ids (statuses, no facts)
    assert len(expected["eligibility_facts"]) == 300 and len(expected["eligibility_status"]) == rows >= 400
    assert expected["eligibility_counts"] and expected["eligibility_roster_entries"]
    for name in TABLES:
        assert got[name] == expected[name], name


def test_the_generator_is_the_eligibility_benchmarks_and_goes_past_59_roster_parts() -> None:
    import eligibility_bench

    ours = list(province_build.Generator(300, 7).rows())
    theirs = list(eligibility_bench.Generator(300, 7).rows())
    assert len(ours) == len(theirs) > 3000
    for mine, bench in zip(ours, theirs, strict=True):  # the same rows; the payload's JSON text may differ
        assert mine[:10] == bench[:10] and json.loads(mine[10]) == json.loads(bench[10])
    stamp = province_build.Generator._at(date(2027, 1, 20), 9, 200)  # roster part 200 of a million
    assert (stamp.hour, stamp.minute) == (12, 20)


def test_a_kept_province_records_its_size(pg_dsn: str) -> None:
    assert province_build.recorded(pg_dsn) == {}
    province_build.record(pg_dsn, "province", {"students": 5, "schools": 1, "complete": False})
    province_build.record(pg_dsn, "province", {"students": 5, "schools": 1, "complete": True})
    assert province_build.recorded(pg_dsn) == {"province": {"students": 5, "schools": 1, "complete": True}}


def test_captures_follow_the_curve() -> None:
    hours = checkday_sim.business_times(10_000, random.Random(3))
    assert hours == sorted(hours) and hours[0] >= 9 and hours[-1] <= 17
    peak = sum(1 for h in hours if 10 <= h < 12) / len(hours)
    assert 0.7 < peak < 0.8  # 70 % drawn there, and a quarter of the uniform rest
    # played in 80 s: a business half hour is 5 s; the busiest holds about 17.5 % + 0.8 %
    assert 300 < checkday_sim.peak_rate(hours, 80) < 420


def sample(at: float, running: bool, done: int, applied: set[str]) -> checkday_sim.Sample:
    return checkday_sim.Sample(at, running, done, 1000, frozenset(applied))


def test_a_shared_event_is_reflected_once_applied_and_its_backlog_done() -> None:
    samples = [sample(0.5, False, 0, set()), sample(1.0, True, 0, {"opened"}),
               sample(3.0, True, 400, {"opened"}), sample(5.0, True, 800, {"opened"}),
               sample(6.0, False, 0, {"opened"}),
               sample(10.2, True, 900, {"opened"}),  # a former backlog, before the closing is applied
               sample(10.5, True, 0, {"opened", "closed"}), sample(12.0, True, 300, {"opened", "closed"})]
    opened = checkday_sim.reflected(samples, "opened", 0.2, 10.0)
    assert opened == {"students": 1000, "rederive_students_per_s": 200.0, "reflected_s": 5.8}
    closed = checkday_sim.reflected(samples, "closed", 10.0, None)  # still running at the end
    assert closed == {"students": 1000, "rederive_students_per_s": 200.0, "reflected_s": None,
                      "done_when_interrupted": 300}
