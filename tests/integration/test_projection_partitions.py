"""The projection's writers in parallel (issue 14): students fall into partitions; per-student batches of
different partitions and backlog steps of different partitions run at the same time, a batch that writes
shared facts runs alone, the summary counts stay exact, and nothing deadlocks. A national roster imported
in several parts re-derives each student once after its last part."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import date
from typing import Any

import psycopg
import pytest

from contracts.envelope import Envelope
from services.eligibility.projection import queries
from services.eligibility.projection.writer import PARTITIONS, Projection, partition
from tests.eligibility.elig_builders import Log, at, replay
from tests.eligibility.test_elig_backlog_pg import _drain, _rows

pytestmark = pytest.mark.integration


@pytest.fixture
def dsn(fresh_database: str) -> str:
    return fresh_database  # migrated like production (0103 included)


def _students_in(parts: set[int], n: int, prefix: str = "S") -> list[str]:
    """``n`` student ids of each partition in ``parts``."""
    found: dict[int, list[str]] = {p: [] for p in parts}
    i = 0
    while any(len(v) < n for v in found.values()):
        sid = f"{prefix}{i:05d}"
        p = partition(sid)
        if p in found and len(found[p]) < n:
            found[p].append(sid)
        i += 1
    return [sid for v in found.values() for sid in v]


def test_the_partition_function_is_the_same_in_python_and_sql(dsn: str) -> None:
    ids = [f"S{i}" for i in range(500)] + ["学生-1", "", "4101020080101123X"]
    with psycopg.connect(dsn) as conn:
        sql = dict(conn.execute("SELECT s, eligibility_part(s) FROM unnest(%s::text[]) AS s",
                                (ids,)).fetchall())
    assert sql == {sid: partition(sid) for sid in ids}
    assert set(sql.values()) == set(range(PARTITIONS))


def _meanwhile(live: Projection, action: Any, seen: list[str] | None = None) -> list[Any]:
    """Run ``action`` once while ``live`` is inside its next re-derivation: its locks (shared facts,
    partitions) are held, its statuses not yet written. Returns what ``action`` returned or raised;
    ``seen`` gets the students ``live`` re-derives."""
    outcome: list[Any] = []

    def hook(students: list[str]) -> None:
        if seen is not None:
            seen.extend(students)
        if not outcome:
            try:
                outcome.append(action())
            except Exception as exc:  # noqa: BLE001 (the caller asserts on it)
                outcome.append(exc)

    live.on_rederive = hook
    return outcome


def test_batches_of_different_partitions_run_at_once_and_shared_facts_wait_for_both(dsn: str) -> None:
    a, b = _students_in({1}, 1) + _students_in({2}, 1)
    a2 = _students_in({1}, 2)[1]
    log = Log()
    for sid in (a, b, a2):
        log.ordinary(sid)
    check = log.check("R-2026-11", "2026-11", at("2026-11-12").date(), closed=False)
    live, other = Projection(defer_everyone=True), Projection(defer_everyone=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        live.apply_events(conn, log.events)
        _drain(conn, live, 100)
    day = date(2026, 11, 12)
    first = log.passed(a, check, day)
    second, same_partition = log.passed(b, check, day), log.passed(a2, check, day)
    closing = log.closed(check, day)
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn, autocommit=True) as side:
        side.execute("SET lock_timeout = '300ms'")

        def others() -> list[Any]:
            tried = []
            for batch in ([second], [same_partition], [closing]):
                try:
                    tried.append(other.apply_events(side, batch).applied)
                except psycopg.errors.LockNotAvailable as exc:
                    tried.append(type(exc))
            return tried

        outcome = _meanwhile(live, others)
        assert live.apply_events(conn, [first]).applied == 1
        # another partition went through while the first batch held partition 1; the same partition,
        # and a batch writing shared facts, waited for it (here until lock_timeout)
        assert outcome == [[1, psycopg.errors.LockNotAvailable, psycopg.errors.LockNotAvailable]]
        live.on_rederive = None
        other.apply_events(conn, log.events)  # the rest (and duplicates)
        _drain(conn, other, 100)
        for month in ("2026-10", "2026-11"):
            assert queries.province_summary(conn, month) == queries.province_summary_scan(conn, month)
    assert _rows(dsn) == replay(log.events)


def test_two_backlog_steps_take_different_partitions_at_once(dsn: str) -> None:
    log = Log()
    for sid in _students_in(set(range(PARTITIONS)), 3):
        log.ordinary(sid)
    log.check("R-2026-11", "2026-11", at("2026-11-12").date(), closed=False)
    first, second = Projection(defer_everyone=True), Projection(defer_everyone=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        first.apply_events(conn, log.events)
        assert first.backlog(conn) == (0, 3 * PARTITIONS)
    taken: dict[str, list[str]] = {"first": [], "second": []}
    second.on_rederive = taken["second"].extend
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn, autocommit=True) as side:
        outcome = _meanwhile(first, lambda: second.rederive_step(side, 10, nowait=True), taken["first"])
        assert first.rederive_step(conn, 10) == 3
        assert outcome == [3]  # the second step ran while the first held its partition: another one
        assert len({partition(s) for s in taken["first"]} | {partition(s) for s in taken["second"]}) == 2
        steps = _drain(conn, first, 10) + _drain(side, second, 10)
        assert sum(steps) == 3 * PARTITIONS - 6 and first.backlog(conn) is None
    counted = Counter(taken["first"] + taken["second"])
    assert set(counted.values()) == {1} and len(counted) == 3 * PARTITIONS
    assert _rows(dsn) == replay(log.events)


def test_concurrent_writers_and_backlog_steps_neither_deadlock_nor_lose_anything(dsn: str) -> None:
    """Two writers (threads, each its own Projection and connection) apply random per-student batches
    and backlog steps while shared events arrive; the result is a replay's, the counts a scan's."""
    students = _students_in(set(range(PARTITIONS)), 6)
    base = Log()
    checks = base.routine_checks()
    for sid in students:
        base.ordinary(sid, school=f"SCH{partition(sid) % 3}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        Projection(defer_everyone=True).apply_events(conn, base.events)
    day = date(2026, 11, 12)
    rng = random.Random(5)
    later = Log()
    for sid in students:
        later.pass_checks(sid, checks, except_months=["2026-11"] if rng.random() < 0.3 else [])
        if rng.random() < 0.3:
            later.absent(sid, checks["2026-11"], "leave", at(day, 10, 30))
    per_student = list(later.events)
    shared = Log()
    shared.check("R-X-11", "2026-11", day, schools=["SCH1"])  # a school-wide check: shared facts
    shared.roster("2026-autumn", students[::2], parts=3)
    rng.shuffle(per_student)
    work: list[list[Envelope]] = [per_student[i:i + 7] for i in range(0, len(per_student), 7)]
    for n, env in enumerate(shared.events):  # shared events among the batches
        work.insert((n + 1) * len(work) // (len(shared.events) + 1), [env])
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        # the second writer applies even these small batches range by range (several transactions)
        live = Projection(defer_everyone=True, split_from=5 if seed == 2 else 100)
        mine = random.Random(seed)
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                while True:
                    with lock:
                        batch = work.pop(0) if work else None
                    if batch is None:
                        break
                    live.apply_events(conn, batch)
                    if mine.random() < 0.5:
                        live.rederive_step(conn, 4, nowait=True)
                _drain(conn, live, 4)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with psycopg.connect(dsn, autocommit=True) as conn:
        live = Projection(defer_everyone=True)
        _drain(conn, live, 50)
        assert live.backlog(conn) is None
        applied = conn.execute("SELECT count(*) FROM processed_events"
                               " WHERE consumer = 'eligibility'").fetchone()
        for month in ("2026-10", "2026-11", "2026-12"):
            assert queries.province_summary(conn, month) == queries.province_summary_scan(conn, month)
    everything = base.events + later.events + shared.events
    assert applied[0] == len(everything)
    assert _rows(dsn) == replay(everything)


def test_a_roster_in_several_parts_re_derives_each_student_once_after_the_last_part(dsn: str) -> None:
    students = _students_in(set(range(PARTITIONS)), 4)
    log = Log()
    checks = log.routine_checks()
    for sid in students:
        log.ordinary(sid)
        log.pass_checks(sid, checks)
    live = Projection(defer_everyone=True)
    derived: Counter[str] = Counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        live.apply_events(conn, log.events)
        _drain(conn, live, 1000)
        before = len(log.events)
        log.roster("2026-autumn", students[:-5] + ["S-ONLY-ON-ROSTER"], parts=5)
        live.on_rederive = derived.update
        for env in log.events[before:]:  # each part in its own batch, as the parts arrive
            assert live.apply_events(conn, [env]).rederived == 0
            assert live.backlog(conn) == (0, len(students))
        steps = _drain(conn, live, 7)
        assert max(steps) <= 7 and len(steps) >= PARTITIONS
        assert live.backlog(conn) is None
        for month in ("2026-10", "2026-11", "2026-12"):
            assert queries.province_summary(conn, month) == queries.province_summary_scan(conn, month)
    # everyone (also the student known only from the roster) once, after the last part
    assert derived == Counter({sid: 1 for sid in [*students, "S-ONLY-ON-ROSTER"]})
    assert _rows(dsn) == replay(log.events)


@pytest.mark.parametrize("written_by", ["batches", "rebuild"])
def test_the_stored_count_contributions_equal_what_sql_derives_from_the_statuses(dsn: str,
                                                                                  written_by: str) -> None:
    """``writer.contrib`` (what the count triggers read, migrations/0104) against ``eligibility_contrib``
    (0102, from the status jsonb) on every row of a varied history, written by batches or by a rebuild
    from a replay, and the counts against a scan."""
    from services.eligibility.domain import Ledger
    from services.eligibility.projection.writer import rebuild
    from tests.eligibility.test_elig_projection_pg import _history

    log = _history()
    for sid in ("S1", "S2", "S3"):
        log.appeal(sid, "2026-12", "2026-12-20", decision="rejected")
    live = Projection(defer_everyone=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if written_by == "batches":
            for start in range(0, len(log.events), 5):
                live.apply_events(conn, log.events[start:start + 5])
            _drain(conn, live, 3)
        else:
            ledger = Ledger()
            for env in log.events:
                ledger.apply(env)
            rebuild(conn, ledger, through_position=len(log.events))
        rows = conn.execute(
            "SELECT s.student_id, s.semester, s.contrib,"
            " array(SELECT c.month || chr(31) || c.metric || chr(31) || c.v"
            "       FROM eligibility_contrib(s.status) c)"
            " FROM eligibility_status s").fetchall()
        for month in ("2026-10", "2026-11", "2026-12"):
            assert queries.province_summary(conn, month) == queries.province_summary_scan(conn, month)
    assert rows and all(stored is not None for _, _, stored, _ in rows)
    metrics = set()
    for _, _, stored, derived in rows:
        assert Counter(stored.split("\x1e")) == Counter(derived)
        metrics |= {entry.split("\x1f")[1] for entry in derived}
    assert {"students", "checked", "passed", "failed", "grant_granted", "grant_withheld"} <= metrics, metrics


def test_a_large_per_student_batch_is_applied_range_by_range_and_equals_a_replay(dsn: str) -> None:
    students = _students_in(set(range(PARTITIONS)), 3)
    log = Log()
    checks = log.routine_checks()
    for sid in students:
        log.ordinary(sid)
    shared_part = len(log.events)
    for sid in students:
        log.pass_checks(sid, checks, except_months=["2026-12"] if partition(sid) % 3 == 0 else [])
    live = Projection(defer_everyone=True, split=4, split_from=50)
    per_student = log.events[shared_part:]
    groups = live._split(per_student)
    assert len(groups) == 4 and sum(map(len, groups)) == len(per_student)
    ranges = [{partition(e.payload["student_id"]) // 4 for e in group} for group in groups]
    assert ranges == [{0}, {1}, {2}, {3}]  # ascending ranges: every student's events in one transaction
    assert live._split(log.events) == [log.events]  # shared facts in the batch: one transaction
    with psycopg.connect(dsn, autocommit=True) as conn:
        live.apply_events(conn, log.events[:shared_part])
        noisy = per_student + random.Random(2).sample(per_student, 30)
        result = live.apply_events(conn, noisy)
        assert (result.received, result.applied, result.duplicates) == (len(noisy), len(per_student), 30)
        assert result.new_ids == {e.event_id for e in per_student}
        _drain(conn, live, 100)
        for month in ("2026-10", "2026-11", "2026-12"):
            assert queries.province_summary(conn, month) == queries.province_summary_scan(conn, month)
    assert _rows(dsn) == replay(log.events)
