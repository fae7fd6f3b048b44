"""The audit replay on both cores (``replay --workers N``) gives exactly the sequential replay's
statuses, in the same order, on a generated province in a real PostgreSQL log (issue 14)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backbone.eventstore import PostgresEventStore
from services.eligibility.domain import Ledger
from services.eligibility.logsource import PARTITION_SQL, fast_events, partition_of, postgres_events
from services.eligibility.policyfile import load_policy_book
from services.eligibility.projection.writer import rebuild
from services.eligibility.replay import Filters, fold_log, main, replay, replay_parallel
from tests.eligibility.elig_builders import ROOT_DIR, SCHOOL, Log, at

sys.path.insert(0, str(ROOT_DIR / "bench"))
from eligibility_bench import Generator, copy_log  # noqa: E402

pytestmark = pytest.mark.integration

STUDENTS = 3000


def _edge_cases() -> Log:
    """Students the generated province lacks: a leave, an approved appeal, a placement, a leaver,
    a targeted check, a national-only student, a second semester."""
    log = Log()
    for sid in ("E1", "E2", "E3", "E4", "E5"):
        log.ordinary(sid)
    checks = log.routine_checks(schools=[SCHOOL])  # the province's checks concern everyone
    log.pass_checks("E1", checks)
    log.pass_checks("E2", checks, except_months=["2026-11"])
    log.published("2026-11", "2026-12-01")
    log.appeal("E2", "2026-11", "2026-12-02", decision="approved")
    log.absent("E3", checks["2026-10"], "leave", at(date(2026, 10, 22), 10, 30))
    log.placement("E4", "2026-11-01", "2026-12-31")
    log.left("E5", "2026-11-05")
    log.check("T-1", "2026-12", date(2026, 12, 15), kind="targeted", students=["E1"])
    log.roster("2026-autumn", ["E1", "E2", "E3", "NATIONAL-ONLY"], parts=2)
    log.enrolled("E1", "2027-spring")
    return log


@pytest.fixture
def province(pg_dsn: str) -> str:
    copy_log(pg_dsn, Generator(STUDENTS, 40, seed=7))
    PostgresEventStore(pg_dsn).append(_edge_cases().events)
    return pg_dsn


def _key(statuses: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(s["student_id"], s["semester"]) for s in statuses]


def test_parallel_replay_equals_the_sequential_replay(province: str) -> None:
    book = load_policy_book()
    expected = list(replay(postgres_events(province), book))
    assert len({s["student_id"] for s in expected}) >= STUDENTS + 5
    outcomes = {m["status"] for s in expected for m in s["months"]}
    assert {"passed", "failed", "excused", "passed_on_appeal", "left_school"} <= outcomes
    for workers, low_memory in ((2, True), (2, False), (3, True), (1, False)):
        found = list(replay_parallel(province, book, workers=workers, low_memory=low_memory))
        assert _key(found) == _key(expected), (workers, low_memory)
        assert found == expected, (workers, low_memory)


def test_parallel_replay_filters_like_the_sequential_one(province: str) -> None:
    book = load_policy_book()
    filters = Filters(students=["G41000000017", "E2", "NATIONAL-ONLY", "G41000002999"])
    expected = list(replay(postgres_events(province), book, filters))
    assert _key(expected) == [("E2", "2026-autumn"), ("G41000000017", "2026-autumn"),
                              ("G41000002999", "2026-autumn"), ("NATIONAL-ONLY", "2026-autumn")]
    assert list(replay_parallel(province, book, filters, workers=2)) == expected
    by_school = Filters(schools=["4100000003"])
    expected = list(replay(postgres_events(province), book, by_school))
    assert len(expected) == STUDENTS // 40
    assert list(replay_parallel(province, book, by_school, workers=2, low_memory=False)) == expected


def test_the_fast_reader_folds_the_same_facts_as_the_store_cursor(province: str) -> None:
    expected = fold_log(postgres_events(province), Ledger())
    assert fold_log(fast_events(province, ordered=False), Ledger()) == expected


def test_partition_is_the_same_in_python_and_in_postgresql(pg_dsn: str) -> None:
    ids = [f"G41{i:09d}" for i in range(200)] + ["学生-7", "E1", "", "x" * 300]
    sql = PARTITION_SQL.replace("payload->>'student_id'", "%s")
    with psycopg.connect(pg_dsn) as conn:
        for parts in (2, 3, 7):
            for sid in ids:
                row = conn.execute(f"SELECT {sql}", (sid, parts, partition_of(sid, parts))).fetchone()
                assert row is not None and row[0] is True, sid
    assert len({partition_of(sid, 2) for sid in ids}) == 2


def test_verify_with_workers_passes_then_finds_a_tampered_row(province: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(province) as conn:
        top = conn.execute("SELECT max(position) FROM events").fetchone()[0]
        rebuild(conn, fold_log(postgres_events(province), Ledger()), through_position=top)
    args = ["--source", "postgres", "--dsn", province, "--verify", "--workers", "2", "--progress-every", "0"]
    assert main(args) == 0
    assert "no differences" in capsys.readouterr().err
    with psycopg.connect(province) as conn:
        conn.execute("DELETE FROM eligibility_status WHERE student_id = 'G41000001234'")
    assert main(args) == 1
    assert capsys.readouterr().out.splitlines() == ["G41000001234 2026-autumn: missing from the projection"]


def test_cli_with_workers_writes_the_same_json_and_csv(province: str, tmp_path: Path) -> None:
    def run(name: str, *extra: str) -> tuple[list[str], str]:
        out_json, out_csv = tmp_path / f"{name}.json", tmp_path / f"{name}.csv"
        assert main(["--source", "postgres", "--dsn", province, "--out-json", str(out_json),
                     "--out-csv", str(out_csv), "--progress-every", "0", *extra]) == 0
        lines = out_json.read_text(encoding="utf-8").splitlines()
        return lines[1:], out_csv.read_text(encoding="utf-8")  # the first line holds generated_at

    expected = run("sequential")
    assert len(expected[0]) > STUDENTS and expected[1].count("\n") > STUDENTS
    assert run("workers", "--workers", "2") == expected
    assert run("workers-low", "--workers", "2", "--low-memory", "--school", "4100000003")[1] == run(
        "school", "--school", "4100000003")[1]
