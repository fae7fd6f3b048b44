"""The live projection and the PostgreSQL log source, against a throwaway database."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from services.eligibility.projection import audit, queries
from services.eligibility.projection.writer import Projection, rebuild
from services.eligibility.replay import main
from tests.eligibility.elig_builders import ROOT_DIR, Log, at, month, replay, write_jsonl

pytestmark = pytest.mark.integration


def _history() -> Log:
    log = Log()
    for sid, school in (("S1", "A"), ("S2", "A"), ("S3", "B"), ("S4", "B")):
        log.ordinary(sid, school=school, level="especially_difficult" if sid == "S3" else "difficult")
    checks = log.routine_checks()
    log.pass_checks("S1", checks)
    log.pass_checks("S2", checks, except_months=["2026-11"])
    log.pass_checks("S3", checks, except_months=["2026-10"])
    log.absent("S3", checks["2026-10"], "leave", at(date(2026, 10, 22), 10, 30))
    school_check = log.check("R-B-12", "2026-12", date(2026, 12, 17), schools=["B"])
    log.passed("S3", school_check, date(2026, 12, 17))
    log.check("T-1", "2026-12", date(2026, 12, 15), kind="targeted", students=["S1"])
    log.published("2026-11", "2026-12-01", school="A")
    log.appeal("S2", "2026-11", "2026-12-02", decision="approved")
    log.placement("S4", "2026-11-01", "2026-12-31")
    log.pass_checks("S4", checks, except_months=["2026-11", "2026-12"])
    log.roster("2026-autumn", ["S1", "S2", "S3", "S5"], parts=2)
    return log


def _rows(dsn: str) -> dict[tuple[str, str], dict[str, Any]]:
    with psycopg.connect(dsn) as conn:
        return {(sid, sem): st for sid, sem, st in audit.iter_statuses(conn)}


def test_projection_in_shuffled_duplicated_batches_equals_a_replay(pg_dsn: str) -> None:
    events = _history().events
    expected = replay(events)
    noisy = events + random.Random(3).sample(events, 20)
    random.Random(4).shuffle(noisy)
    live = Projection()
    with psycopg.connect(pg_dsn) as conn:
        i = 0
        rng = random.Random(5)
        while i < len(noisy):
            size = rng.randint(1, 9)
            live.apply_events(conn, noisy[i:i + size])
            i += size
    assert _rows(pg_dsn) == expected
    assert expected[("S5", "2026-autumn")]["roster"]["status"] == "national_only"


def test_apply_is_idempotent(pg_dsn: str) -> None:
    events = _history().events
    with psycopg.connect(pg_dsn) as conn:
        first = Projection().apply_events(conn, events)
        before = _rows(pg_dsn)
        again = Projection().apply_events(conn, events)
        assert (first.applied, first.duplicates) == (len(events), 0)
        assert (again.applied, again.duplicates, again.rederived) == (0, len(events), 0)
        assert audit.high_water(conn) == len(events)
    assert _rows(pg_dsn) == before


def test_failed_batch_leaves_nothing_behind(pg_dsn: str) -> None:
    events = _history().events
    live = Projection()
    with psycopg.connect(pg_dsn) as conn:
        live.apply_events(conn, events[:10])
        broken = events[10].__class__(**{**events[10].__dict__, "payload": {"student_id": "S1"}})
        with pytest.raises(KeyError):
            live.apply_events(conn, [events[11], broken])
        assert audit.processed_count(conn, 0, 10**9) == 10
        live.apply_events(conn, events[10:])
    assert _rows(pg_dsn) == replay(events)


def test_verify_passes_then_lists_a_tampered_row(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _history().events
    path = write_jsonl(tmp_path / "log.jsonl", events)
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, events)
    assert main(["--source", f"jsonl:{path}", "--dsn", pg_dsn, "--verify", "--progress-every", "0"]) == 0
    assert "no differences" in capsys.readouterr().err
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("DELETE FROM eligibility_status WHERE student_id = 'S4'")
        conn.execute("INSERT INTO eligibility_status (student_id, semester, status)"
                     " SELECT 'S9', semester, status FROM eligibility_status WHERE student_id = 'S1'")
    assert main(["--source", f"jsonl:{path}", "--dsn", pg_dsn, "--verify", "--progress-every", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["S4 2026-autumn: missing from the projection",
                                         "S9 2026-autumn: in the projection but not in the replay"]
    assert "2 difference(s)" in captured.err


def test_verify_reports_projection_rows_no_logged_event_explains(pg_dsn: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    events = _history().events
    path = write_jsonl(tmp_path / "log.jsonl", events)
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, events)
        # forged rows: a semester no event gives S1 (before and after its real one), a student
        # the log never names (sorting before everyone), all with a plausible status
        conn.execute("INSERT INTO eligibility_status (student_id, semester, school_id, status)"
                     " SELECT s.student_id, f.semester, s.school_id, s.status FROM eligibility_status s,"
                     " (VALUES ('2026-spring'), ('2027-spring')) AS f(semester)"
                     " WHERE s.student_id = 'S1'")
        conn.execute("INSERT INTO eligibility_status (student_id, semester, school_id, status)"
                     " SELECT '0-forged', semester, school_id, status FROM eligibility_status"
                     " WHERE student_id = 'S2'")
    args = ["--source", f"jsonl:{path}", "--dsn", pg_dsn, "--verify", "--progress-every", "0"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["0-forged 2026-autumn: in the projection but not in the replay",
                                         "S1 2026-spring: in the projection but not in the replay",
                                         "S1 2027-spring: in the projection but not in the replay"]
    assert "3 difference(s)" in captured.err


def test_verify_compares_a_student_semester_by_semester_whatever_their_order(
        pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _history()  # then checks in spring and autumn 2027: a replay derives 2027-spring first
    log.pass_checks("S1", log.routine_checks("2027-spring"), semester="2027-spring")
    log.passed("S1", log.check("R-2027-10", "2027-10", date(2027, 10, 21), semester="2027-autumn"),
               date(2027, 10, 21))
    path = write_jsonl(tmp_path / "log.jsonl", log.events)
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, log.events)
        semesters = [r[0] for r in conn.execute("SELECT semester FROM eligibility_status"
                                                " WHERE student_id = 'S1' ORDER BY semester")]
        assert semesters == ["2026-autumn", "2027-autumn", "2027-spring"]
    args = ["--source", f"jsonl:{path}", "--dsn", pg_dsn, "--verify", "--progress-every", "0"]
    assert main(args) == 0
    assert "no differences" in capsys.readouterr().err
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("DELETE FROM eligibility_status WHERE student_id = 'S1' AND semester = '2026-autumn'")
    assert main(args) == 1
    assert capsys.readouterr().out.splitlines() == ["S1 2026-autumn: missing from the projection"]


def test_verify_lists_a_changed_decision(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _history().events
    path = write_jsonl(tmp_path / "log.jsonl", events)
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, events)
        conn.execute(
            "UPDATE eligibility_status SET status = jsonb_set(status, '{grant,0,decision}', '\"withheld\"')"
            " WHERE student_id = 'S1'"
        )
    assert main(["--source", f"jsonl:{path}", "--dsn", pg_dsn, "--verify", "--progress-every", "0"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ['S1 2026-autumn: grant[0].decision: replay="granted" projection="withheld"']


def test_verify_reports_events_the_projection_missed(pg_dsn: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    events = _history().events
    path = write_jsonl(tmp_path / "log.jsonl", events)
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, [e for e in events if e.type != "AppealResolved"])
    assert main(["--source", f"jsonl:{path}", "--dsn", pg_dsn, "--verify", "--progress-every", "0"]) == 1
    out = capsys.readouterr().out
    assert "S2 2026-autumn: months[1].status: replay=\"passed_on_appeal\" projection=\"failed\"" in out
    n = len(events)
    assert f"log has {n} events in positions 1..{n}; the projection processed {n - 1}" in out


def test_queries_answer_from_the_projection_as_the_pure_helpers_do(pg_dsn: str) -> None:
    events = _history().events
    statuses = list(replay(events).values())
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, events)
        one = queries.student_status(conn, "S2")
        assert [s["semester"] for s in one] == ["2026-autumn"]
        assert month(one[0], "2026-11")["status"] == "passed_on_appeal"
        school = queries.school_month(conn, "B", "2026-12")
        assert school == queries.school_month_from(statuses, "B", "2026-12")
        assert school["counts"] == {"placement_internship": 1, "passed": 1}
        assert {s["name_masked"] for s in school["students"]} == {"张*"}
        for month_ in ("2026-09", "2026-10", "2026-11", "2026-12", "2027-01"):
            for filters in (
                {},
                {"school_id": "A"},
                {"county": "Yicheng"},
                {"city": "Zhumadian"},
                {"city": "x"},
            ):
                assert queries.province_summary(conn, month_, **filters) == queries.province_summary_from(
                    statuses, month_, **filters
                )
        nov = queries.province_summary(conn, "2026-11")
    assert nov["withheld_by_reason"] == {"roster_mismatch": 2}  # S4 (in placement too) and S5
    assert nov["students"] == 5 and nov["grant_granted"] == 3


def test_projection_rows_validate_against_the_status_schema(pg_dsn: str) -> None:
    schema = json.loads(
        (ROOT_DIR / "contracts/schemas/eligibility-status.v1.json").read_text(encoding="utf-8")
    )
    row_schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/status"}
    validator = Draft202012Validator(row_schema, format_checker=FormatChecker())
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, _history().events)
    rows = _rows(pg_dsn)
    assert rows
    for status in rows.values():
        validator.validate(status)


def test_postgres_source_replays_like_jsonl_and_as_of_uses_recorded_at(pg_dsn: str, tmp_path: Path) -> None:
    from backbone.eventstore import PostgresEventStore

    log = _history()
    appeal = [e for e in log.events if e.type == "AppealResolved"]
    store = PostgresEventStore(pg_dsn)
    store.append([e for e in log.events if e.type != "AppealResolved"])
    time.sleep(0.05)
    cut = datetime.now(UTC)
    time.sleep(0.05)
    store.append(appeal)
    out_pg, out_jsonl = tmp_path / "pg.json", tmp_path / "jsonl.json"
    assert (
        main(["--source", "postgres", "--dsn", pg_dsn, "--out-json", str(out_pg), "--progress-every", "0"])
        == 0
    )
    write_jsonl(tmp_path / "log.jsonl", log.events)
    assert main(["--source", f"jsonl:{tmp_path / 'log.jsonl'}", "--out-json", str(out_jsonl),
                 "--progress-every", "0"]) == 0
    pg, js = json.loads(out_pg.read_text()), json.loads(out_jsonl.read_text())
    assert pg["statuses"] == js["statuses"]
    assert main(["--source", "postgres", "--dsn", pg_dsn, "--out-json", str(out_pg), "--progress-every", "0",
                 "--as-of", cut.isoformat(), "--student", "S2"]) == 0
    st = json.loads(out_pg.read_text())["statuses"][0]
    assert month(st, "2026-11")["status"] == "failed"


def test_verify_against_the_postgres_log(pg_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    from backbone.eventstore import PostgresEventStore

    store = PostgresEventStore(pg_dsn)
    stored = store.append(_history().events)
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, list(store.read_all()))
    assert main(["--source", "postgres", "--dsn", pg_dsn, "--verify", "--progress-every", "0"]) == 0
    assert len(stored) == len(_history().events)


def test_rebuild_from_a_replay_then_continue_incrementally(pg_dsn: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from services.eligibility.domain import Ledger
    from services.eligibility.policyfile import load_policy_book

    events = _history().events
    cut = len(events) * 2 // 3
    head, tail = events[:cut], events[cut:]
    ledger = Ledger()
    for e in head:
        ledger.apply(e)
    with psycopg.connect(pg_dsn) as conn:
        Projection().apply_events(conn, events[:5])  # something stale to be replaced
        rows = rebuild(conn, ledger, load_policy_book(), through_position=cut)
        assert rows == len(replay(head))
        assert audit.high_water(conn) == cut
        live = Projection()
        live.apply_events(conn, events[cut - 5:])  # overlaps the rebuild: refolding facts is harmless
    assert _rows(pg_dsn) == replay(events)
    path = write_jsonl(tmp_path / "log.jsonl", events)
    assert main(["--source", f"jsonl:{path}", "--dsn", pg_dsn, "--verify", "--progress-every", "0"]) == 0
    assert len(tail) > 5 and tail[-1].type == "NationalRosterImported"


def test_two_consumers_alternating_batches_see_each_others_shared_facts(pg_dsn: str) -> None:
    events = _history().events
    first, second = Projection(), Projection()
    with psycopg.connect(pg_dsn) as conn_a, psycopg.connect(pg_dsn) as conn_b:
        for i in range(0, len(events), 3):
            consumer, conn = (first, conn_a) if (i // 3) % 2 == 0 else (second, conn_b)
            consumer.apply_events(conn, events[i:i + 3])
    assert _rows(pg_dsn) == replay(events)


def test_low_memory_replay_equals_the_full_replay(pg_dsn: str, tmp_path: Path) -> None:
    from backbone.eventstore import PostgresEventStore

    log = _history()
    store = PostgresEventStore(pg_dsn)
    store.append([e for e in log.events if e.type != "AppealResolved"])
    time.sleep(0.05)
    cut = datetime.now(UTC)
    time.sleep(0.05)
    store.append([e for e in log.events if e.type == "AppealResolved"])
    full, low = tmp_path / "full.json", tmp_path / "low.json"
    for extra in ([], ["--student", "S2", "--student", "S5"], ["--school", "B", "--as-of", cut.isoformat()]):
        assert (
            main(
                [
                    "--source",
                    "postgres",
                    "--dsn",
                    pg_dsn,
                    "--out-json",
                    str(full),
                    "--progress-every",
                    "0",
                    *extra,
                ]
            )
            == 0
        )
        assert main(["--source", "postgres", "--dsn", pg_dsn, "--out-json", str(low), "--progress-every", "0",
                     "--low-memory", *extra]) == 0
        expected = json.loads(full.read_text())["statuses"]
        assert expected and json.loads(low.read_text())["statuses"] == expected
    # roster-only students (S5 is on the national list only) come out too
    assert main(["--source", "postgres", "--dsn", pg_dsn, "--out-json", str(low), "--progress-every", "0",
                 "--low-memory"]) == 0
    assert "S5" in {s["student_id"] for s in json.loads(low.read_text())["statuses"]}
    assert main(["--source", "jsonl:x", "--low-memory", "--progress-every", "0"]) == 2
