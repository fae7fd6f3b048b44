"""Projection at scale (issue 14): summaries from the counts vs a scan, batched apply vs one event per
transaction, on the eligibility benchmark's synthetic province (bench/eligibility_bench.py).

    .venv/bin/python bench/projection_scale_bench.py --students 200000 --schools 1000

Creates a throwaway database (dropped at the end unless ``--keep-db``; ``--db NAME`` reuses one),
copies the synthetic log, rebuilds the projection (the counts are filled by their triggers during the
COPY), then measures:

- the province, a city's, a county's and a school's summary of a month from ``eligibility_counts``
  (median of 20) and from a scan of the status rows (``province_summary_scan``, once);
- ``Projection.apply_events`` for per-student events (absences) one per transaction and in batches
  of 50 and 500: events per second.

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
        figures["summaries"] = summaries(dsn, generator)
        print(f"bench: summaries {figures['summaries']}", file=sys.stderr)
        figures["apply"] = apply_rates(dsn, generator)
        figures["peak_rss_mb"] = peak_rss_mb()
        figures["machine"] = machine()
        print(json.dumps(figures, indent=2, default=str))
    finally:
        if not args.keep_db and not args.db:
            drop_database(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
