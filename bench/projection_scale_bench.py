"""Projection at scale (issue 14): summaries from the counts vs a scan, batched apply vs one event per
transaction, on the eligibility benchmark's synthetic province (bench/eligibility_bench.py).

    .venv/bin/python bench/projection_scale_bench.py --students 200000 --schools 1000

Creates a throwaway database (dropped at the end unless ``--keep-db``; ``--db NAME`` reuses one),
copies the synthetic log, rebuilds the projection (the counts are filled by their triggers during the
COPY), then measures:

- the province, a city's, a county's and a school's summary of a month from ``eligibility_counts``
  (median of 20) and from a scan of the status rows (``province_summary_scan``, once);
- ``Projection.apply_events`` for per-student events (absences) one per transaction and in batches
  of 50 and 500: events per second;
- parallel writers (the partitioned locks): per-student batches of 500 (``--events``) and, after a
  province-wide CheckOpened, backlog steps of 250 (``--rederive`` students) with 1 and with 2 writer
  processes at once: units per second (wall) and the writers' CPU ms per unit.

``--name NAME --keep-db --build-only`` builds a projection to keep; ``--db NAME --skip-single`` then measures
only the parallel writers on it:

    .venv/bin/python bench/projection_scale_bench.py --students 200000 --schools 1000 \
        --name elig_200k --keep-db --build-only
    .venv/bin/python bench/projection_scale_bench.py --db elig_200k --students 200000 --schools 1000 \
        --skip-single --events 6000 --rederive 6000

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from eligibility_bench import (  # noqa: E402
    CHECK_DAYS,
    Generator,
    copy_log,
    create_database,
    drop_database,
    machine,
    measure_rebuild,
    peak_rss_mb,
    reuse_database,
)


def _median_ms(fn: Any, runs: int = 20) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return 1000 * statistics.median(timings)


def summaries(dsn: str, generator: Generator) -> dict[str, Any]:
    import psycopg

    from services.eligibility.projection import queries

    with psycopg.connect(dsn) as conn:
        school = generator.school(3)
        row = conn.execute("SELECT county, city FROM eligibility_status WHERE school_id = %s LIMIT 1",
                           (school,)).fetchone()
        county, city = row
        out: dict[str, Any] = {
            "status_rows": conn.execute("SELECT count(*) FROM eligibility_status").fetchone()[0],
            "count_rows": conn.execute("SELECT count(*) FROM eligibility_counts").fetchone()[0],
        }
        for name, scope in (("province", {}), ("city", {"city": city}), ("county", {"county": county}),
                            ("school", {"school_id": school})):
            out[f"{name}_counts_ms"] = _median_ms(
                lambda s=scope: queries.province_summary(conn, "2026-11", **s))
        started = time.perf_counter()
        scanned = queries.province_summary_scan(conn, "2026-11")
        out["province_scan_ms"] = 1000 * (time.perf_counter() - started)
        counted = queries.province_summary(conn, "2026-11")
        out["same_answer"] = scanned == counted
        out["summary"] = counted
    return out


def apply_rates(dsn: str, generator: Generator) -> dict[str, Any]:
    import psycopg

    from contracts.envelope import Actor
    from contracts.events import AbsenceMarked
    from contracts.registry import build_envelope
    from services.eligibility.projection.writer import Projection

    actor = Actor(kind="system", id="bench")
    rng = random.Random(11)
    day = CHECK_DAYS[3]
    check_id = f"R-{day.isoformat()}"

    def absence() -> Any:
        i = rng.randrange(generator.n)
        return build_envelope(AbsenceMarked(check_id=check_id, student_id=generator.sid(i),
                                            school_id=generator.school(i), reason="leave",
                                            reported_at=Generator._at(day, 10, 30).isoformat()),
                              stream=f"absence-{i}", actor=actor, occurred_at=Generator._at(day, 10, 31))

    live = Projection()
    out: dict[str, Any] = {}
    with psycopg.connect(dsn) as conn:
        live.apply_events(conn, [absence()])  # loads the shared facts
        for size, total in ((1, 300), (50, 2000), (500, 5000)):
            events = [absence() for _ in range(total)]
            started = time.perf_counter()
            for i in range(0, total, size):
                live.apply_events(conn, events[i:i + size])
            elapsed = time.perf_counter() - started
            out[f"batch_{size}_events_per_s"] = total / elapsed
            out[f"batch_{size}_ms_per_batch"] = 1000 * elapsed / (total / size)
    return out


def _absences(generator: Generator, seed: int, count: int) -> list[Any]:
    from contracts.envelope import Actor
    from contracts.events import AbsenceMarked
    from contracts.registry import build_envelope

    actor = Actor(kind="system", id="bench")
    rng = random.Random(seed)
    day = CHECK_DAYS[3]
    out = []
    for _ in range(count):
        i = rng.randrange(generator.n)
        out.append(build_envelope(AbsenceMarked(check_id=f"R-{day.isoformat()}", student_id=generator.sid(i),
                                                school_id=generator.school(i), reason="leave",
                                                reported_at=Generator._at(day, 10, 30).isoformat()),
                                  stream=f"absence-{i}", actor=actor, occurred_at=Generator._at(day, 10, 31)))
    return out


def _writer(dsn: str, generator: Generator, kind: str, seed: int, amount: int, size: int,
            ready: Any, go: Any, results: Any) -> None:
    """One writer process: per-student batches (``kind`` "apply": ``amount`` events in batches of ``size``)
    or backlog steps (``kind`` "rederive": until ``amount`` students, steps of ``size``)."""
    import psycopg

    from services.eligibility.projection.writer import Projection

    live = Projection(defer_everyone=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        live.apply_events(conn, _absences(generator, seed + 1000, 1))  # loads the shared facts
        work = _absences(generator, seed, amount) if kind == "apply" else []
        ready.put(seed)
        go.wait()
        cpu, wall, done = time.process_time(), time.perf_counter(), 0
        if kind == "apply":
            for i in range(0, amount, size):
                live.apply_events(conn, work[i:i + size])
            done = amount
        else:
            while done < amount:
                n = live.rederive_step(conn, size)
                if n <= 0:
                    break
                done += n
        results.put((done, time.perf_counter() - wall, time.process_time() - cpu))


def parallel_rates(dsn: str, generator: Generator, *, events: int, students: int) -> dict[str, Any]:
    """Per-student batches of 500 and backlog steps of 250 with 1 and 2 writer processes at once (each its
    own Projection and connection, as two service instances): units per second (wall, all writers
    together) and the writers' CPU ms per unit (their process time, PostgreSQL's not included)."""
    import multiprocessing
    import os

    import psycopg

    from contracts.envelope import Actor
    from contracts.events import CheckOpened
    from contracts.registry import build_envelope
    from services.eligibility.projection.writer import Projection

    ctx = multiprocessing.get_context("fork")
    out: dict[str, Any] = {}

    def run(kind: str, writers: int, amount: int, size: int) -> dict[str, float]:
        ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        procs = [ctx.Process(target=_writer, args=(dsn, generator, kind, 100 * w + len(out),
                                                   amount // writers, size, ready, go, results))
                 for w in range(writers)]
        for proc in procs:
            proc.start()
        for _ in procs:
            ready.get()
        load = os.getloadavg()[0]
        started = time.perf_counter()
        go.set()
        got = [results.get() for _ in procs]
        wall = time.perf_counter() - started
        for proc in procs:
            proc.join()
        done = sum(g[0] for g in got)
        return {"units": done, "wall_s": round(wall, 2), "per_s": round(done / wall, 1),
                "cpu_ms_per_unit": round(1000 * sum(g[2] for g in got) / max(done, 1), 3),
                "load_1min_before": round(load, 2)}

    for writers in (1, 2):
        out[f"apply_500_writers_{writers}"] = run("apply", writers, events, 500)
        print(f"bench: apply, {writers} writer(s): {out[f'apply_500_writers_{writers}']}", file=sys.stderr)
    actor = Actor(kind="system", id="bench")
    day = CHECK_DAYS[-1]
    with psycopg.connect(dsn, autocommit=True) as conn:
        opened = build_envelope(CheckOpened(
            check_id=f"R-bench-{time.time_ns()}", kind="routine", semester="2026-autumn", month="2026-12",
            opens_at=Generator._at(day, 10).isoformat(), closes_at=Generator._at(day, 15).isoformat(),
            initiated_by="province"), stream="check-bench", actor=actor, occurred_at=Generator._at(day, 8))
        started = time.perf_counter()
        Projection(defer_everyone=True).apply_events(conn, [opened])  # a province-wide check: a backlog
        out["province_wide_check_batch_ms"] = round(1000 * (time.perf_counter() - started), 1)
    for writers in (1, 2):
        out[f"rederive_250_writers_{writers}"] = run("rederive", writers, students, 250)
        print(f"bench: rederive, {writers} writer(s): {out[f'rederive_250_writers_{writers}']}",
              file=sys.stderr)
    return out


def _create_database(name: str | None) -> tuple[str, str]:
    if name is None:
        return create_database()
    import psycopg
    from eligibility_bench import ADMIN_DSN
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, make_conninfo(ADMIN_DSN, dbname=name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=200_000)
    parser.add_argument("--schools", type=int, default=1000)
    parser.add_argument("--db", help="reuse this database (left by --keep-db with the same sizes)")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--name", help="name of the database to create (default: a random one)")
    parser.add_argument("--build-only", action="store_true", help="build the projection, measure nothing")
    parser.add_argument("--events", type=int, default=10_000,
                        help="per-student events applied by the 1 and by the 2 writers")
    parser.add_argument("--rederive", type=int, default=10_000,
                        help="students re-derived from the backlog by the 1 and by the 2 writers")
    parser.add_argument("--skip-single", action="store_true",
                        help="skip the one-event and batch-of-50 rates (and the summaries)")
    args = parser.parse_args(argv)
    name, dsn = (args.db, "") if args.db else _create_database(args.name)
    print(f"bench: database {name}", file=sys.stderr)
    try:
        from backbone.migrate import migrate

        generator = Generator(args.students, args.schools)
        figures: dict[str, Any] = {"students": args.students, "schools": args.schools}
        if args.db:
            dsn, figures["events"] = reuse_database(args.db)
            migrate(dsn, out=sys.stderr)
        else:
            migrate(dsn, out=sys.stderr)
            figures["events"], figures["copy_s"] = copy_log(dsn, generator)
            print(f"bench: {figures['events']:,} events copied", file=sys.stderr)
            figures["rebuild"] = measure_rebuild(dsn)
            print(f"bench: rebuilt {figures['rebuild']}", file=sys.stderr)
        if args.build_only:
            print(json.dumps(figures, indent=2, default=str))
            return 0
        if not args.skip_single:
            figures["summaries"] = summaries(dsn, generator)
            print(f"bench: summaries {figures['summaries']}", file=sys.stderr)
        if not args.skip_single:
            figures["apply"] = apply_rates(dsn, generator)
        figures["parallel"] = parallel_rates(dsn, generator, events=args.events, students=args.rederive)
        figures["peak_rss_mb"] = peak_rss_mb()
        figures["machine"] = machine()
        print(json.dumps(figures, indent=2, default=str))
    finally:
        if not args.keep_db and not args.db:
            drop_database(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
