"""Two facematch instances over the real broker and database, one killed with SIGKILL while the
captures stream in (issue 14, point 7: "two of everything", the consumer that
``test_two_instances.py`` does not run).

Enrolment captures are real 3-frame bursts (``../shared/faces``). facematch appends each verdict in
the same transaction as its ``processed_events`` row and acks the message only after the commit,
so the unacked captures of the killed instance are delivered again to the other one: every capture
gets exactly one verdict, none is lost, none is decided twice; both instances took work."""

from __future__ import annotations

import base64
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.flows import register_student, setup_school, setup_terminal
from tests.support import System, metric_value, wait_for

pytestmark = pytest.mark.integration
CAPTURE_DAY = datetime.fromisoformat("2026-10-12T11:00:00+08:00")  # before the Oct 20 deadline
CAPTURES = 30


def _photo(name: str) -> str:
    for folder in Path(__file__).resolve().parents:
        if (folder / "shared" / "faces").is_dir():
            return base64.b64encode((folder / "shared" / "faces" / name.rsplit("_", 1)[0] / name).read_bytes()
                                    ).decode()
    pytest.fail("shared/faces not found beside the repository")


def _verdicts(url: str) -> Counter[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT payload->>'capture_id' FROM events"
                            " WHERE type IN ('CaptureVerified', 'CaptureRejected')").fetchall()
    return Counter(r[0] for r in rows)


def _handled(system: System, name: str) -> float:
    try:
        return metric_value(system.procs[name].metrics(), "aid_consumer_handled_total", service="facematch",
                            outcome="ok")
    except OSError:
        return -1.0


def test_a_facematch_instance_killed_mid_stream_loses_no_capture_and_decides_none_twice(
        system: System) -> None:
    offset = str((CAPTURE_DAY - datetime.now(UTC)).total_seconds())
    system.relay().start(wait=False)
    enrolment = system.service("enrolment", AID_CLOCK_OFFSET_SECONDS=offset).start(wait=False)
    first = system.service("facematch", name="facematch-1").start(wait=False)
    second = system.service("facematch", name="facematch-2").start(wait=False)
    for proc in (system.procs["relay"], enrolment, first, second):
        proc.wait_healthy(timeout=120)
    setup_school(system, enrolment, "SC1", "驻马店市", "驿城区")
    terminal = setup_terminal(system, enrolment, "T1", "SC1")
    students = [f"S{i:04d}" for i in range(CAPTURES)]
    for seq, student in enumerate(students, start=10):
        register_student(system, enrolment, student, seq)
    burst = {"frames": [_photo(f"obama_{n}.jpg") for n in (1, 2, 3)], "id_photo": _photo("obama_4.jpg")}
    captures = []
    for student in students:
        status, body = enrolment.api("POST", "/enrolments", {"student_id": student, **burst}, token=terminal)
        assert status == 202, body
        captures.append(body["capture_id"])

    # kill the first instance as soon as it has decided something, while captures are still waiting
    wait_for(lambda: _handled(system, "facematch-1") >= 1, timeout=120, interval=0.02,
             what="facematch-1 decided a capture")
    first.kill()
    decided_at_kill = sum(_verdicts(system.database_url).values())
    assert decided_at_kill < CAPTURES, "the stream ended before the kill: nothing was left to redeliver"

    wait_for(lambda: set(_verdicts(system.database_url)) >= set(captures), timeout=240,
             what="every capture decided after the kill")
    time.sleep(1.0)  # a redelivered capture decided twice would show up now
    verdicts = _verdicts(system.database_url)
    assert set(verdicts) == set(captures)
    assert max(verdicts.values()) == 1, [c for c, n in verdicts.items() if n > 1]
    with psycopg.connect(system.database_url) as conn:
        tracked = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM processed_events"
                               " WHERE consumer = 'facematch'").fetchone()
    assert tracked == (CAPTURES, CAPTURES)
    assert _handled(system, "facematch-2") >= CAPTURES - decided_at_kill
