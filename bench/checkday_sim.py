"""A province's check day, played through the real relay, broker and eligibility consumers.

    .venv/bin/python bench/checkday_sim.py --db elig_bench_xxxx --students 200000 --schools 1000 \
        --captures 20000 --duration 120

The province is the eligibility benchmark's synthetic one (``bench/eligibility_bench.py``; pass a
database a ``--keep-db`` run of it or of ``bench/projection_scale_bench.py`` left, with the
projection rebuilt; without ``--db`` a new one is built with ``--students``). The day:

1. a province-wide ``CheckOpened`` (every student: the projection's re-derivation backlog);
2. ``--captures`` students check in; business times follow a realistic curve (70 % between 10:00
   and 12:00, the rest spread over 09:00-17:00), played in ``--duration`` wall seconds; each capture is
   a ``CaptureSubmitted`` and, one tick (50 ms) later, its ``CaptureVerified`` (facematch simulated:
   its measured cost is about 35 ms a verification, docs/benchmarks-facematch.md; the verdict
   latency below is therefore not measured here);
3. the ``CheckClosed`` at the end.

The sim appends through the event store (as services do); the relay (two: one active, one standby)
publishes; ``--instances`` eligibility services consume. Measured: the projection lag of each verdict
(from its append to the commit of the batch that applied it, seen by polling ``processed_events``
every 100 ms), the time until the backlog of the shared events is drained, and the peak memory
(VmHWM) of every process. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from eligibility_bench import Generator, create_database, drop_database, machine, reuse_database  # noqa: E402

DAY = date(2026, 12, 16)
CHECK_ID = f"R-sim-2026-12-16-{uuid.uuid4().hex[:6]}"  # one per run: a kept database can play again


def business_times(n: int, rng: random.Random) -> list[float]:
    """Hours of the day (9.0-17.0) of ``n`` captures: 70 % in 10:00-12:00, the rest uniform."""
    return sorted(rng.uniform(10, 12) if rng.random() < 0.7 else rng.uniform(9, 17) for _ in range(n))


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class LagWatcher(threading.Thread):
    """Polls processed_events for the verdicts appended so far; records when each became visible."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.pending: dict[uuid.UUID, float] = {}
        self.lags: list[float] = []
        self.lock = threading.Lock()
        self.stop = False

    def add(self, event_id: uuid.UUID, appended: float) -> None:
        with self.lock:
            self.pending[event_id] = appended

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop or self.pending:
                with self.lock:
                    ids = list(self.pending)
                if ids:
                    seen = conn.execute("SELECT event_id FROM processed_events WHERE consumer = 'eligibility'"
                                        " AND event_id = ANY(%s)", (ids,)).fetchall()
                    now = time.monotonic()
                    with self.lock:
                        for (event_id,) in seen:
                            self.lags.append(now - self.pending.pop(event_id))
                time.sleep(0.1)


def play(dsn: str, amqp: Any, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import psycopg

    from backbone.eventstore import PostgresEventStore
    from contracts.envelope import Actor
    from contracts.events import CaptureSubmitted, CaptureVerified, CheckClosed, CheckOpened
    from contracts.registry import build_envelope
    from tests.support import System, metric_value, wait_for

    generator = Generator(args.students, args.schools)
    rng = random.Random(7)
    actor = Actor(kind="system", id="checkday-sim")
    store = PostgresEventStore(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        head = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
        # the relay starts at the head: the projection was rebuilt from the log up to it
        conn.execute("INSERT INTO relay_checkpoints (name, position) VALUES ('main', %s)"
                     " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position", (head,))
    system = System(dsn, amqp, tmp)
    procs: dict[str, Any] = {}
    try:
        for i in range(args.instances):
            procs[f"eligibility-{i + 1}"] = system.service("eligibility", name=f"eligibility-{i + 1}").start(
                wait=False)
        for proc in procs.values():
            proc.wait_healthy(120)
        procs["relay-1"] = system.relay("relay-1").start()
        procs["relay-2"] = system.relay("relay-2").start()
        watcher = LagWatcher(dsn)
        watcher.start()

        opened = build_envelope(CheckOpened(
            check_id=CHECK_ID, kind="routine", semester="2026-autumn", month="2026-12",
            opens_at=Generator._at(DAY, 9).isoformat(), closes_at=Generator._at(DAY, 17).isoformat(),
            initiated_by="province"), stream=f"check-{CHECK_ID}", actor=actor,
            occurred_at=Generator._at(DAY, 8))
        day_started = time.monotonic()
        store.append([opened])
        students = rng.sample(range(args.students), args.captures)
        hours = business_times(args.captures, rng)
        due = [day_started + (h - 9) / 8 * args.duration for h in hours]
        verdicts_due: list[tuple[float, Any]] = []
        i = 0
        appended = 0
        while i < len(students) or verdicts_due:
            now = time.monotonic()
            batch: list[Any] = []
            while i < len(students) and due[i] <= now:
                k = students[i]
                when = Generator._at(DAY, 9) + timedelta(hours=hours[i] - 9)
                capture_id = str(uuid.uuid4())
                common = {"capture_id": capture_id, "student_id": generator.sid(k),
                          "school_id": generator.school(k), "purpose": "spot_check", "channel": "terminal",
                          "check_id": CHECK_ID}
                batch.append(build_envelope(CaptureSubmitted(**common, frame_refs=["blob:" + "3" * 64],
                                                             captured_at=when.isoformat()),
                                            stream=f"capture-{capture_id}", actor=actor, occurred_at=when))
                verdicts_due.append((now + 0.05, build_envelope(
                    CaptureVerified(**common, distance=0.3, threshold=0.6, quality={}, liveness={},
                                    model_version="sim", captured_at=when.isoformat()),
                    stream=f"capture-{capture_id}", actor=actor, occurred_at=when + timedelta(seconds=1))))
                i += 1
            ready = [v for t, v in verdicts_due if t <= now]
            verdicts_due = [(t, v) for t, v in verdicts_due if t > now]
            if batch or ready:
                store.append(batch)
                store.append(ready)
                for envelope in ready:
                    watcher.add(envelope.event_id, time.monotonic())
                appended += len(batch) + len(ready)
            time.sleep(0.05)
        closed = build_envelope(CheckClosed(check_id=CHECK_ID, closed_at=Generator._at(DAY, 17).isoformat()),
                                stream=f"check-{CHECK_ID}", actor=actor, occurred_at=Generator._at(DAY, 17))
        store.append([closed])
        played_s = time.monotonic() - day_started
        watcher.stop = True
        watcher.join(timeout=args.duration * 5 + 600)

        def drained() -> bool:
            with psycopg.connect(dsn, autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM eligibility_meta"
                                   " WHERE key = 'rederive_after'").fetchone()
                top = conn.execute("SELECT max(position) FROM events").fetchone()[0]
                done = conn.execute("SELECT max(position) FROM processed_events"
                                    " WHERE consumer = 'eligibility'").fetchone()[0]
            return row[0] == 0 and done == top

        wait_for(drained, args.duration * 10 + 1800, interval=1,
                 what="the day applied and the backlog drained")
        everything_s = time.monotonic() - day_started
        memory = {name: round(vm_hwm_mb(proc.popen.pid), 1) for name, proc in procs.items()}
        batches: dict[str, float] = {}
        for name, proc in procs.items():
            if name.startswith("eligibility"):
                text = proc.metrics()
                for metric in ("aid_eligibility_batch_events_sum", "aid_eligibility_batch_events_count",
                               "aid_eligibility_batch_seconds_sum"):
                    batches[metric] = batches.get(metric, 0.0) + metric_value(text, metric)
        with psycopg.connect(dsn, autocommit=True) as conn:  # append -> start of the applying transaction
            to_start = [r[0] for r in conn.execute(
                "SELECT extract(epoch FROM p.processed_at - e.recorded_at) FROM processed_events p"
                " JOIN events e USING (event_id) WHERE p.consumer = 'eligibility'"
                " AND e.type = 'CaptureVerified' AND e.actor->>'id' = 'checkday-sim'").fetchall()]
        lags = watcher.lags
        return {
            "captures": args.captures, "events_appended": appended + 2, "duration_s": args.duration,
            "played_s": round(played_s, 1), "all_applied_and_backlog_drained_s": round(everything_s, 1),
            "verdict_projection_lag_s": {"n": len(lags), "p50": round(statistics.median(lags), 3),
                                         "p99": round(pct(lags, 0.99), 3), "max": round(max(lags), 3)},
            "verdict_append_to_batch_start_s": {"p50": round(float(statistics.median(to_start)), 3),
                                                "p99": round(float(pct(to_start, 0.99)), 3)},
            "batches": {"count": int(batches["aid_eligibility_batch_events_count"]),
                        "mean_events": round(batches["aid_eligibility_batch_events_sum"]
                                             / max(batches["aid_eligibility_batch_events_count"], 1), 1),
                        "mean_seconds": round(batches["aid_eligibility_batch_seconds_sum"]
                                              / max(batches["aid_eligibility_batch_events_count"], 1), 3)},
            "peak_rss_mb": memory,
        }
    finally:
        system.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a kept benchmark database (projection rebuilt)")
    parser.add_argument("--students", type=int, default=20_000)
    parser.add_argument("--schools", type=int, default=100)
    parser.add_argument("--captures", type=int, default=5_000)
    parser.add_argument("--duration", type=float, default=60.0, help="wall seconds for 09:00-17:00")
    parser.add_argument("--instances", type=int, default=2, help="eligibility instances")
    args = parser.parse_args(argv)
    from tests.support import throwaway_vhost

    name = args.db
    if name:
        dsn, _ = reuse_database(name)
    else:
        from eligibility_bench import copy_log, measure_rebuild

        from backbone.migrate import migrate

        name, dsn = create_database()
        migrate(dsn, out=sys.stderr)
        copy_log(dsn, Generator(args.students, args.schools))
        measure_rebuild(dsn)
    try:
        from backbone.migrate import migrate

        migrate(dsn, out=sys.stderr)
        with throwaway_vhost() as amqp, tempfile.TemporaryDirectory(prefix="checkday_") as tmp:
            figures = play(dsn, amqp, args, Path(tmp))
        figures.update(students=args.students, schools=args.schools, instances=args.instances,
                       machine=machine())
        print(json.dumps(figures, indent=2))
    finally:
        if not args.db:
            drop_database(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
