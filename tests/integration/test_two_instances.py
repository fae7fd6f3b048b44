"""Two of everything: two instances of each consumer service (eligibility, enrolment) and two relays
against the real broker and database. The work is shared (each instance handles some), nothing is
applied twice (processed_events, the events emitted, the projection equal a single replay of the
log), and an instance killed with SIGKILL in the middle of the stream loses nothing: its unacked
messages (for eligibility, a batch gathering or being applied) are delivered to the other one.

facematch's two instances share verifications in tests/integration/test_system.py (real faces)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import psycopg
import pytest

from backbone.eventstore import PostgresEventStore
from contracts.events import CaptureVerified
from services.eligibility.projection import audit
from tests.eligibility.elig_builders import AUTUMN_2026, SCHOOL, Log, at, replay
from tests.support import System, http_json, metric_value, wait_for

pytestmark = pytest.mark.integration

STUDENTS = 160


def _history() -> tuple[Log, int]:
    """A school's term: province-wide checks (shared events), students registered, enrolled, with
    hardship, passing their checks (some failing one), and a face-matching verdict of an enrolment
    capture each (which enrolment turns into StudentEnrolled). Returns the log and the verdict count."""
    log = Log()
    checks = log.routine_checks()
    verdicts = 0
    for i in range(STUDENTS):
        sid = f"S{i:04d}"
        log.ordinary(sid)
        log.pass_checks(sid, checks, except_months=["2026-11"] if i % 7 == 0 else [])
        log.add(CaptureVerified(
            capture_id=str(uuid.uuid4()), student_id=sid, school_id=SCHOOL, purpose="enrolment",
            channel="terminal", distance=0.3, threshold=0.6, quality={}, liveness={}, model_version="t",
        ), at(date(2026, 9, 2), 10), f"capture-E{sid}")
        verdicts += 1 + len(AUTUMN_2026) - (1 if i % 7 == 0 else 0)
    return log, verdicts


def _count(dsn: str, sql: str, *args: Any) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row else 0


def _processed(dsn: str, consumer: str) -> int:
    return _count(dsn, "SELECT count(*) FROM processed_events WHERE consumer = %s", consumer)


def _handled(proc: Any, service: str) -> float:
    return metric_value(proc.metrics(), "aid_consumer_handled_total", service=service, outcome="ok")


def test_two_instances_share_the_work_apply_once_and_lose_nothing_when_one_is_killed(system: System) -> None:
    dsn = system.database_url
    small = {"AID_MAX_WORKERS": "60", "AID_BATCH_SIZE": "25", "AID_BATCH_WAIT_MS": "20"}
    procs = {
        "eligibility-1": system.service("eligibility", name="eligibility-1", **small),
        "eligibility-2": system.service("eligibility", name="eligibility-2", **small),
        "enrolment-1": system.service("enrolment", name="enrolment-1", AID_MAX_WORKERS="4"),
        "enrolment-2": system.service("enrolment", name="enrolment-2", AID_MAX_WORKERS="4"),
    }
    for proc in procs.values():
        proc.start(wait=False)
    for proc in procs.values():
        proc.wait_healthy()
    relays = [system.relay("relay-1").start(), system.relay("relay-2").start()]  # one active, one standby

    log, verdicts = _history()
    store = PostgresEventStore(dsn)
    stored = []
    for start in range(0, len(log.events), 200):
        stored += store.append(log.events[start:start + 200])
    total = len(stored)

    # kill one instance of each while the stream is being worked through
    wait_for(lambda: _processed(dsn, "eligibility") >= total // 5, 120, interval=0.05,
             what="a fifth of the log applied")
    before_kill = {name: _handled(procs[name], name.split("-")[0])
                   for name in ("eligibility-1", "enrolment-1")}
    at_kill = {"eligibility": _processed(dsn, "eligibility"), "enrolment": _processed(dsn, "enrolment")}
    procs["eligibility-1"].kill()
    procs["enrolment-1"].kill()
    assert at_kill["eligibility"] < total, "the stream was over before the kill: make it longer"

    try:
        wait_for(lambda: _processed(dsn, "enrolment") == verdicts, 120, interval=0.5,
                 what="every verdict handled")
        # eligibility applies every event of the log: ours and the StudentEnrolled enrolment emitted
        total = _count(dsn, "SELECT count(*) FROM events")
        assert total == len(stored) + STUDENTS
        wait_for(lambda: _processed(dsn, "eligibility") == total, 240, interval=0.5,
                 what="every event applied")
    except AssertionError as exc:
        counts = {c: _processed(dsn, c) for c in ("eligibility", "enrolment")}
        logs = "\n".join(f"--- {n}\n{p.log_tail(3000)}" for n, p in procs.items())
        raise AssertionError(f"{exc}: {counts} of {total}/{verdicts}, at the kill {at_kill}\n{logs}") \
            from None

    # shared: both instances of each service applied events
    survivors = {"eligibility": procs["eligibility-2"], "enrolment": procs["enrolment-2"]}
    assert before_kill["eligibility-1"] > 0 and _handled(survivors["eligibility"], "eligibility") > 0
    assert before_kill["enrolment-1"] > 0 and _handled(survivors["enrolment"], "enrolment") > 0
    # nothing twice: one tracking row per event, one StudentEnrolled per enrolment verdict
    assert _count(dsn, "SELECT count(DISTINCT event_id) FROM processed_events"
                       " WHERE consumer = 'eligibility'") == total
    assert _count(dsn, "SELECT count(*) FROM events"
                       " WHERE type = 'StudentEnrolled' AND actor->>'id' = 'enrolment'") == STUDENTS
    # province-wide events left a re-derivation backlog, drained in chunks by the instances
    wait_for(lambda: _count(dsn, "SELECT count(*) FROM eligibility_meta WHERE key = 'rederive_after'") == 0,
             120, interval=0.5, what="the re-derivation backlog drained")
    status, body = http_json("GET", f"http://127.0.0.1:{survivors['eligibility'].metrics_port}/health")
    assert status == 200 and body["checks"]["progress rederive"] == "idle", body
    # the projection is what one replay of the whole log gives (killed mid-batch: nothing lost or doubled)
    with psycopg.connect(dsn) as conn:
        live = {(sid, sem): st for sid, sem, st in audit.iter_statuses(conn)}
    everything = list(store.read_all())
    assert live == replay(everything)
    assert len(live) == STUDENTS
    for name, proc in survivors.items():
        assert metric_value(proc.metrics(), "aid_dead_letters_total", service=name) == 0, proc.log_tail()
    # the standby relay published nothing: each event went out once from the active one
    published = [metric_value(r.metrics(), "aid_relay_published_total") for r in relays]
    assert sorted(published) == [0, len(everything)], published


def _rederived(proc: Any) -> float:
    return metric_value(proc.metrics(), "aid_eligibility_rederived_students_total")


def test_two_instances_re_derive_a_backlog_in_parallel_and_one_killed_loses_nothing(system: System) -> None:
    """A province-wide check opened while captures arrive: both instances apply per-student batches AND
    take partitions of the backlog at the same time (their steps take a free partition each); one is
    killed mid-backlog, the other finishes it; the projection is a replay of the log."""
    dsn = system.database_url
    settings = {"AID_MAX_WORKERS": "60", "AID_BATCH_SIZE": "25", "AID_BATCH_WAIT_MS": "20",
                "AID_REDERIVE_CHUNK": "1", "AID_REDERIVE_POLL_MS": "20"}
    procs = [system.service("eligibility", name=f"eligibility-{n}", **settings) for n in (1, 2)]
    for proc in procs:
        proc.start(wait=False)
    for proc in procs:
        proc.wait_healthy()
    system.relay("relay-1").start()
    log = Log()
    students = [f"S{i:04d}" for i in range(STUDENTS)]
    for sid in students:
        log.ordinary(sid)
    store = PostgresEventStore(dsn)
    store.append(log.events)
    wait_for(lambda: _processed(dsn, "eligibility") == len(log.events), 120, interval=0.2,
             what="the students applied")
    before = len(log.events)
    day = date(2026, 11, 12)
    check = log.check("R-2026-11", "2026-11", day, closed=False)  # every student: a backlog
    for sid in students:
        log.passed(sid, check, day)
    store.append(log.events[before:before + 1])
    store.append(log.events[before + 1:])

    def both_re_deriving() -> bool:
        running = _count(dsn, "SELECT count(*) FROM eligibility_meta WHERE key = 'rederive_after'")
        assert running, "the backlog ended before both instances took part: make it longer"
        return all(_rederived(p) > 0 for p in procs)

    wait_for(both_re_deriving, 120, interval=0.02, what="both instances re-deriving the backlog")
    handled = [_handled(p, "eligibility") for p in procs]
    procs[0].kill()  # mid-backlog (and maybe mid-batch)
    wait_for(lambda: _processed(dsn, "eligibility") == len(log.events), 120, interval=0.2,
             what="every event applied")
    wait_for(lambda: _count(dsn, "SELECT count(*) FROM eligibility_meta WHERE key = 'rederive_after'") == 0,
             120, interval=0.2, what="the backlog drained by the survivor")
    assert all(h > 0 for h in handled), handled  # both applied per-student batches
    assert _count(dsn, "SELECT count(*) FROM eligibility_backlog") == 0
    status, body = http_json("GET", f"http://127.0.0.1:{procs[1].metrics_port}/health")
    assert status == 200 and body["checks"]["progress rederive"] == "idle", body
    assert metric_value(procs[1].metrics(), "aid_eligibility_rederive_backlog_students") == 0
    with psycopg.connect(dsn) as conn:
        live = {(sid, sem): st for sid, sem, st in audit.iter_statuses(conn)}
        assert _count(dsn, "SELECT count(DISTINCT event_id) FROM processed_events"
                           " WHERE consumer = 'eligibility'") == len(log.events)
    assert live == replay(list(store.read_all()))
    assert metric_value(procs[1].metrics(), "aid_dead_letters_total", service="eligibility") == 0
