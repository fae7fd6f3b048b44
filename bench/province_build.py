"""A synthetic province in a kept database, for the check-day simulation (``bench/checkday_sim.py``).

    nice -n 10 .venv/bin/python bench/province_build.py --db aid_checkday_1m_h3 \
        --students 1000000 --schools 5000

Creates the database (it must not exist), applies the migrations (``aid migrate``) and builds, each
step in a child process (so its time, CPU and peak memory are its own, printed as it ends):

1. ``log``: the eligibility benchmark's synthetic log (``eligibility_bench.Generator``: one autumn
   semester, 6 province-wide checks, ...) COPYed into ``events``. The event log's secondary indexes
   and unique constraints are dropped first and re-created after the COPY (their exact
   definitions, read from the catalogue): building an index once, sorted, is several times faster
   than keeping it up to date row by row. Progress every million events.
2. ``projection``: the live projection built in flat memory by 2 worker processes
   (:func:`rebuild_low_memory`: the facts about many students first; then each worker reads the
   events of its share of the students ordered by student, folds, derives, writes by COPY in chunks
   and forgets each student), the same tables ``projection.writer.rebuild`` writes (a test compares
   them). The summary counts are filled once at the end (their trigger is off during the COPYs);
   each status row also gets its ``contrib``, as the live writer stores it, so the day's first
   re-derivation of a student costs what it costs in a running system. Memory per process: the
   shared facts and one chunk of students, whatever the size of the province. Progress every
   100,000 students per worker.

The figures and the province's size are kept in the database (table ``bench_province``), so the
simulation reuses it with ``--db`` alone; ``checkday_sim.py --db NAME --students N`` builds it there
first when it does not exist. Drop it by hand when done (``DROP DATABASE NAME WITH (FORCE)``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from eligibility_bench import ADMIN_DSN, Row  # noqa: E402
from eligibility_bench import Generator as _Generator  # noqa: E402


class Generator(_Generator):
    """The eligibility benchmark's generator, beyond 295,000 students: its roster parts are
    stamped one a minute from 09:00, and part 60 would be minute 60; here it is 10:00. The same
    log for smaller provinces (the same rows; the payload's JSON text written by orjson, the same
    jsonb), made about a third faster: orjson, and the event ids formatted without ``uuid.UUID``."""

    @staticmethod
    def _at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
        return _Generator._at(day, hour + minute // 60, minute % 60, second)

    def _row(self, event_type: str, version: int, stream: str, when: datetime,
             payload: dict[str, Any]) -> Row:
        v = self.versions.get(stream, 0) + 1
        self.versions[stream] = v
        self.count += 1
        # uuid.UUID(int=bits, version=4), as text
        bits = (self.rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET
        h = f"{bits:032x}"
        eid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        recorded = when + _SECONDS[self.count % 7]
        return (eid, stream, v, event_type, version, when, recorded, _ACTOR, eid, None,
                _dumps(payload).decode())


_UUID_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_SET = (0x8000 << 48) | (4 << 76)
_SECONDS = [timedelta(seconds=1 + k) for k in range(7)]
_ACTOR = '{"kind": "system", "id": "bench", "school": null}'
_dumps = orjson.dumps

PROGRESS_EVENTS = 1_000_000
PROGRESS_STUDENTS = 100_000
CHUNK = 5_000  # students per COPY of the low-memory rebuild
WORKERS = 2  # processes of the projection build
#: the summary counts of every status row (as ``migrations/0102_eligibility_counts.sql`` fills them)
COUNTS = """
INSERT INTO eligibility_counts (semester, month, school_id, county, city, metric, n)
SELECT r.semester, x.month, coalesce(r.school_id, ''), coalesce(r.county, ''), coalesce(r.city, ''), x.metric,
       sum(x.v)
  FROM eligibility_status r, eligibility_row_contrib(r.status, r.contrib) x
 GROUP BY 1, 2, 3, 4, 5, 6
"""


def log(message: str) -> None:
    print(f"province: {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def dsn_of(name: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(ADMIN_DSN, dbname=name)


def exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def create(name: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return dsn_of(name)


# --------------------------------------------------------------------------- bench_province


def record(dsn: str, key: str, value: Any) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_province (key text PRIMARY KEY, value jsonb NOT NULL)")
        conn.execute("INSERT INTO bench_province (key, value) VALUES (%s, %s)"
                     " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, Jsonb(value)))


def recorded(dsn: str) -> dict[str, Any]:
    """What :func:`record` kept ({} for a database this module did not build)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('bench_province')").fetchone()[0] is None:
            return {}
        return {key: value for key, value in conn.execute("SELECT key, value FROM bench_province")}


# --------------------------------------------------------------------------- step 1: the log


def copy_log(dsn: str, students: int, schools: int, rows: Iterator[Row] | None = None) -> dict[str, Any]:
    """COPY the synthetic log into ``events``, its secondary indexes dropped and re-created after."""
    import psycopg

    started, cpu = time.perf_counter(), time.process_time()
    generator = Generator(students, schools)
    with psycopg.connect(dsn) as conn:
        indexes = [(name, definition) for name, definition in conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public'"
            " AND i.tablename = 'events' AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
            " WHERE c.conname = i.indexname)")]
        uniques = [(name, definition) for name, definition in conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'events'::regclass AND contype = 'u'")]
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for name, _ in uniques:
            conn.execute(f'ALTER TABLE events DROP CONSTRAINT "{name}"')
        with conn.cursor() as cur, cur.copy(
                "COPY events (event_id, stream, stream_version, type, schema_version, occurred_at,"
                " recorded_at, actor, correlation_id, causation_id, payload) FROM STDIN") as copy:
            for n, row in enumerate(rows if rows is not None else generator.rows(), start=1):
                copy.write_row(row)
                if n % PROGRESS_EVENTS == 0:
                    log(f"log: {n:,} events in {time.perf_counter() - started:.0f} s")
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        copied_s = time.perf_counter() - started
        log(f"log: {events:,} events copied in {copied_s:.0f} s; re-creating {len(uniques)} unique"
            f" constraints and {len(indexes)} indexes")
        conn.execute("SET maintenance_work_mem = '512MB'")
        for name, definition in uniques:
            conn.execute(f'ALTER TABLE events ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            conn.execute(definition)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE events")
    return {"events": int(events), "copy_s": round(copied_s, 1),
            "indexes_s": round(time.perf_counter() - started - copied_s, 1),
            "wall_s": round(time.perf_counter() - started, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


# --------------------------------------------------------------------------- step 2: the projection


def rebuild_low_memory(conn: Any, dsn: str, chunk: int = CHUNK, workers: int = 1) -> dict[str, Any]:
    """``projection.writer.rebuild`` in flat memory, in ``workers`` processes: the same tables from
    the log in ``dsn``.

    This process folds the facts about many students (checks, closings, publications, rosters) and
    writes them, the roster entries and the meta rows. Each worker (:func:`project_partition`, a
    child process) takes the students of one partition (``logsource.partition_of``), reads their
    events ordered by student (``logsource.fast_events``: COPY, the database sorts), folds one student
    at a time and COPYs their facts and statuses every ``chunk`` students, in its own transaction.
    The summary counts are filled once at the end (their trigger is off meanwhile). Not one
    transaction, unlike ``rebuild``: for a database nothing else uses yet. Returns the figures
    (``status_rows``, and each worker's time, CPU and peak memory).
    """
    from psycopg.types.json import Jsonb

    from services.eligibility.domain import facts as domain_facts
    from services.eligibility.logsource import fast_events
    from services.eligibility.projection import writer

    top = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
    conn.commit()  # the transactions below are real ones, committed before the workers start
    ledger = domain_facts.Ledger()
    for event_type, event_id, ts, payload, _ in fast_events(dsn, types=domain_facts.shared_types(),
                                                              until_position=top):
        ledger.apply_fields(event_type, event_id, ts, payload)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (writer.LOCK_KEY,))
        conn.execute("TRUNCATE eligibility_facts, eligibility_shared, eligibility_roster_entries,"
                     " eligibility_status, eligibility_counts")
        conn.execute("DELETE FROM eligibility_meta WHERE key = ANY(%s)", (writer._BACKLOG_KEYS,))
        conn.execute("DELETE FROM eligibility_backlog")
        with conn.cursor() as cur:
            shared = domain_facts.shared_rows(ledger.shared)
            cur.executemany("INSERT INTO eligibility_shared (kind, key, fact) VALUES (%s, %s, %s)",
                            [(kind, key, Jsonb(fact)) for kind, key, fact in shared])
            writer._copy_roster_entries(cur, domain_facts.SHARED_KINDS["roster_part"].items(ledger.shared))
        # the summary counts once at the end (as their migration does), not per COPY
        conn.execute("ALTER TABLE eligibility_status DISABLE TRIGGER eligibility_counts_ins")
    try:
        procs = [subprocess.Popen([sys.executable, __file__, "projection-worker", "--dsn", dsn,
                                   "--part", str(k), "--parts", str(workers), "--top", str(top),
                                   "--chunk", str(chunk)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
                 for k in range(workers)]
        outputs = [proc.communicate()[0] for proc in procs]
        if any(proc.returncode for proc in procs):
            raise RuntimeError(f"a projection worker failed: exits {[proc.returncode for proc in procs]}")
        parts = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
        log("projection: the summary counts")
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (writer.LOCK_KEY,))
            conn.execute(COUNTS)
            conn.execute(writer._UPSERT_META, ("shared_token", uuid.uuid4().hex))
            conn.execute(writer._UPSERT_META, ("rebuilt_through", str(top)))
    finally:
        conn.execute("ALTER TABLE eligibility_status ENABLE TRIGGER eligibility_counts_ins")
        conn.commit()
    return {"status_rows": sum(p["status_rows"] for p in parts), "workers": parts}


def project_partition(dsn: str, part: int, parts: int, top: int, chunk: int = CHUNK) -> dict[str, Any]:
    """One worker of :func:`rebuild_low_memory`: the facts and statuses of partition ``part``."""
    import psycopg

    from services.eligibility.domain import facts as domain_facts
    from services.eligibility.domain.rules import derive
    from services.eligibility.logsource import fast_events, gc_tuned, partition_of
    from services.eligibility.policyfile import load_policy_book
    from services.eligibility.projection import writer

    started, cpu = time.perf_counter(), time.process_time()
    book = load_policy_book()
    ledger = domain_facts.Ledger()
    apply = ledger.apply_fields
    for event_type, event_id, ts, payload, _ in fast_events(dsn, types=domain_facts.shared_types(),
                                                              until_position=top):
        apply(event_type, event_id, ts, payload)
    roster_only = sorted(sid for sid in ledger.student_ids() if partition_of(sid, parts) == part)
    facts_rows: list[tuple[Any, ...]] = []
    status_rows: list[tuple[Any, ...]] = []
    count = done = 0
    name = f"projection {part + 1}/{parts}"

    with psycopg.connect(dsn) as conn:

        def flush() -> None:
            with conn.cursor() as cur:
                if facts_rows:
                    with cur.copy("COPY eligibility_facts (student_id, school_id, facts, last_position)"
                                  " FROM STDIN") as copy:
                        for row in facts_rows:
                            copy.write_row(row)
                if status_rows:
                    with cur.copy(f"COPY eligibility_status ({writer._STATUS_COLUMNS}, contrib)"
                                  " FROM STDIN") as copy:
                        for row in status_rows:
                            copy.write_row(row)
            facts_rows.clear()
            status_rows.clear()

        def student_done(student_id: str) -> None:
            nonlocal count, done
            facts = ledger.students.pop(student_id, None)
            if facts is not None:
                school = facts.registration.school_id if facts.registration else None
                facts_rows.append((student_id, school, json.dumps(facts.to_json(), ensure_ascii=False), top))
            for status in derive(student_id, facts, ledger.shared, book):
                status_rows.append((*writer._status_columns(status), json.dumps(status, ensure_ascii=False),
                                    top, writer.contrib(status)))
                count += 1
            done += 1
            if len(facts_rows) >= chunk or len(status_rows) >= chunk:
                flush()
            if done % PROGRESS_STUDENTS == 0:
                log(f"{name}: {done:,} students in {time.perf_counter() - started:.0f} s,"
                    f" peak RSS {peak_rss_mb():,.0f} MB")

        pending = 0  # index into roster_only
        current: str | None = None
        with gc_tuned():
            for event_type, event_id, ts, payload, _ in fast_events(
                    dsn, types=domain_facts.student_types(), by_student=True, until_position=top,
                    partition=(part, parts) if parts > 1 else None):
                student_id = payload["student_id"]
                if student_id != current:
                    if current is not None:
                        student_done(current)
                    while pending < len(roster_only) and roster_only[pending] < student_id:
                        student_done(roster_only[pending])
                        pending += 1
                    if pending < len(roster_only) and roster_only[pending] == student_id:
                        pending += 1
                    current = student_id
                apply(event_type, event_id, ts, payload)
            if current is not None:
                student_done(current)
            for student_id in roster_only[pending:]:
                student_done(student_id)
        flush()
        conn.commit()
    return {"part": part, "students": done, "status_rows": count,
            "wall_s": round(time.perf_counter() - started, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def build_projection(dsn: str, workers: int = WORKERS) -> dict[str, Any]:
    import psycopg

    started, cpu = time.perf_counter(), time.process_time()
    with psycopg.connect(dsn) as conn:
        figures = rebuild_low_memory(conn, dsn, workers=workers)
        conn.autocommit = True
        conn.execute("ANALYZE")
    return {**figures, "wall_s": round(time.perf_counter() - started, 1),
            "cpu_s_main": round(time.process_time() - cpu, 1), "peak_rss_mb_main": round(peak_rss_mb(), 1)}


# --------------------------------------------------------------------------- the build


def child(args: list[str]) -> dict[str, Any]:
    """One step in a fresh interpreter (its own peak memory); it prints one JSON line."""
    done = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"province build step {args[0]} failed (exit {done.returncode})")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def build(name: str, students: int, schools: int) -> dict[str, Any]:
    """Create database ``name`` and build the province in it; returns the build's figures."""
    from backbone.migrate import migrate

    dsn = create(name)
    log(f"database {name}: {students:,} students in {schools:,} schools")
    with open(os.devnull, "w") as devnull:
        migrate(dsn, out=devnull)
    record(dsn, "province", {"students": students, "schools": schools, "complete": False})
    figures: dict[str, Any] = {"students": students, "schools": schools, "load_avg_start": os.getloadavg()[0]}
    figures["log"] = child(["log-child", "--dsn", dsn, "--students", str(students),
                            "--schools", str(schools)])
    log(f"log: {figures['log']}")
    figures["projection"] = child(["projection-child", "--dsn", dsn])
    log(f"projection: {figures['projection']}")
    figures["load_avg_end"] = os.getloadavg()[0]
    record(dsn, "build", figures)
    record(dsn, "province", {"students": students, "schools": schools, "complete": True})
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command")
    for name in ("log-child", "projection-child", "projection-worker"):
        step = sub.add_parser(name)
        step.add_argument("--dsn", required=True)
        step.add_argument("--students", type=int, default=0)
        step.add_argument("--schools", type=int, default=0)
        step.add_argument("--workers", type=int, default=WORKERS)
        step.add_argument("--part", type=int, default=0)
        step.add_argument("--parts", type=int, default=1)
        step.add_argument("--top", type=int, default=0)
        step.add_argument("--chunk", type=int, default=CHUNK)
    parser.add_argument("--db", help="the database to create and keep")
    parser.add_argument("--students", type=int, default=1_000_000)
    parser.add_argument("--schools", type=int, default=5_000)
    args = parser.parse_args(argv)
    if args.command == "log-child":
        print(json.dumps(copy_log(args.dsn, args.students, args.schools)))
        return 0
    if args.command == "projection-child":
        print(json.dumps(build_projection(args.dsn, args.workers)))
        return 0
    if args.command == "projection-worker":
        print(json.dumps(project_partition(args.dsn, args.part, args.parts, args.top, args.chunk)))
        return 0
    if not args.db:
        parser.error("--db is required")
    if exists(args.db):
        parser.error(f"database {args.db} exists: drop it first, or pass it to checkday_sim.py --db")
    print(json.dumps(build(args.db, args.students, args.schools), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
