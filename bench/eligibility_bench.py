"""Eligibility benchmark: a province-scale synthetic log, replayed from PostgreSQL.

    .venv/bin/python bench/eligibility_bench.py run --students 200000 --write-doc
    .venv/bin/python bench/eligibility_bench.py jsonl --students 20000 --out var/log.jsonl

``run`` creates a throwaway database ``elig_bench_<random>`` on 127.0.0.1:5432, applies the
migrations (``aid migrate``), COPYs the synthetic log into ``events`` (the event store's table,
as ``backbone/migrations/0001_event_log.sql`` defines it), then measures in child processes (so
peak memory is the replay's own):

- replay from PostgreSQL (the store's ``read_rows`` cursor -> fold): events/s, peak RSS, at 25%,
  50% and 100% of the log (memory as the log grows);
- derive every status (statuses/s) and write the JSON output (to ``--statuses-out``, default a
  file in a temporary directory, removed after);
- the low-memory replay (``replay --low-memory``: shared facts first, then one student at a
  time) writing the same JSON: time and peak RSS;
- one student's status: from the live projection table (statuses bulk-loaded) and by a
  filtered replay of the whole log;
- the live projection's ``apply_events`` latency for small batches on top of that state.

``--write-doc`` writes the figures with machine info to ``docs/benchmarks-eligibility.md``.
The database is dropped at the end unless ``--keep-db``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from contracts.identity import check_digit, hash_id_number  # noqa: E402
from services.eligibility.domain.calendar import SHANGHAI  # noqa: E402

ADMIN_DSN = os.environ.get("ELIG_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
KEY = b"bench-key"
SEMESTER = "2026-autumn"
CHECK_DAYS = [date(2026, 10, 22), date(2026, 10, 28), date(2026, 11, 11), date(2026, 11, 25),
              date(2026, 12, 9), date(2026, 12, 23)]

Row = tuple[str, str, int, str, int, datetime, datetime, str, str, None, str]


# --------------------------------------------------------------------------- the synthetic log


class Generator:
    """Events of one autumn semester for ``students`` students in ``schools`` schools.

    Per student: registration, enrolment, hardship determination, and for each of 6 routine
    checks (2 a month) a submitted and a verified capture; a few absences (leave), forced passes,
    rejected captures, appeals, placements; a national roster import at the end (40 parts).
    """

    def __init__(self, students: int, schools: int, seed: int = 1) -> None:
        self.n = students
        self.schools = schools
        self.rng = random.Random(seed)
        self.versions: dict[str, int] = {}
        self.count = 0

    def sid(self, i: int) -> str:
        return f"G41{i:09d}"

    def school(self, i: int) -> str:
        return f"41{i % self.schools:08d}"

    def _row(
        self, event_type: str, version: int, stream: str, when: datetime, payload: dict[str, Any]
    ) -> Row:
        v = self.versions.get(stream, 0) + 1
        self.versions[stream] = v
        self.count += 1
        eid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        recorded = when + timedelta(seconds=1 + (self.count % 7))
        actor = '{"kind": "system", "id": "bench", "school": null}'
        return (eid, stream, v, event_type, version, when, recorded, actor, eid, None,
                json.dumps(payload, ensure_ascii=False))

    @staticmethod
    def _at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SHANGHAI)

    def rows(self) -> Iterator[Row]:
        rng = self.rng
        n = self.n
        late = set(rng.sample(range(n), n // 50))
        provisional = set(rng.sample(range(n), n // 33))
        levels = ["difficult"] * 7 + ["especially_difficult"] * 2 + ["not_difficult"]
        placements = set(rng.sample(range(n), n // 100))
        for i in range(n):
            sid, school = self.sid(i), self.school(i)
            body = f"41010220{8 + i % 2:02d}0101{i % 1000:03d}"[:17]
            yield self._row(
                "StudentRegistered",
                2,
                f"student-{sid}",
                self._at(date(2026, 9, 1 + i % 9), 9, i % 60),
                {
                    "student_id": sid,
                    "school": {
                        "school_id": school,
                        "city": f"41{(i % self.schools) % 18:02d}",
                        "county": f"41{(i % self.schools) % 150:04d}",
                    },
                    "name_masked": "张*",
                    "id_number_hash": hash_id_number(KEY, body + check_digit(body)),
                    "id_number_masked": body[:6] + "********" + body[-3:] + check_digit(body),
                    "grade": 1 + i % 3,
                    "class_name": f"{i % 40}班",
                    "major": "会计",
                    "enrolment_year": 2026 - i % 3,
                    "enrolment_season": "autumn",
                    "proposed_aid": True,
                },
            )
        for i in range(n):
            sid = self.sid(i)
            day = date(2026, 10, 25) if i in late else date(2026, 9, 10) + timedelta(days=i % 35)
            yield self._row("StudentEnrolled", 1, f"student-{sid}", self._at(day, 11, i % 60), {
                "student_id": sid, "school_id": self.school(i), "semester": SEMESTER,
                "mode": "provisional" if i in provisional else "verified", "capture_id": f"cap-e-{i}"})
            yield self._row(
                "HardshipDetermined",
                1,
                f"hardship-{sid}",
                self._at(date(2026, 9, 20), 15),
                {
                    "determination_id": f"det-{i}",
                    "student_id": sid,
                    "school_id": self.school(i),
                    "level": levels[i % 10],
                    "categories": [2],
                    "effective_semester": SEMESTER,
                    "methods": ["quantitative"],
                },
            )
        for i in sorted(placements):
            if i % 3 == 0:
                continue
            sid = self.sid(i)
            yield self._row(
                "PlacementConfirmed",
                1,
                f"placement-{sid}",
                self._at(date(2026, 10, 25), 10),
                {
                    "placement_id": f"pl-{i}",
                    "student_id": sid,
                    "school_id": self.school(i),
                    "grade": 1 + i % 3,
                    "class_name": "1班",
                    "company": "公司",
                    "location": "驻马店市某街1号",
                    "supervisor": "李",
                    "supervisor_contact_masked": "138****0000",
                    "starts_on": "2026-11-01",
                    "ends_on": "2026-12-31",
                    "filed_on": "2026-10-28",
                },
            )
        for c, day in enumerate(CHECK_DAYS):
            check_id = f"R-{day.isoformat()}"
            month = day.isoformat()[:7]
            yield self._row("CheckOpened", 1, f"check-{check_id}", self._at(day, 8), {
                "check_id": check_id, "kind": "routine", "semester": SEMESTER, "month": month,
                "opens_at": self._at(day, 10).isoformat(), "closes_at": self._at(day, 15).isoformat(),
                "initiated_by": "province", "school_ids": None, "student_ids": None})
            for i in range(n):
                sid, school = self.sid(i), self.school(i)
                roll = rng.random()
                when = self._at(day, 10 + i % 5, (i // 5) % 60, i % 60)
                if roll < 0.02:
                    yield self._row("AbsenceMarked", 1, f"absence-{sid}", when, {
                        "check_id": check_id, "student_id": sid, "school_id": school, "reason": "leave",
                        "reported_at": self._at(day, 11 if roll < 0.015 else 13).isoformat()})
                    continue
                if roll < 0.035:
                    continue  # absent
                capture = f"cap-{c}-{i}"
                yield self._row("CaptureSubmitted", 1, f"capture-{sid}", when, {
                    "capture_id": capture, "student_id": sid, "school_id": school, "purpose": "spot_check",
                    "channel": "app", "frame_refs": ["blob:" + "a" * 64], "captured_at": when.isoformat(),
                    "check_id": check_id, "attempt": 1})
                if roll < 0.045:
                    yield self._row(
                        "CaptureRejected",
                        1,
                        f"capture-{sid}",
                        when + timedelta(seconds=2),
                        {
                            "capture_id": capture,
                            "student_id": sid,
                            "school_id": school,
                            "purpose": "spot_check",
                            "channel": "app",
                            "reasons": ["NO_MATCH"],
                            "quality": {},
                            "liveness": {},
                            "model_version": "bench",
                            "check_id": check_id,
                        },
                    )
                    yield self._row("ForcedPassRecorded", 1, f"capture-{sid}", when + timedelta(minutes=5), {
                        "check_id": check_id, "student_id": sid, "school_id": school, "terminal_id": "T1",
                        "attempts": 3, "evidence_ref": "blob:" + "b" * 64})
                    continue
                yield self._row("CaptureVerified", 1, f"capture-{sid}", when + timedelta(seconds=2), {
                    "capture_id": capture, "student_id": sid, "school_id": school, "purpose": "spot_check",
                    "channel": "app", "distance": 0.31, "threshold": 0.6, "quality": {"blur": 0.1},
                    "liveness": {"score": 0.98}, "model_version": "bench", "check_id": check_id})
            yield self._row("CheckClosed", 1, f"check-{check_id}", self._at(day, 15),
                            {"check_id": check_id, "closed_at": self._at(day, 15).isoformat()})
            if c % 2 == 1:
                published = day + timedelta(days=6)
                for s in range(self.schools):
                    yield self._row("MonthResultsPublished", 1, f"results-{self.school(s)}-{month}",
                                    self._at(published, 17), {"school_id": self.school(s), "month": month,
                                                              "published_on": published.isoformat()})
                for i in rng.sample(range(n), n // 200):
                    sid = self.sid(i)
                    appeal = f"ap-{month}-{i}"
                    yield self._row(
                        "AppealFiled",
                        1,
                        f"appeal-{appeal}",
                        self._at(published + timedelta(days=2), 16),
                        {
                            "appeal_id": appeal,
                            "student_id": sid,
                            "school_id": self.school(i),
                            "month": month,
                            "objected_on": (published + timedelta(days=2)).isoformat(),
                            "letter_ref": "blob:" + "c" * 64,
                        },
                    )
                    yield self._row(
                        "AppealResolved",
                        1,
                        f"appeal-{appeal}",
                        self._at(published + timedelta(days=4), 10),
                        {
                            "appeal_id": appeal,
                            "student_id": sid,
                            "month": month,
                            "decision": "approved" if i % 3 else "rejected",
                            "decided_by": "county",
                        },
                    )
        listed = [i for i in range(n) if i % 500 != 7]
        entries = []
        for i in listed:
            body = f"41010220{8 + i % 2:02d}0101{i % 1000:03d}"[:17]
            entries.append(
                {"student_id": self.sid(i), "id_number_hash": hash_id_number(KEY, body + check_digit(body))}
            )
        entries += [{"student_id": f"N{i:09d}", "id_number_hash": "0" * 64} for i in range(100)]
        parts = [entries[k:k + 5000] for k in range(0, len(entries), 5000)]
        import_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        for p, chunk in enumerate(parts, start=1):
            yield self._row(
                "NationalRosterImported",
                1,
                f"roster-{SEMESTER}",
                self._at(date(2027, 1, 20), 9 + p // 60, p % 60),  # parts past 59 roll into the next hour
                {
                    "import_id": import_id,
                    "semester": SEMESTER,
                    "part": p,
                    "parts": len(parts),
                    "source_sha256": "d" * 64,
                    "entries": chunk,
                },
            )


def row_to_document(row: Row) -> dict[str, Any]:
    eid, stream, version, etype, schema, occurred, recorded, actor, corr, caus, payload = row
    return {
        "event_id": eid,
        "type": etype,
        "schema_version": schema,
        "stream": stream,
        "stream_version": version,
        "occurred_at": occurred.isoformat(),
        "recorded_at": recorded.isoformat(),
        "actor": json.loads(actor),
        "correlation_id": corr,
        "causation_id": caus,
        "position": None,
        "payload": json.loads(payload),
    }


# --------------------------------------------------------------------------- helpers


def peak_rss_mb(children: bool = False) -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_maxrss / 1024  # Linux: KiB


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import psycopg

    with psycopg.connect(ADMIN_DSN) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        shared = conn.execute("SHOW shared_buffers").fetchone()[0]
    return {"cpu": f"{cpu} x {os.cpu_count()}", "memory": mem, "python": platform.python_version(),
            "os": platform.platform(), "postgres": f"{pg} (shared_buffers {shared}, same host)"}


def child(args: list[str]) -> dict[str, Any]:
    """Run a measurement in a fresh interpreter; it prints one JSON line of figures."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{done.stderr[-3000:]}")
    sys.stderr.write(done.stderr)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- child measurements


def measure_replay(dsn: str, until: int | None, derive: bool, out: str | None) -> dict[str, Any]:
    import psycopg

    from services.eligibility.domain.facts import Ledger
    from services.eligibility.logsource import Progress, postgres_events
    from services.eligibility.output import JsonWriter, write_statuses
    from services.eligibility.policyfile import load_policy_book
    from services.eligibility.replay import fold_log, statuses

    with psycopg.connect(dsn) as conn:
        log_events = conn.execute("SELECT count(*) FROM events WHERE position <= %s",
                                  (until or 2**62,)).fetchone()[0]
    book = load_policy_book()
    progress = Progress(1_000_000, label="bench replay")
    started = time.perf_counter()
    ledger = fold_log(postgres_events(dsn, until_position=until), Ledger(), progress)
    fold_s = time.perf_counter() - started
    figures: dict[str, Any] = {"events": log_events, "folded": progress.count, "fold_s": fold_s,
                               "fold_eps": log_events / fold_s, "students": len(ledger.students),
                               "rss_after_fold_mb": peak_rss_mb()}
    if derive:
        started = time.perf_counter()
        if out:
            count = write_statuses(statuses(ledger, book), [JsonWriter(out, header=report_header(book))])
        else:
            count = sum(1 for _ in statuses(ledger, book))
        figures.update(statuses=count, derive_s=time.perf_counter() - started)
        figures["derive_sps"] = count / figures["derive_s"]
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


def raw_read(dsn: str) -> dict[str, Any]:
    """The ceiling: the rows every replay reads (the types the rules read, the columns
    :func:`services.eligibility.logsource.fast_events` asks for), fetched by COPY and thrown
    away: bytes only (``copy`` blocks), then split into typed rows (``copy.rows()``), no JSON."""
    import psycopg

    from services.eligibility.domain.facts import handled_types

    query = ("COPY (SELECT type, schema_version, event_id::text, extract(epoch FROM occurred_at)::float8,"
             " position, payload::text FROM events WHERE type = ANY(%s)) TO STDOUT")
    figures: dict[str, Any] = {"load_1min_before": os.getloadavg()[0]}
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        backend = conn.info.backend_pid
        server = _cpu_of(backend)
        started, cpu = time.perf_counter(), time.process_time()
        size = 0
        with cur.copy(query, (handled_types(),)) as copy:
            for block in copy:
                size += len(block)
        figures["bytes_s"] = time.perf_counter() - started
        figures["bytes_cpu_s"] = time.process_time() - cpu
        figures["bytes_server_cpu_s"] = _cpu_of(backend) - server
        figures["mb"] = size / 2**20
        started, cpu = time.perf_counter(), time.process_time()
        rows = 0
        with cur.copy(query, (handled_types(),)) as copy:
            copy.set_types(["text", "int4", "text", "float8", "int8", "text"])
            for _ in copy.rows():
                rows += 1
        figures["rows"] = rows
        figures["rows_s"] = time.perf_counter() - started
        figures["rows_cpu_s"] = time.process_time() - cpu
    figures["bytes_rows_per_s"] = rows / figures["bytes_s"]
    figures["rows_per_s"] = rows / figures["rows_s"]
    return figures


def _vm_hwm_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ``ru_maxrss``, not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mb()


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of a process on this host (the PostgreSQL backend serving a
    connection), from /proc; 0 where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def measure_stages(dsn: str) -> dict[str, Any]:
    """Where the time of a replay goes, in CPU seconds of this process (one core) and of the
    PostgreSQL backend: read + decode (``fast_events`` alone), + fold, then derive every
    student, then render every status (model + JSON, as a worker does)."""
    from services.eligibility.domain.facts import Ledger
    from services.eligibility.domain.rules import derive
    from services.eligibility.logsource import fast_events
    from services.eligibility.output import render
    from services.eligibility.policyfile import load_policy_book
    from services.eligibility.replay import fold_log

    book = load_policy_book()
    figures: dict[str, Any] = {"load_1min_before": os.getloadavg()[0]}
    cpu = time.process_time()
    events = sum(1 for _ in fast_events(dsn, ordered=False))
    figures["events"] = events
    figures["read_decode_cpu_s"] = time.process_time() - cpu
    cpu = time.process_time()
    ledger = fold_log(fast_events(dsn, ordered=False), Ledger())
    figures["read_decode_fold_cpu_s"] = time.process_time() - cpu
    derive_s = render_s = 0.0
    statuses = 0
    clock = time.process_time
    for student_id in sorted(ledger.student_ids()):
        started = clock()
        found = derive(student_id, ledger.students.get(student_id), ledger.shared, book)
        middle = clock()
        for status in found:
            render(status)
        derive_s += middle - started
        render_s += clock() - middle
        statuses += len(found)
    figures.update(statuses=statuses, derive_cpu_s=derive_s, render_cpu_s=render_s,
                   fold_cpu_s=figures["read_decode_fold_cpu_s"] - figures["read_decode_cpu_s"],
                   derive_statuses_per_cpu_s=statuses / derive_s, peak_rss_mb=peak_rss_mb(),
                   load_1min_after=os.getloadavg()[0])
    return figures


def measure_decode(dsn: str, limit: int) -> dict[str, Any]:
    """The first ``limit`` events read and decoded four ways (client and PostgreSQL backend CPU):
    the store's cursor with psycopg's jsonb loader (``json.loads``; what ``postgres_events``
    does), the same cursor with orjson as the jsonb loader, ``payload::text`` parsed by orjson,
    and ``COPY ... TO STDOUT`` parsed by orjson (what ``fast_events`` does)."""
    import orjson
    import psycopg
    from psycopg.types.json import set_json_loads

    def timed(label: str, run: Any) -> None:
        with psycopg.connect(dsn) as conn:
            backend = conn.info.backend_pid
            server, cpu, started = _cpu_of(backend), time.process_time(), time.perf_counter()
            rows = run(conn)
            figures[label] = {"rows": rows, "client_cpu_us_per_row": 1e6 * (time.process_time() - cpu) / rows,
                              "server_cpu_us_per_row": 1e6 * (_cpu_of(backend) - server) / rows,
                              "wall_s": time.perf_counter() - started}

    def cursor(query: str, parse: Any = None) -> Any:
        def run(conn: Any) -> int:
            n = 0
            with conn.transaction(), conn.cursor(name="decode") as cur:
                cur.itersize = 5000
                cur.execute(query, (limit,))
                for row in cur:
                    payload = row[-1] if parse is None else parse(row[-1])
                    str(row[1]), row[6].timestamp(), payload
                    n += 1
            return n
        return run

    lean = ("SELECT position, event_id, NULL, stream_version, type, schema_version, occurred_at, NULL, NULL,"
            " NULL, NULL, {} FROM events WHERE position <= %s ORDER BY position")
    figures: dict[str, Any] = {"load_1min_before": os.getloadavg()[0]}
    timed("cursor_jsonb_json_loads", cursor(lean.format("payload")))
    set_json_loads(orjson.loads)
    try:
        timed("cursor_jsonb_orjson_loader", cursor(lean.format("payload")))
    finally:
        set_json_loads(json.loads)
    timed("cursor_text_orjson", cursor(lean.format("payload::text"), orjson.loads))

    def copy(conn: Any) -> int:  # the query and parsing of fast_events
        n = 0
        query = ("COPY (SELECT type, schema_version, event_id::text, extract(epoch FROM occurred_at)::float8,"
                 " position, payload::text FROM events WHERE position <= %s) TO STDOUT")
        loads = orjson.loads
        with conn.cursor() as cur, cur.copy(query, (limit,)) as stream:
            stream.set_types(["text", "int4", "text", "float8", "int8", "text"])
            for row in stream.rows():
                loads(row[5])
                n += 1
        return n

    timed("copy_text_orjson", copy)
    return figures


def measure_e2e(dsn: str, mode: str, workers: int, low_memory: bool, out: str) -> dict[str, Any]:
    """End to end as the audit runs it: read, fold, derive, write the JSON report. ``mode``:
    ``sequential`` (the store's cursor, one process: ``replay --source postgres``), ``parallel``
    (``replay --workers N``: N worker processes reading their students by COPY, this process
    merging and writing). Wall and CPU time (this process, and its workers once ended), peak RSS."""
    import psycopg

    from services.eligibility.logsource import Progress, postgres_events
    from services.eligibility.output import JsonWriter, write_rendered, write_statuses
    from services.eligibility.policyfile import load_policy_book
    from services.eligibility.replay import replay, replay_by_student, replay_rendered

    with psycopg.connect(dsn) as conn:
        events = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    book = load_policy_book()
    progress = Progress(1_000_000, label=f"bench e2e {mode}")
    load = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    writers = [JsonWriter(out, header=report_header(book))]
    if mode == "sequential":
        derived = (replay_by_student(dsn, book, progress=progress) if low_memory
                   else replay(postgres_events(dsn), book, None, progress))
        count = write_statuses(derived, writers)
    else:  # as replay --workers N writes its report
        rendered = replay_rendered(dsn, book, workers=workers, low_memory=low_memory, progress=progress)
        count = write_rendered(rendered, writers)
    wall = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"mode": mode, "workers": workers, "low_memory": low_memory, "events": events, "statuses": count,
            "wall_s": wall, "events_per_s": events / wall, "statuses_per_s": count / wall,
            "cpu_self_s": time.process_time() - cpu, "cpu_workers_s": children.ru_utime + children.ru_stime,
            "peak_rss_mb": _vm_hwm_mb(), "peak_rss_worker_mb": peak_rss_mb(children=True),
            "load_1min_before": load, "load_1min_after": os.getloadavg()[0]}


def report_header(book: Any) -> Any:
    from contracts.eligibility_status import SCHEMA_ID, ReportHeader

    return ReportHeader(schema=SCHEMA_ID, generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        as_of=None, source="postgres", policy_versions=[p.version for p in book.versions])


def measure_low_memory(dsn: str, out: str) -> dict[str, Any]:
    """``replay --low-memory``: shared facts first, then the events by student, each student
    derived, written and forgotten."""
    from services.eligibility.output import JsonWriter, write_statuses
    from services.eligibility.policyfile import load_policy_book
    from services.eligibility.replay import replay_by_student

    book = load_policy_book()
    started = time.perf_counter()
    count = write_statuses(replay_by_student(dsn, book), [JsonWriter(out, header=report_header(book))])
    return {"statuses": count, "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def measure_one_student(dsn: str, student: str) -> dict[str, Any]:
    from services.eligibility.logsource import postgres_events
    from services.eligibility.replay import Filters, replay

    started = time.perf_counter()
    found = list(replay(postgres_events(dsn), filters=Filters(students=[student])))
    return {
        "filtered_replay_s": time.perf_counter() - started,
        "found": len(found),
        "peak_rss_mb": peak_rss_mb(),
    }


# --------------------------------------------------------------------------- the run


def create_database() -> tuple[str, str]:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"elig_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, make_conninfo(ADMIN_DSN, dbname=name)


def drop_database(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def copy_log(dsn: str, generator: Generator) -> tuple[int, float]:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY events (event_id, stream, stream_version, type, schema_version, occurred_at,"
                      " recorded_at, actor, correlation_id, causation_id, payload) FROM STDIN") as copy:
            for n, row in enumerate(generator.rows(), start=1):
                copy.write_row(row)
                if n % 1_000_000 == 0:
                    print(f"bench: copied {n:,} events", file=sys.stderr, flush=True)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE events")
    return generator.count, time.perf_counter() - started


def validate_sample(generator_rows: list[Row]) -> None:
    from contracts.registry import validate_envelope

    for row in generator_rows:
        validate_envelope(row_to_document(row))


def measure_rebuild(dsn: str) -> dict[str, Any]:
    """Fold the log (store API) and rebuild the live projection from it (``writer.rebuild``)."""
    import psycopg

    from services.eligibility.domain.facts import Ledger
    from services.eligibility.logsource import postgres_events
    from services.eligibility.projection.writer import rebuild
    from services.eligibility.replay import fold_log

    with psycopg.connect(dsn) as conn:
        top = conn.execute("SELECT max(position) FROM events").fetchone()[0]
    started = time.perf_counter()
    ledger = fold_log(postgres_events(dsn), Ledger())
    fold_s = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        rows = rebuild(conn, ledger, through_position=top)
        conn.execute("ANALYZE")
    return {
        "fold_s": fold_s,
        "rebuild_s": time.perf_counter() - started,
        "rows": rows,
        "peak_rss_mb": peak_rss_mb(),
    }


def apply_latency(dsn: str, generator: Generator) -> dict[str, Any]:
    """``apply_events`` on top of the full projection: small per-student batches, one school's check."""
    import psycopg

    from contracts.envelope import Actor
    from contracts.events import AbsenceMarked, CheckClosed, CheckOpened
    from contracts.registry import build_envelope
    from services.eligibility.projection.writer import Projection

    actor = Actor(kind="system", id="bench")
    rng = random.Random(9)
    live = Projection()
    check_day = CHECK_DAYS[3]
    check_id = f"R-{check_day.isoformat()}"
    timings = []
    with psycopg.connect(dsn) as conn:
        first_s = 0.0
        for n in range(101):
            batch = []
            for _ in range(10):
                i = rng.randrange(generator.n)
                batch.append(
                    build_envelope(
                        AbsenceMarked(
                            check_id=check_id,
                            student_id=generator.sid(i),
                            school_id=generator.school(i),
                            reason="leave",
                            reported_at=Generator._at(check_day, 10, 30).isoformat(),
                        ),
                        stream=f"absence-{i}",
                        actor=actor,
                        occurred_at=Generator._at(check_day, 10, 31),
                    )
                )
            started = time.perf_counter()
            live.apply_events(conn, batch)
            if n:  # the first batch also loads the shared facts
                timings.append(time.perf_counter() - started)
            else:
                first_s = time.perf_counter() - started
        school = generator.school(5)
        day = date(2026, 12, 30)
        opened = build_envelope(CheckOpened(
            check_id="R-school-5", kind="routine", semester=SEMESTER, month="2026-12",
            opens_at=Generator._at(day, 10).isoformat(), closes_at=Generator._at(day, 15).isoformat(),
            initiated_by="county", school_ids=[school]), stream="check-R-school-5", actor=actor,
            occurred_at=Generator._at(day, 8))
        closed = build_envelope(
            CheckClosed(check_id="R-school-5", closed_at=Generator._at(day, 15).isoformat()),
            stream="check-R-school-5",
            actor=actor,
            occurred_at=Generator._at(day, 15),
        )
        started = time.perf_counter()
        result = live.apply_events(conn, [opened])
        open_s = time.perf_counter() - started
        started = time.perf_counter()
        live.apply_events(conn, [closed])
        close_s = time.perf_counter() - started
    timings.sort()
    return {"batch_of_10_p50_ms": 1000 * timings[len(timings) // 2], "batch_of_10_p99_ms": 1000 * timings[-1],
            "first_batch_ms": 1000 * first_s, "school_check_students": result.rederived,
            "school_check_opened_ms": 1000 * open_s, "school_check_closed_ms": 1000 * close_s}


def query_latency(dsn: str, students: list[str], school: str) -> dict[str, Any]:
    import psycopg

    from services.eligibility.projection import queries

    with psycopg.connect(dsn) as conn:
        timings = []
        for sid in students:
            started = time.perf_counter()
            assert queries.student_status(conn, sid)
            timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        school_month = queries.school_month(conn, school, "2026-11")
        school_s = time.perf_counter() - started
        started = time.perf_counter()
        summary = queries.province_summary(conn, "2026-11")
        province_s = time.perf_counter() - started
    timings.sort()
    return {
        "student_p50_ms": 1000 * timings[len(timings) // 2],
        "student_p99_ms": 1000 * timings[int(len(timings) * 0.99)],
        "school_month_ms": 1000 * school_s,
        "school_students": len(school_month["students"]),
        "province_summary_s": province_s,
        "summary": summary,
    }


def reuse_database(name: str) -> tuple[str, int]:
    """A database a former ``run --keep-db`` left, holding the same synthetic log."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    dsn = make_conninfo(ADMIN_DSN, dbname=name)
    with psycopg.connect(dsn) as conn:
        return dsn, int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def populate(args: argparse.Namespace) -> int:
    """Create database ``--name``, migrate it and COPY the synthetic log into it (kept: drop it
    with ``drop --name``)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from backbone.migrate import migrate

    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.name)))
    dsn = make_conninfo(ADMIN_DSN, dbname=args.name)
    migrate(dsn, out=sys.stderr)
    events, copy_s = copy_log(dsn, Generator(args.students, args.schools))
    print(f"bench: {events:,} events copied into {args.name} in {copy_s:.0f} s", file=sys.stderr)
    return 0


def e2e(args: argparse.Namespace) -> int:
    """Raw read rate, then each end-to-end replay in a fresh process, on one database (``--db``)."""
    from psycopg.conninfo import make_conninfo

    dsn = make_conninfo(ADMIN_DSN, dbname=args.db)
    figures: dict[str, Any] = {"raw_read": child(["raw-read-child", "--dsn", dsn]), "runs": []}
    print(json.dumps(figures["raw_read"]), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="elig_bench_") as scratch:
        out = str(Path(scratch) / "statuses.json")
        reference: str | None = None
        for spec in args.modes:
            mode, _, n = spec.partition(":")
            low = mode.endswith("-low")
            argv = ["e2e-child", "--dsn", dsn, "--mode", mode.removesuffix("-low"), "--workers", n or "1",
                    "--out", out] + (["--low-memory"] if low else [])
            result = child(argv)
            body = _statuses_body(Path(out))
            result["same_output_as_first"] = reference is None or body == reference
            reference = reference if reference is not None else body
            figures["runs"].append(result)
            print(json.dumps(result), file=sys.stderr)
    print(json.dumps(figures, indent=2))
    return 0 if all(r["same_output_as_first"] for r in figures["runs"]) else 1


def _statuses_body(path: Path) -> str:
    """The SHA-256 of the report without its header line (which holds the time it was generated),
    read in blocks (holding the report would raise the peak RSS of the next measuring child)."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        handle.readline()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(args: argparse.Namespace) -> int:
    name, dsn = (args.db, "") if args.db else create_database()
    print(f"bench: database {name}", file=sys.stderr)
    try:
        from backbone.migrate import migrate

        generator = Generator(args.students, args.schools)
        copy_s: float | None = None
        if args.db:
            dsn, events = reuse_database(args.db)
            migrate(dsn, out=sys.stderr)
        else:
            migrate(dsn, out=sys.stderr)
            validate_sample(list(Generator(200, 20).rows()))
            events, copy_s = copy_log(dsn, generator)
            print(f"bench: {events:,} events copied in {copy_s:.0f} s", file=sys.stderr)
        figures: dict[str, Any] = {"students": args.students, "schools": args.schools, "events": events,
                                   "copy_s": copy_s, "db": args.db}
        figures["growth"] = [child(["replay-child", "--dsn", dsn, "--until", str(int(events * f))])
                             for f in (0.25, 0.5)]
        with tempfile.TemporaryDirectory(prefix="elig_bench_") as scratch:
            out = args.statuses_out or str(Path(scratch) / "statuses.json")
            figures["full"] = child(["replay-child", "--dsn", dsn, "--derive", "--out", out])
            figures["json_mb"] = Path(out).stat().st_size / 2**20
            figures["low_memory"] = child(["low-memory-child", "--dsn", dsn, "--out", out])
        figures["one_student"] = child(
            ["one-student-child", "--dsn", dsn, "--student", generator.sid(12345 % args.students)]
        )
        figures["rebuild"] = child(["rebuild-child", "--dsn", dsn])
        sample = [generator.sid(i) for i in random.Random(2).sample(range(args.students), 500)]
        figures["queries"] = query_latency(dsn, sample, generator.school(3))
        figures["apply"] = apply_latency(dsn, generator)
        figures["machine"] = machine()
        print(json.dumps(figures, indent=2, default=str))
        if args.write_doc:
            write_doc(figures, ROOT / "docs" / "benchmarks-eligibility.md")
    finally:
        if not args.keep_db and not args.db:
            drop_database(name)
    return 0


def write_doc(f: dict[str, Any], path: Path) -> None:
    full, growth, q, a, r, low = (
        f["full"],
        f["growth"],
        f["queries"],
        f["apply"],
        f["rebuild"],
        f["low_memory"],
    )
    m = f["machine"]
    rows = "\n".join(
        f"| {g['events']:,} | {g['folded']:,} | {g['students']:,} | {g['fold_eps']:,.0f}"
        f" | {g['peak_rss_mb']:,.0f} |"
        for g in [*growth, full]
    )
    verdict = "meets" if full["fold_eps"] >= 100_000 else "does NOT meet"
    copied = (" (by an earlier run; `--db` reused it)" if f["copy_s"] is None
              else f" in {f['copy_s']:.0f} s")
    reused = f" --db {f['db']}" if f.get("db") else ""
    text = f"""# Eligibility benchmark

Produced by `.venv/bin/python bench/eligibility_bench.py run --students {f["students"]} --write-doc{reused}`
on {datetime.now(UTC).date().isoformat()}. One run; re-run to refresh.

## Machine

| | |
|---|---|
| CPU | {m["cpu"]} |
| Memory | {m["memory"]} |
| OS | {m["os"]} |
| Python | {m["python"]} |
| PostgreSQL | {m["postgres"]} |

## Log

A synthetic province: {f["students"]:,} proposed-aid students in {f["schools"]:,} schools, one
autumn semester: registration, enrolment (2% late, 3% provisional), hardship determination,
6 province-wide routine checks (2 a month) each with a submitted and a verified capture per
student (2% leave, 1.5% absent, 1% rejected then force-passed), results published per school,
0.5% appeals a month, 1% placement confirmations, a national roster in parts of 5,000:
**{f["events"]:,} events**, COPYed into the event store's `events` table{copied}.

## Replay from PostgreSQL

Through the store's API (`PostgresEventStore.read_rows(types=..., lean=True)`: server-side
cursor, 5,000 rows a fetch; the database drops the event types the rules ignore
({100 * (1 - full["folded"] / full["events"]):.0f}% of this log: the types not in `domain.facts.FOLDS`)
and skips the columns a fold does not read), then the fold (dispatch through the fold registry
`domain.facts.FOLDS`, upcasting, no JSON-Schema validation: the log was validated at append).
Each line is a fresh process replaying a prefix of the log; events/s counts log events; peak RSS
is that process's `ru_maxrss`.

| log events | folded | students | events/s | peak RSS (MB) |
|---:|---:|---:|---:|---:|
{rows}

- Whole log through the store's API: **{full["fold_eps"]:,.0f} events/s** ({full["fold_s"]:.1f} s): this
  {verdict} the 100,000 events/s target.
- Derive every status and write the JSON report (each status built through the typed model
  `contracts.eligibility_status.EligibilityStatus`): {full["statuses"]:,} statuses in
  {full["derive_s"]:.1f} s ({full["derive_sps"]:,.0f} statuses/s), {f["json_mb"]:,.0f} MB of JSON.
- Flat-memory mode (`replay --low-memory`: shared facts first, then the events ordered by
  student, each student derived, written and forgotten): {low["statuses"]:,} statuses written as
  JSON in {low["seconds"]:.1f} s, peak RSS **{low["peak_rss_mb"]:,.0f} MB**.
- Memory: per-student facts only (no envelopes, no set of seen event ids); it grows with the
  facts the rules read (students x checks), as the table shows, not with ignored events.

## Live projection and queries

- Rebuild the projection from a replay (`projection.writer.rebuild`: facts, shared facts, roster
  entries and {r["rows"]:,} status rows by COPY): fold {r["fold_s"]:.0f} s + rebuild {r["rebuild_s"]:.0f} s,
  peak RSS {r["peak_rss_mb"]:,.0f} MB.
- One student's status from the projection (`projection.queries.student_status`, primary-key look-up,
  500 random students): p50 **{q["student_p50_ms"]:.2f} ms**, p99 {q["student_p99_ms"]:.2f} ms.
- One student's status by a filtered replay of the whole log (`replay --student`):
  {f["one_student"]["filtered_replay_s"]:.1f} s.
- One school's month (`queries.school_month`, {q["school_students"]} students): {q["school_month_ms"]:.1f} ms.
- Province summary of a month (`queries.province_summary`, SQL over jsonb, all rows):
  {q["province_summary_s"]:.1f} s.
- `Projection.apply_events`, batches of 10 per-student events (AbsenceMarked) on top of the full state:
  p50 {a["batch_of_10_p50_ms"]:.1f} ms, max {a["batch_of_10_p99_ms"]:.1f} ms (first batch, which loads the
  shared facts: {a["first_batch_ms"]:.0f} ms).
- A school's routine check ({a["school_check_students"]} students re-derived): CheckOpened
  {a["school_check_opened_ms"]:.0f} ms, CheckClosed {a["school_check_closed_ms"]:.0f} ms. A province-wide
  check or a complete roster import re-derives every student (in chunks of 2,000).

## Summary for 2026-11 (sanity check of the synthetic data)

```json
{json.dumps(q["summary"], indent=2)}
```
"""
    path.write_text(text, encoding="utf-8")
    print(f"bench: wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--students", type=int, default=200_000)
    r.add_argument("--schools", type=int, default=1000)
    r.add_argument("--keep-db", action="store_true")
    r.add_argument("--db", help="reuse this database (left by --keep-db with the same --students and"
                   " --schools) instead of creating and filling one; it is kept")
    r.add_argument("--write-doc", action="store_true")
    r.add_argument("--statuses-out", help="where the replays write their JSON statuses (default: a temporary"
                   " directory, removed after the run)")
    j = sub.add_parser("jsonl")
    j.add_argument("--students", type=int, default=20_000)
    j.add_argument("--schools", type=int, default=100)
    j.add_argument("--out", required=True)
    c = sub.add_parser("replay-child")
    c.add_argument("--dsn", required=True)
    c.add_argument("--until", type=int)
    c.add_argument("--derive", action="store_true")
    c.add_argument("--out")
    b = sub.add_parser("rebuild-child")
    b.add_argument("--dsn", required=True)
    m = sub.add_parser("low-memory-child")
    m.add_argument("--dsn", required=True)
    m.add_argument("--out", required=True)
    o = sub.add_parser("one-student-child")
    o.add_argument("--dsn", required=True)
    o.add_argument("--student", required=True)
    pp = sub.add_parser("populate", help="create a database and fill it with the synthetic log (kept)")
    pp.add_argument("--name", required=True)
    pp.add_argument("--students", type=int, default=200_000)
    pp.add_argument("--schools", type=int, default=1000)
    d = sub.add_parser("drop", help="drop a database made by populate")
    d.add_argument("--name", required=True)
    e = sub.add_parser("e2e", help="the audit replay end to end (read, fold, derive, write JSON) beside the"
                       " raw read rate, on a database made by populate")
    e.add_argument("--db", required=True)
    e.add_argument("--modes", nargs="+", default=["sequential", "parallel:1", "parallel:2"],
                   help="sequential[-low] | parallel[-low]:N (N workers; -low: flat memory, by student)")
    dc = sub.add_parser("decode", help="read and decode the first events four ways (CPU per row)")
    dc.add_argument("--db", required=True)
    dc.add_argument("--limit", type=int, default=300_000)
    st = sub.add_parser("stages", help="CPU time per stage of a replay (read+decode, fold, derive, render)")
    st.add_argument("--db", required=True)
    rr = sub.add_parser("raw-read-child")
    rr.add_argument("--dsn", required=True)
    ec = sub.add_parser("e2e-child")
    ec.add_argument("--dsn", required=True)
    ec.add_argument("--mode", choices=["sequential", "parallel"], required=True)
    ec.add_argument("--workers", type=int, default=1)
    ec.add_argument("--low-memory", action="store_true")
    ec.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.command == "run":
        return run(args)
    if args.command == "populate":
        return populate(args)
    if args.command == "drop":
        drop_database(args.name)
        return 0
    if args.command == "e2e":
        return e2e(args)
    if args.command == "decode":
        from psycopg.conninfo import make_conninfo

        print(json.dumps(measure_decode(make_conninfo(ADMIN_DSN, dbname=args.db), args.limit), indent=2))
        return 0
    if args.command == "stages":
        from psycopg.conninfo import make_conninfo

        print(json.dumps(measure_stages(make_conninfo(ADMIN_DSN, dbname=args.db)), indent=2))
        return 0
    if args.command == "raw-read-child":
        print(json.dumps(raw_read(args.dsn)))
        return 0
    if args.command == "e2e-child":
        print(json.dumps(measure_e2e(args.dsn, args.mode, args.workers, args.low_memory, args.out)))
        return 0
    if args.command == "jsonl":
        g = Generator(args.students, args.schools)
        with open(args.out, "w", encoding="utf-8") as handle:
            for row in g.rows():
                handle.write(json.dumps(row_to_document(row), ensure_ascii=False) + "\n")
        print(f"bench: wrote {g.count:,} events to {args.out}", file=sys.stderr)
        return 0
    if args.command == "replay-child":
        print(json.dumps(measure_replay(args.dsn, args.until, args.derive, args.out)))
        return 0
    if args.command == "rebuild-child":
        print(json.dumps(measure_rebuild(args.dsn)))
        return 0
    if args.command == "low-memory-child":
        print(json.dumps(measure_low_memory(args.dsn, args.out)))
        return 0
    print(json.dumps(measure_one_student(args.dsn, args.student)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
