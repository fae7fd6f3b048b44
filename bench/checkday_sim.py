"""A province's check day, played through the real relays, broker and eligibility consumers.

    # build (or reuse) a kept province, then play one day on it:
    nice -n 10 .venv/bin/python bench/checkday_sim.py --db aid_checkday_1m_h3 --students 1000000 \
        --schools 5000 --captures 10000 --duration 300 --real-sample 5 --json-out var/checkday.json
    # a quick throwaway run (built, played, dropped):
    .venv/bin/python bench/checkday_sim.py --students 20000 --schools 2000 --captures 2000 --duration 60

The province: the eligibility benchmark's synthetic one, built by ``bench/province_build.py`` (the
log by COPY, the projection rebuilt in flat memory; the time, CPU and peak memory of each step are
part of the figures). ``--db NAME``: reuse that database if it exists (its size is read from it),
else build it there and keep it; without ``--db`` a throwaway database is built and dropped. A kept
database plays again (a new check id per run) and is brought up to date with ``aid migrate`` first.
A database a ``--keep-db`` run of ``eligibility_bench.py`` left works too (with its ``--students``
and ``--schools``, its projection rebuilt).

The day:

1. a province-wide ``CheckOpened`` (every student: the projection's re-derivation backlog);
2. ``--captures`` students check in; business times follow a realistic curve (70 % between 10:00
   and 12:00, the rest spread over 09:00-17:00), played in ``--duration`` wall seconds; each capture is
   a ``CaptureSubmitted`` and, one tick (50 ms) later, its ``CaptureVerified`` (facematch simulated:
   its measured cost is about 35 ms a verification, docs/benchmarks-facematch.md);
3. ``--real-sample N`` (at most 10, the people of ``simulator/faces.py``): one REAL facematch
   instance runs; before the day, N students are enrolled with real photos (their frames stored
   in the blob store, an enrolment ``CaptureSubmitted`` appended, as the enrolment service does);
   during the day each of them checks in with a real burst at a time drawn from the same curve,
   and facematch gives the verdict. Measured: submit -> verdict (the verdict's ``recorded_at``)
   and verdict -> its status in the projection. In this mode the simulated captures are their
   verdicts only: facematch would answer a ``CaptureSubmitted`` without photos with a second
   verdict (FRAMES_MISSING);
4. the ``CheckClosed`` at the end (a second province-wide re-derivation).

The sim appends through the event store (as services do); two relays (one active, one standby)
publish; ``--instances`` eligibility services consume. Measured: the projection lag of each verdict
(from its append to the commit of the batch that applied it, seen by polling ``processed_events``
every 100 ms); for each shared event, the time from its append until the projection fully reflects
it (applied, and no re-derivation backlog left; sampled every 0.5 s) and the re-derivation rate
(students/s); peak memory (VmHWM) and CPU seconds of every process; the 1-minute load average
(sampled every 5 s). Prints a human summary on stderr and one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import province_build  # noqa: E402
from eligibility_bench import Generator, machine  # noqa: E402

DAY = date(2026, 12, 16)
CHECK_ID = f"R-sim-2026-12-16-{uuid.uuid4().hex[:6]}"  # one per run: a kept database can play again
VERDICT_DELAY_S = 0.05  # the simulated facematch: a verdict one tick after its capture
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_SEED = 11  # the real sample's students: the same ones in every run on a kept database


def business_times(n: int, rng: random.Random) -> list[float]:
    """Hours of the day (9.0-17.0) of ``n`` captures: 70 % in 10:00-12:00, the rest uniform."""
    return sorted(rng.uniform(10, 12) if rng.random() < 0.7 else rng.uniform(9, 17) for _ in range(n))


def peak_rate(hours: list[float], duration: float) -> float:
    """Captures per wall second offered in the busiest business half hour of the played day."""
    if not hours:
        return 0.0
    slots = [0] * 16
    for h in hours:
        slots[min(15, int((h - 9) * 2))] += 1
    return max(slots) / (duration / 16)


def vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a running process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(statistics.median(values), 3), "p99": round(pct(values, 0.99), 3),
            "max": round(max(values), 3)}


# --------------------------------------------------------------------------- watchers


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


@dataclass
class Sample:
    at: float          # monotonic
    running: bool      # a re-derivation backlog is running
    done: int
    total: int
    applied: frozenset[str]  # which of the watched shared events the projection has applied


class BacklogSampler(threading.Thread):
    """Every 0.5 s: is a re-derivation backlog running, its progress (``Projection.backlog``), and
    which watched shared events are applied."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.samples: list[Sample] = []
        self.watched: dict[str, uuid.UUID] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        from services.eligibility.projection.writer import Projection

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                progress = Projection.backlog(conn)  # (re-derived, total), None: no backlog
                names = dict(self.watched)
                applied: set[str] = set()
                if names:
                    found = {r[0] for r in conn.execute(
                        "SELECT event_id FROM processed_events WHERE consumer = 'eligibility'"
                        " AND event_id = ANY(%s)", (list(names.values()),))}
                    applied = {name for name, event_id in names.items() if event_id in found}
                done, total = progress or (0, 0)
                self.samples.append(Sample(time.monotonic(), progress is not None, done, total,
                                           frozenset(applied)))
                self.stop.wait(0.5)


def reflected(samples: list[Sample], name: str, appended: float, until: float | None) -> dict[str, Any]:
    """When the projection fully reflected the shared event ``name`` appended at ``appended``: the
    first sample (before ``until``, when another shared event restarts the backlog) where it is
    applied and no backlog runs. Also the re-derivation rate while its backlog ran."""
    after = [s for s in samples if s.at >= appended and (until is None or s.at < until)]
    running = [s for s in after if s.running and name in s.applied]  # its own backlog, not the former one
    rate = None
    if len(running) >= 2 and running[-1].at > running[0].at:
        rate = round((running[-1].done - running[0].done) / (running[-1].at - running[0].at), 1)
    out: dict[str, Any] = {"students": max((s.total for s in running), default=0),
                           "rederive_students_per_s": rate}
    for s in after:
        if name in s.applied and not s.running:
            out["reflected_s"] = round(s.at - appended, 1)
            return out
    out["reflected_s"] = None
    out["done_when_interrupted"] = running[-1].done if running else 0
    return out


class LoadSampler(threading.Thread):
    """The 1-minute load average every 5 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = [os.getloadavg()[0]]
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(5):
            self.samples.append(os.getloadavg()[0])

    def figures(self) -> dict[str, float]:
        return {"min": round(min(self.samples), 2), "mean": round(statistics.fmean(self.samples), 2),
                "max": round(max(self.samples), 2)}


@dataclass
class RealCapture:
    student: str
    stream: str
    purpose: str
    submitted: float            # epoch seconds, after the append committed
    verdict: str | None = None
    verdict_at: float | None = None   # the verdict's recorded_at (epoch)
    status_at: float | None = None    # when its status was seen applied (epoch)


class RealWatcher(threading.Thread):
    """Polls the log for facematch's verdicts on the real sample's captures and for their
    application by the projection (every 100 ms; by stream: indexed)."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.captures: dict[str, RealCapture] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def add(self, capture: RealCapture) -> None:
        with self.lock:
            self.captures[capture.stream] = capture

    def open(self) -> list[RealCapture]:
        with self.lock:
            return [c for c in self.captures.values() if c.status_at is None]

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                waiting = {c.stream: c for c in self.open()}
                if waiting:
                    rows = conn.execute(
                        "SELECT e.stream, e.type, extract(epoch FROM e.recorded_at),"
                        " EXISTS (SELECT 1 FROM processed_events p WHERE p.consumer = 'eligibility'"
                        "         AND p.event_id = e.event_id)"
                        " FROM events e WHERE e.stream = ANY(%s)"
                        " AND e.type IN ('CaptureVerified', 'CaptureRejected')", (list(waiting),)).fetchall()
                    now = time.time()
                    with self.lock:
                        for stream, event_type, at, applied in rows:
                            capture = waiting[stream]
                            if capture.verdict is None:
                                capture.verdict, capture.verdict_at = event_type, float(at)
                            if applied and capture.status_at is None:
                                capture.status_at = now
                self.stop.wait(0.1)


# --------------------------------------------------------------------------- the real sample


class RealSample:
    """N students of the province enrolled with real photos; their check-ins during the day."""

    def __init__(self, n: int, generator: Generator, system: Any, store: Any, check_id: str) -> None:
        from backbone import config
        from backbone.blobs import BlobStore
        from simulator import faces

        if n > len(faces.PEOPLE):
            raise SystemExit(f"--real-sample is at most {len(faces.PEOPLE)}"
                             " (the people of simulator/faces.py)")
        settings = config.load(system.env())
        blobs = BlobStore(settings.blob_dir, settings.secret_key)
        self.store, self.generator, self.check_id = store, generator, check_id
        picks = random.Random(SAMPLE_SEED).sample(range(generator.n), n)
        self.people = list(zip(picks, faces.PEOPLE[:n], strict=True))
        self.bursts = {k: [blobs.put(frame) for frame in faces.burst(person)] for k, person in self.people}
        self.id_photos = {k: blobs.put(faces.id_photo(person)) for k, person in self.people}

    def students(self) -> set[int]:
        return {k for k, _ in self.people}

    def _capture(self, k: int, purpose: str, when: Any, **extra: Any) -> Any:
        from contracts.envelope import Actor
        from contracts.events import CaptureSubmitted
        from contracts.registry import build_envelope

        capture_id = str(uuid.uuid4())
        event = CaptureSubmitted(capture_id=capture_id, student_id=self.generator.sid(k),
                                 school_id=self.generator.school(k), purpose=purpose, channel="terminal",
                                 frame_refs=self.bursts[k], captured_at=when.isoformat(),
                                 terminal_id="SIM-T1", **extra)
        return build_envelope(event, stream=f"capture-{capture_id}", occurred_at=when,
                              actor=Actor(kind="system", id="checkday-sim"))

    def enrol(self, watcher: RealWatcher, timeout: float) -> dict[str, Any]:
        """Enrol every sample student (facematch stores their templates); wait for the verdicts."""
        when = Generator._at(DAY - timedelta(days=30), 10)
        envelopes = {k: self._capture(k, "enrolment", when, id_photo_ref=self.id_photos[k])
                     for k, _ in self.people}
        self.store.append(list(envelopes.values()))
        submitted = time.time()
        enrolments = [RealCapture(self.generator.sid(k), e.stream, "enrolment", submitted)
                      for k, e in envelopes.items()]
        for capture in enrolments:
            watcher.add(capture)
        deadline = time.monotonic() + timeout
        while any(c.verdict is None for c in enrolments) and time.monotonic() < deadline:
            time.sleep(0.5)
        outcomes = [c.verdict for c in enrolments]
        return {"enrolled": outcomes.count("CaptureVerified"), "rejected": outcomes.count("CaptureRejected"),
                "no_verdict": outcomes.count(None),
                "verdict_s": spread([c.verdict_at - c.submitted for c in enrolments if c.verdict_at])}

    def check_in(self, k: int, when: Any, watcher: RealWatcher) -> None:
        envelope = self._capture(k, "spot_check", when, check_id=self.check_id)
        self.store.append([envelope])
        watcher.add(RealCapture(self.generator.sid(k), envelope.stream, "spot_check", time.time()))


# --------------------------------------------------------------------------- the day


def play(dsn: str, amqp: Any, args: argparse.Namespace, students: int, schools: int,
         tmp: Path) -> dict[str, Any]:
    import psycopg

    from backbone.eventstore import PostgresEventStore
    from contracts.envelope import Actor
    from contracts.events import CaptureSubmitted, CaptureVerified, CheckClosed, CheckOpened
    from contracts.registry import build_envelope
    from services.eligibility.projection.writer import Projection
    from tests.support import System, metric_value

    generator = Generator(students, schools)
    rng = random.Random(7)
    actor = Actor(kind="system", id="checkday-sim")
    store = PostgresEventStore(dsn)
    load = LoadSampler()
    load.start()
    with psycopg.connect(dsn, autocommit=True) as conn:
        head = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
        # the relay starts at the head: the projection holds the log up to it (built, or the
        # former run's day applied)
        conn.execute("INSERT INTO relay_checkpoints (name, position) VALUES ('main', %s)"
                     " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position", (head,))
    system = System(dsn, amqp, tmp)
    procs: dict[str, Any] = {}
    real_figures: dict[str, Any] = {}
    try:
        started = time.monotonic()
        for i in range(args.instances):
            procs[f"eligibility-{i + 1}"] = system.service("eligibility", name=f"eligibility-{i + 1}").start(
                wait=False)
        if args.real_sample:
            # still photos cannot answer a liveness challenge: "old" terminals (as system_load_bench)
            procs["facematch"] = system.service("facematch", AID_FACE_UNCHALLENGED="terminal").start(
                wait=False)
        for proc in procs.values():
            proc.wait_healthy(600)
        procs["relay-1"] = system.relay("relay-1").start()
        procs["relay-2"] = system.relay("relay-2").start()
        print(f"checkday: {len(procs)} processes up in {time.monotonic() - started:.0f} s", file=sys.stderr)
        watcher = LagWatcher(dsn)
        watcher.start()
        backlog = BacklogSampler(dsn)
        backlog.start()
        real_watcher = RealWatcher(dsn)
        real_watcher.start()
        sample: RealSample | None = None
        if args.real_sample:
            sample = RealSample(args.real_sample, generator, system, store, CHECK_ID)
            real_figures["enrolment"] = sample.enrol(real_watcher, 600)
            print(f"checkday: real sample enrolled: {real_figures['enrolment']}", file=sys.stderr)
        cpu_before = {name: cpu_seconds(proc.popen.pid) for name, proc in procs.items()}

        opened = build_envelope(CheckOpened(
            check_id=CHECK_ID, kind="routine", semester="2026-autumn", month="2026-12",
            opens_at=Generator._at(DAY, 9).isoformat(), closes_at=Generator._at(DAY, 17).isoformat(),
            initiated_by="province"), stream=f"check-{CHECK_ID}", actor=actor,
            occurred_at=Generator._at(DAY, 8))
        backlog.watched["opened"] = opened.event_id
        day_started = time.monotonic()
        store.append([opened])
        opened_at = time.monotonic()
        exclude = sample.students() if sample else set()
        chosen = [k for k in rng.sample(range(students), min(students, args.captures + len(exclude)))
                  if k not in exclude][:args.captures]
        hours = business_times(len(chosen), rng)
        due = [day_started + (h - 9) / 8 * args.duration for h in hours]
        real_due = sorted((day_started + (h - 9) / 8 * args.duration, h, k) for h, k in zip(
            business_times(len(exclude), random.Random(SAMPLE_SEED)), sorted(exclude), strict=True))
        verdicts_due: list[tuple[float, Any]] = []
        i = 0
        appended = 0
        with_submitted = not args.real_sample
        print(f"checkday: day {CHECK_ID}: {len(chosen):,} captures in {args.duration:.0f} s", file=sys.stderr)
        while i < len(chosen) or verdicts_due or real_due:
            now = time.monotonic()
            batch: list[Any] = []
            while real_due and real_due[0][0] <= now and sample is not None:
                _, h, k = real_due.pop(0)
                sample.check_in(k, Generator._at(DAY, 9) + timedelta(hours=h - 9), real_watcher)
                appended += 1
            while i < len(chosen) and due[i] <= now:
                k = chosen[i]
                when = Generator._at(DAY, 9) + timedelta(hours=hours[i] - 9)
                capture_id = str(uuid.uuid4())
                common = {"capture_id": capture_id, "student_id": generator.sid(k),
                          "school_id": generator.school(k), "purpose": "spot_check", "channel": "terminal",
                          "check_id": CHECK_ID}
                if with_submitted:
                    batch.append(build_envelope(
                        CaptureSubmitted(**common, frame_refs=["blob:" + "3" * 64],
                                         captured_at=when.isoformat()),
                        stream=f"capture-{capture_id}", actor=actor, occurred_at=when))
                verdicts_due.append((now + VERDICT_DELAY_S, build_envelope(
                    CaptureVerified(**common, distance=0.3, threshold=0.6, quality={}, liveness={},
                                    model_version="sim", captured_at=when.isoformat()),
                    stream=f"capture-{capture_id}", actor=actor, occurred_at=when + timedelta(seconds=1))))
                i += 1
            ready = [v for t, v in verdicts_due if t <= now]
            verdicts_due = [(t, v) for t, v in verdicts_due if t > now]
            if batch:
                store.append(batch)
            if ready:
                store.append(ready)
                for envelope in ready:
                    watcher.add(envelope.event_id, time.monotonic())
            appended += len(batch) + len(ready)
            time.sleep(0.05)
        closed = build_envelope(CheckClosed(check_id=CHECK_ID, closed_at=Generator._at(DAY, 17).isoformat()),
                                stream=f"check-{CHECK_ID}", actor=actor, occurred_at=Generator._at(DAY, 17))
        backlog.watched["closed"] = closed.event_id
        store.append([closed])
        closed_at = time.monotonic()
        played_s = closed_at - day_started
        print(f"checkday: day played in {played_s:.0f} s; waiting for the projection", file=sys.stderr)

        def drained() -> bool:
            with psycopg.connect(dsn, autocommit=True) as conn:
                running = Projection.backlog(conn) is not None
                top = conn.execute("SELECT max(position) FROM events").fetchone()[0]
                done = conn.execute("SELECT max(position) FROM processed_events"
                                    " WHERE consumer = 'eligibility'").fetchone()[0]
            return not running and done == top and not [c for c in real_watcher.open()
                                                         if c.purpose == "spot_check"]

        deadline = time.monotonic() + args.drain_timeout
        last_note = 0.0
        while not drained():
            if time.monotonic() > deadline:
                print("checkday: drain timeout: reporting what was done", file=sys.stderr)
                break
            if time.monotonic() - last_note > 30 and backlog.samples:
                last_note = time.monotonic()
                s = backlog.samples[-1]
                print(f"checkday: +{last_note - closed_at:.0f} s after the closing: backlog"
                      f" {s.done:,}/{s.total:,} students, verdicts waiting {len(watcher.pending):,}",
                      file=sys.stderr, flush=True)
            time.sleep(1)
        everything_s = time.monotonic() - day_started
        drained_ok = drained()
        watcher.stop = True
        watcher.join(timeout=5)
        backlog.stop.set()
        backlog.join(timeout=5)
        real_watcher.stop.set()
        real_watcher.join(timeout=5)
        load.stop.set()
        memory = {name: round(vm_hwm_mb(proc.popen.pid), 1) for name, proc in procs.items()}
        memory["sim"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        cpu = {name: round(cpu_seconds(proc.popen.pid) - cpu_before[name], 1) for name, proc in procs.items()}
        batches: dict[str, float] = {}
        for name, proc in procs.items():
            if name.startswith("eligibility"):
                text = proc.metrics()
                for metric in ("aid_eligibility_batch_events_sum", "aid_eligibility_batch_events_count",
                               "aid_eligibility_batch_seconds_sum"):
                    batches[metric] = batches.get(metric, 0.0) + metric_value(text, metric)
        with psycopg.connect(dsn, autocommit=True) as conn:  # append -> start of the applying transaction
            to_start = [float(r[0]) for r in conn.execute(
                "SELECT extract(epoch FROM p.processed_at - e.recorded_at) FROM events e"
                " JOIN processed_events p ON p.event_id = e.event_id AND p.consumer = 'eligibility'"
                " WHERE e.position > %s AND e.type = 'CaptureVerified' AND e.actor->>'id' = 'checkday-sim'",
                (head,)).fetchall()]
        if sample is not None:
            spot = [c for c in real_watcher.captures.values() if c.purpose == "spot_check"]
            real_figures.update(
                captures=len(exclude),
                verdicts={(v or "none"): sum(1 for c in spot if c.verdict == v)
                          for v in ("CaptureVerified", "CaptureRejected", None)},
                submit_to_verdict_s=spread([c.verdict_at - c.submitted for c in spot if c.verdict_at]),
                verdict_to_status_s=spread([c.status_at - c.verdict_at for c in spot
                                            if c.status_at and c.verdict_at]))
        metric, seconds = "aid_eligibility_batch_events", "aid_eligibility_batch_seconds"
        n_batches = batches.get(f"{metric}_count", 0)
        n_or_1 = max(n_batches, 1)
        return {
            "check_id": CHECK_ID, "captures": len(chosen), "real_sample": args.real_sample,
            "events_appended": appended + 2, "duration_s": args.duration,
            "offered_peak_captures_per_s": round(peak_rate(hours, args.duration), 1),
            "played_s": round(played_s, 1), "all_applied_and_backlog_drained_s": round(everything_s, 1),
            "drained": drained_ok,
            "shared_events": {
                "opened": reflected(backlog.samples, "opened", opened_at, closed_at),
                "closed": reflected(backlog.samples, "closed", closed_at, None)},
            "verdict_projection_lag_s": spread(watcher.lags),
            "verdicts_not_applied": len(watcher.pending),
            "verdict_append_to_batch_start_s": spread(to_start),
            "simulated_verdict_latency_s": VERDICT_DELAY_S,
            "real": real_figures,
            "batches": {"count": int(n_batches),
                        "mean_events": round(batches.get(f"{metric}_sum", 0) / n_or_1, 1),
                        "mean_seconds": round(batches.get(f"{seconds}_sum", 0) / n_or_1, 3)},
            "peak_rss_mb": memory,
            "cpu_s_during_day": cpu,
            "load_avg_1m": load.figures(),
        }
    finally:
        load.stop.set()
        system.stop_all()



# --------------------------------------------------------------------------- report


def summary(f: dict[str, Any]) -> str:
    lag = f["verdict_projection_lag_s"]
    opened, closed = f["shared_events"]["opened"], f["shared_events"]["closed"]

    def shared(name: str, s: dict[str, Any]) -> str:
        when = (f"reflected after {s['reflected_s']:.0f} s" if s["reflected_s"] is not None
                else f"not reflected before the next (re-derived {s.get('done_when_interrupted', 0):,})")
        return f"  {name}: {when}; {s['students']:,} students re-derived at {s['rederive_students_per_s']} /s"

    lines = [
        f"check day: {f['students']:,} students, {f['schools']:,} schools, {f['instances']} eligibility"
        f" instance(s); {f['captures']:,} captures in {f['duration_s']:.0f} s"
        f" (peak {f['offered_peak_captures_per_s']}/s offered), real sample {f['real_sample']}",
        f"  verdict projection lag: p50 {lag.get('p50')} s, p99 {lag.get('p99')} s, max {lag.get('max')} s"
        f" (n {lag['n']:,}; {f['verdicts_not_applied']:,} not applied)",
        shared("CheckOpened", opened), shared("CheckClosed", closed),
        f"  day applied and backlog drained after {f['all_applied_and_backlog_drained_s']:.0f} s"
        f" (drained: {f['drained']})",
    ]
    real = f.get("real") or {}
    if real.get("submit_to_verdict_s"):
        lines.append(f"  real facematch: enrolment {real['enrolment']}; check-ins {real['verdicts']};"
                     f" submit -> verdict {real['submit_to_verdict_s']}; verdict -> status"
                     f" {real['verdict_to_status_s']}")
    lines.append(f"  peak RSS MB: {f['peak_rss_mb']}")
    lines.append(f"  CPU s during the day: {f['cpu_s_during_day']}")
    lines.append(f"  load average (1 min): {f['load_avg_1m']}")
    build = f.get("build")
    if build:
        lines.append(f"  build: log {build['log']}, projection {build['projection']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", help="a kept province: reused if it exists, else built there and kept")
    parser.add_argument("--students", type=int, help="size of the province to build (default 20,000; a reused"
                        " database built by province_build.py knows its own)")
    parser.add_argument("--schools", type=int, help="schools of the province to build (default 2,000)")
    parser.add_argument("--captures", type=int, default=5_000)
    parser.add_argument("--duration", type=float, default=60.0, help="wall seconds for 09:00-17:00")
    parser.add_argument("--instances", type=int, default=2, help="eligibility instances")
    parser.add_argument("--real-sample", type=int, default=0, metavar="N",
                        help="students checked by a real facematch instance with real photos (at most 10)")
    parser.add_argument("--drain-timeout", type=float, default=3600.0,
                        help="seconds to wait after the day for the projection; then report what was done")
    parser.add_argument("--json-out", help="also write the JSON document to this file")
    args = parser.parse_args(argv)
    from backbone.migrate import migrate
    from tests.support import throwaway_vhost

    name = args.db or f"checkday_{uuid.uuid4().hex[:8]}"
    throwaway = not args.db
    build: dict[str, Any] | None = None
    try:
        if throwaway or not province_build.exists(name):
            build = province_build.build(name, args.students or 20_000, args.schools or 2_000)
        dsn = province_build.dsn_of(name)
        migrate(dsn, out=sys.stderr)  # a kept database is brought up to date before the play
        kept = province_build.recorded(dsn)
        province = kept.get("province")
        if province is not None:
            if not province["complete"]:
                raise SystemExit(f"database {name}: its build did not finish; drop it and build again")
            students, schools = int(province["students"]), int(province["schools"])
            if (args.students or students) != students or (args.schools or schools) != schools:
                raise SystemExit(f"database {name} holds {students:,} students in {schools:,} schools")
            build = build or kept.get("build")
        elif args.students and args.schools:  # a database eligibility_bench.py --keep-db left
            students, schools = args.students, args.schools
        else:
            raise SystemExit(f"database {name} was not built by province_build.py:"
                             " give --students and --schools")
        with throwaway_vhost() as amqp, tempfile.TemporaryDirectory(prefix="checkday_") as tmp:
            figures = play(dsn, amqp, args, students, schools, Path(tmp))
        figures.update(db=None if throwaway else name, students=students, schools=schools,
                       instances=args.instances, build=build, machine=machine())
        print(summary(figures), file=sys.stderr)
        text = json.dumps(figures, indent=2, default=str)
        print(text)
        if args.json_out:
            Path(args.json_out).write_text(text + "\n", encoding="utf-8")
    finally:
        if throwaway:
            from eligibility_bench import drop_database

            drop_database(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
