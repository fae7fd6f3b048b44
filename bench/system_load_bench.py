"""Load through the whole system: many simulated terminals check students in with real photo
bursts during one spot check, over the real services started as local processes (relay,
enrolment, spotcheck, TWO facematch instances, eligibility, the issuer; a throwaway PostgreSQL
database and RabbitMQ vhost), through the simulator's HTTP client (terminals authenticate with
client credentials at the issuer).

- ``--mode open`` (default): captures are submitted at ``--rate`` per second for ``--duration``
  seconds whatever the system does (a check day's arrivals), by ``--terminals`` terminals.
- ``--mode closed``: each terminal submits, waits for its verdict (long-poll, as a kiosk does),
  and submits again: the capacity of the system, and the latency a terminal sees.

Latency is from the start of the submit request (client clock) to the verdict event's
``recorded_at`` in the log (same machine's clock), read from the log after the run; every
capture the services accepted (202) must have exactly one verdict (CaptureVerified or
CaptureRejected). Where time goes: facematch's own per-capture time
(``aid_facematch_stage_seconds{stage="total"}``) against the end-to-end latency. The machine's
load average is sampled during the run. CPU per accepted capture is read from ``/proc`` for every
service process, this run database's PostgreSQL backends, the RabbitMQ broker (shared with
whatever else runs) and the benchmark's own terminals (this process).

Frames are what the console's kiosk sends: each photo fitted inside 640x480, JPEG 90 (``--frame``);
``--school-size N`` adds N synthetic enrolled templates to the school (the proxy search's gallery);
``--py-spy DIR`` samples every service process while the captures are submitted.

    .venv/bin/python bench/system_load_bench.py --rate 20 --duration 60
    .venv/bin/python bench/system_load_bench.py --mode closed --terminals 8 --duration 60
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from simulator import faces  # noqa: E402
from simulator.client import AidClient, ApiError  # noqa: E402
from tests.sim_support import sim_client  # noqa: E402
from tests.support import Proc, System, metric_value, throwaway_database, throwaway_vhost  # noqa: E402

SCHOOL = "LOAD001"
ENROL_DAY = datetime.fromisoformat("2026-10-12T10:30:00+08:00")
CHECK_DAY = datetime.fromisoformat("2026-10-22T10:05:00+08:00")  # a 10:00-15:00 check: 5 h of window


def offset(when: datetime) -> str:
    return str((when - datetime.now(UTC)).total_seconds())


#: what the console's kiosk asks of the camera (console/static/kiosk.js: getUserMedia 640 x 480,
#: each frame a JPEG at quality 0.9)
KIOSK_FRAME = (640, 480)


def frame_box(text: str) -> tuple[int, int]:
    """``640x480`` -> (640, 480); ``1280`` -> (1280, 1280) (at most 1280 pixels a side)."""
    width, _, height = text.lower().partition("x")
    try:
        box = (int(width), int(height or width))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: WIDTHxHEIGHT or a number of pixels") from None
    if min(box) < 48:
        raise argparse.ArgumentTypeError(f"{text!r}: too small for a camera frame")
    return box


def shrink(data: bytes, box: tuple[int, int] | int) -> bytes:
    """The photo as a terminal camera frame: fitted inside ``box`` (width, height; a number: that
    many pixels a side), as ``facematch evaluate --camera`` fits it (``evaluation.camera_frame``)."""
    from services.facematch.evaluation import camera_frame

    width, height = (box, box) if isinstance(box, int) else box
    return camera_frame(data, width, height)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a running process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, every core."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


def server_pids(database_url: str) -> dict[str, list[int]]:
    """The PostgreSQL backends serving this run's database (the services' pooled connections),
    and RabbitMQ's Erlang VM (which serves every vhost of the machine: the other sessions too)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        backends = [int(r[0]) for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname ="
                                                    " current_database() AND pid <> pg_backend_pid()")]
    beam = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().split(" ", 2)[1] == "(beam.smp)":
                beam.append(int(stat.parent.name))
        except OSError:
            continue
    return {"postgres (this database's backends)": backends, "rabbitmq (whole broker, shared)": beam}


def own_cpu_seconds() -> float:
    """CPU seconds of this process (the benchmark's terminals, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_snapshot(procs: dict[str, Proc], servers: dict[str, list[int]]) -> dict[str, float]:
    snap = {name: proc_cpu_seconds(proc.popen.pid) for name, proc in procs.items() if proc.popen}
    for name, pids in servers.items():
        snap[f"[{name}]"] = sum(c for c in map(proc_cpu_seconds, pids) if c == c)
    snap["{bench client}"] = own_cpu_seconds()
    snap["(machine busy)"], snap["(machine total)"] = machine_cpu_seconds()
    return snap


def engine_cost(bursts: dict[str, list[bytes]], rounds: int) -> dict[str, float]:
    """facematch's engine alone, in this process: wall and CPU milliseconds per 3-frame check-in
    (verify against the student's own template and the school's others)."""
    from services.facematch.calibration import LivenessPolicy
    from services.facematch.engine import FaceEngine
    from services.facematch.templates import Template

    engine = FaceEngine(LivenessPolicy(unchallenged=frozenset({"terminal"})))
    now = datetime.now(UTC)
    templates = []
    for student, frames in bursts.items():
        outcome = engine.enrol(frames, None, "terminal")
        assert outcome.embedding is not None, (student, outcome.reasons)
        templates.append(Template(student, SCHOOL, engine.model_version, outcome.embedding, now))
    walls, cpus = [], []
    for _ in range(rounds):
        for template, frames in zip(templates, bursts.values(), strict=True):
            wall, cpu = time.perf_counter(), time.process_time()
            engine.verify(frames, template, templates, "terminal")
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return {"captures": len(walls), "wall_ms_p50": round(1000 * percentile(walls, 0.5), 1),
            "wall_ms_p95": round(1000 * percentile(walls, 0.95), 1),
            "cpu_ms_mean": round(1000 * statistics.fmean(cpus), 1)}


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average every 5 s while the run lasts."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(5):
            self.samples.append(os.getloadavg()[0])


def start_system(system: System, instances: int) -> dict[str, Proc]:
    system.relay().start()
    procs = {"enrolment": system.service("enrolment", AID_CLOCK_OFFSET_SECONDS=offset(ENROL_DAY)),
             "spotcheck": system.service("spotcheck", AID_CLOCK_OFFSET_SECONDS=offset(CHECK_DAY)),
             "eligibility": system.service("eligibility")}
    for n in range(1, instances + 1):
        # real photos cannot answer a server-issued liveness challenge: these terminals are "old
        # clients" whose bursts get the unchallenged check (any turn or blink)
        procs[f"facematch-{n}"] = system.service("facematch", name=f"facematch-{n}",
                                                 AID_FACE_UNCHALLENGED="terminal")
    for proc in procs.values():
        proc.start(wait=False)
    for proc in procs.values():
        proc.wait_healthy(timeout=240)
    return procs


def setup(client: AidClient, terminals: int,
          frame: tuple[int, int]) -> tuple[list[str], dict[str, list[bytes]], str]:
    """School, terminals, one student per face, enrolled; the check; each student's burst."""
    client.register_school(SCHOOL, "负载测试职业学校", "驻马店市", "驿城区")
    names = [f"T{n:03d}" for n in range(1, terminals + 1)]
    for name in names:
        client.register_terminal(name, SCHOOL)
    from tests.flows import student_body

    bursts = {}
    for n, person in enumerate(faces.PEOPLE, start=1):
        student = f"L{n:04d}"
        client.register_student(student_body(student, 500 + n, SCHOOL))
        frames = [shrink(f, frame) for f in faces.burst(person)]
        answer = client.enrol(names[0], student, frames, shrink(faces.id_photo(person), frame))
        verdict = client.wait_verdict(answer["capture_id"], 120, terminal_id=names[0])
        if verdict["status"] != "verified":
            raise SystemExit(f"enrolment of {student} ({person.folder}) failed: {verdict['reasons']}")
        bursts[student] = frames
    deadline = time.monotonic() + 60
    while not all(client.student(SCHOOL, s)["enrolled"] for s in bursts):
        if time.monotonic() > deadline:
            raise SystemExit("StudentEnrolled did not arrive")
        time.sleep(0.5)
    check = client.open_check("2026-10-22T10:00:00+08:00", "2026-10-22T15:00:00+08:00", [SCHOOL])
    return names, bursts, str(check["check_id"])


def pad_school(database_url: str, templates: int) -> None:
    """More enrolled students at the school: ``templates`` synthetic face templates (random unit
    vectors, far from every real face), written as facematch writes them, so that each check-in's
    proxy search runs over a school of realistic size."""
    import numpy as np

    from backbone.config import DEV_SECRET
    from services.facematch.calibration import MODEL_VERSION
    from services.facematch.repository import PostgresTemplateRepository
    from services.facematch.templates import Template

    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        repo = PostgresTemplateRepository(conn, bytes.fromhex(DEV_SECRET))
        for n in range(templates):
            vector = rng.standard_normal(128)
            repo.put(Template(f"G{n:06d}", SCHOOL, MODEL_VERSION, vector / np.linalg.norm(vector), now))


class Run:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted: dict[str, float] = {}         # capture id -> submit start (epoch s)
        self.submit_seconds: list[float] = []
        self.seen_seconds: list[float] = []           # closed mode: submit to verdict seen by the terminal
        self.errors: dict[str, int] = {}

    def error(self, exc: Exception) -> None:
        code = f"{exc.status} {exc.code}" if isinstance(exc, ApiError) else type(exc).__name__
        with self.lock:
            self.errors[code] = self.errors.get(code, 0) + 1


def submit(client: AidClient, run: Run, terminal: str, check_id: str, student: str,
           frames: list[bytes], wait: bool) -> None:
    started = time.time()
    try:
        answer = client.capture(terminal, check_id, student, frames)
    except Exception as exc:  # counted, the run goes on
        run.error(exc)
        return
    with run.lock:
        run.accepted[answer["capture_id"]] = started
        run.submit_seconds.append(time.time() - started)
    if wait:
        try:
            verdict = client.wait_verdict(answer["capture_id"], 60, terminal_id=terminal)
        except Exception as exc:
            run.error(exc)
            return
        if verdict["status"] != "submitted":
            with run.lock:
                run.seen_seconds.append(time.time() - started)


def drive(client: AidClient, args: argparse.Namespace, terminals: list[str], bursts: dict[str, list[bytes]],
          check_id: str) -> tuple[Run, float, float]:
    run = Run()
    students = itertools.cycle(sorted(bursts))
    pick = threading.Lock()

    def next_student() -> str:
        with pick:
            return next(students)

    t0 = time.time()
    end = t0 + args.duration
    if args.mode == "closed":
        def terminal_loop(terminal: str) -> None:
            while time.time() < end:
                student = next_student()
                submit(client, run, terminal, check_id, student, bursts[student], wait=True)

        threads = [threading.Thread(target=terminal_loop, args=(t,)) for t in terminals]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        with ThreadPoolExecutor(len(terminals)) as pool:
            for n in itertools.count():
                due = t0 + n / args.rate
                if due >= end:
                    break
                time.sleep(max(0.0, due - time.time()))
                student = next_student()
                pool.submit(submit, client, run, terminals[n % len(terminals)], check_id, student,
                            bursts[student], False)
    return run, t0, end


def verdicts(database_url: str) -> dict[str, list[float]]:
    """capture id -> recorded_at (epoch s) of each of its verdict events."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT payload->>'capture_id', extract(epoch FROM recorded_at) FROM events"
                            " WHERE type IN ('CaptureVerified', 'CaptureRejected')"
                            " AND payload->>'purpose' = 'spot_check'").fetchall()
    found: dict[str, list[float]] = {}
    for capture_id, at in rows:
        found.setdefault(str(capture_id), []).append(float(at))
    return found


def facematch_seconds(procs: dict[str, Proc]) -> dict[str, tuple[float, float]]:
    """Per instance: (captures handled, mean seconds of facematch's own work per capture)."""
    out = {}
    for name, proc in procs.items():
        if name.startswith("facematch"):
            text = proc.metrics()
            total = metric_value(text, "aid_facematch_stage_seconds_sum", stage="total")
            count = metric_value(text, "aid_facematch_stage_seconds_count", stage="total")
            out[name] = (count, total / count if count else float("nan"))
    return out


def start_py_spy(out: Path, procs: dict[str, Proc], seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy sampling each service process (without pausing it) for ``seconds``."""
    spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--py-spy: py-spy is not on PATH (pip install py-spy, or set PY_SPY)")
    out.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([spy, "record", "--nonblocking", "--format", "raw", "--rate", "100",
                              "--duration", str(max(1, int(seconds))), "--pid", str(proc.popen.pid),
                              "--output", str(out / f"{name}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, proc in procs.items() if proc.popen]


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the services are stopped and the database and vhost dropped on the way out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("open", "closed"), default="open")
    parser.add_argument("--rate", type=float, default=20.0, help="open mode: captures submitted per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of submitting")
    parser.add_argument("--terminals", type=int, default=16)
    parser.add_argument("--facematch", type=int, default=2, help="facematch instances (default 2)")
    parser.add_argument("--frame", type=frame_box, default=KIOSK_FRAME, metavar="WxH",
                        help="each photo is fitted inside a camera frame of this size (default 640x480,"
                             " what the kiosk asks of its camera); a number N: at most N pixels a side")
    parser.add_argument("--school-size", type=int, default=0, metavar="N",
                        help="add N synthetic enrolled templates to the school (the proxy search's gallery)")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to wait for the last verdicts")
    parser.add_argument("--engine-rounds", type=int, default=3,
                        help="after the run, time facematch's engine alone on the bursts this many rounds")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="sample every service process with py-spy (on PATH or $PY_SPY) while the"
                             " captures are submitted; collapsed stacks to DIR/<process>.txt")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _interrupted)  # a run in the background (SIGINT ignored) can be stopped
    load_before = os.getloadavg()
    with throwaway_database("aid_load") as db, throwaway_vhost() as vhost, \
            tempfile.TemporaryDirectory(prefix="aid-load-") as tmp:
        system = System(db, vhost, Path(tmp))
        try:
            procs = start_system(system, args.facematch)
            client = sim_client(system, procs, Path(tmp) / "sim", timeout=60)
            terminals, bursts, check_id = setup(client, args.terminals, args.frame)
            if args.school_size:
                pad_school(system.database_url, args.school_size)
            for student in sorted(bursts)[:4]:  # warm-up: every instance has run its models
                submit(client, Run(), terminals[0], check_id, student, bursts[student], wait=True)
            before = facematch_seconds(procs)
            servers = server_pids(system.database_url)
            cpu_before = cpu_snapshot(system.procs, servers)
            sampler = LoadSampler()
            sampler.start()
            spies = start_py_spy(args.py_spy, procs, args.duration) if args.py_spy else []
            run, t0, end = drive(client, args, terminals, bursts, check_id)
            for spy in spies:
                spy.wait(timeout=60)
            submitted_by = time.time()
            deadline = time.monotonic() + args.drain
            found = verdicts(system.database_url)
            while any(c not in found for c in run.accepted) and time.monotonic() < deadline:
                time.sleep(1)
                found = verdicts(system.database_url)
            sampler.stop.set()
            after = facematch_seconds(procs)
            cpu_after = cpu_snapshot(system.procs, servers)
        finally:
            system.stop_all()

    cpu_all = {name: cpu_after[name] - cpu_before[name] for name in cpu_after if not name.startswith("(")}
    cpu_used = {name: used for name, used in cpu_all.items() if name[0] not in "[{"}
    busy = cpu_after["(machine busy)"] - cpu_before["(machine busy)"]
    total = max(1e-9, cpu_after["(machine total)"] - cpu_before["(machine total)"])
    engine = engine_cost(bursts, args.engine_rounds) if args.engine_rounds else None
    latencies = [found[c][0] - started for c, started in run.accepted.items() if c in found]
    missing = [c for c in run.accepted if c not in found]
    duplicated = [c for c in run.accepted if len(found.get(c, [])) > 1]
    in_window = [found[c][0] for c in run.accepted if c in found and found[c][0] <= end]
    last = max((found[c][0] for c in run.accepted if c in found), default=end)
    fm = {name: (after[name][0] - before[name][0],
                 (after[name][1] * after[name][0] - before[name][1] * before[name][0])
                 / max(1.0, after[name][0] - before[name][0])) for name in after}
    samples = sampler.samples
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "mode": args.mode, "rate": args.rate if args.mode == "open" else None,
        "terminals": args.terminals, "facematch_instances": args.facematch, "duration_s": args.duration,
        "frame": "x".join(map(str, args.frame)), "frames_per_capture": 3, "students": len(bursts),
        "school_templates": len(bursts) + args.school_size,
        "accepted": len(run.accepted), "refused": run.errors,
        "offered_per_s": round(len(run.accepted) / args.duration, 2),
        "verdicts_per_s_in_window": round(len(in_window) / args.duration, 2),
        "verdicts_per_s_overall": round(len(latencies) / max(1e-9, last - t0), 2),
        "p50_s": round(percentile(latencies, 0.50), 3), "p95_s": round(percentile(latencies, 0.95), 3),
        "p99_s": round(percentile(latencies, 0.99), 3),
        "max_s": round(max(latencies, default=float("nan")), 3),
        "submit_p50_s": round(percentile(run.submit_seconds, 0.5), 3),
        "submit_p95_s": round(percentile(run.submit_seconds, 0.95), 3),
        "terminal_seen_p50_s": round(percentile(run.seen_seconds, 0.5), 3) if run.seen_seconds else None,
        "terminal_seen_p95_s": round(percentile(run.seen_seconds, 0.95), 3) if run.seen_seconds else None,
        "missing_verdicts": len(missing), "duplicate_verdicts": len(duplicated),
        "drained_after_s": round(max(0.0, last - submitted_by), 1),
        "facematch": {name: {"captures": int(n), "mean_s": round(mean, 3)} for name, (n, mean) in fm.items()},
        # the services' processes; then the servers and the benchmark's own terminals (this process)
        "cpu_ms_per_capture": {name: round(1000 * used / max(1, len(run.accepted)), 1)
                               for name, used in cpu_all.items()},
        "cpu_ms_per_capture_services": round(1000 * sum(cpu_used.values()) / max(1, len(run.accepted)), 1),
        "cpu_share": {"machine_busy": round(busy / total, 3),
                      "these_processes": round(sum(cpu_used.values()) / total, 3)},
        "engine_alone": engine,
        "load_before": [round(x, 2) for x in load_before],
        "load_during_1min": {"min": round(min(samples, default=float("nan")), 2),
                             "max": round(max(samples, default=float("nan")), 2),
                             "mean": round(statistics.fmean(samples), 2) if samples else None},
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(figures, indent=1, ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, ensure_ascii=False))
    return 0 if not missing and not duplicated else 1


if __name__ == "__main__":
    raise SystemExit(main())
