"""Hardship benchmark: the registry comparison query against large lists, and the public
notice and archive files of a large school.

    .venv/bin/python bench/hardship_bench.py [--hashes 50000] [--lists 8] [--lookups 200] [--rows 2000]

Uses a throwaway database (migrated, dropped afterwards). Records ``--lists`` registry imports
of ``--hashes`` keyed hashes each (HardshipRegistryImported and its projection, as POST
/registries writes them),
then times ``--lookups`` comparisons (services/hardship/registry.py, half of them hits) and prints
p50/p95/max. Then times a notice PDF and XLSX and the questionnaire scoring in-process.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import get_args

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from contracts.envelope import Actor  # noqa: E402
from contracts.events import HardshipRegistryImported  # noqa: E402
from contracts.registry import build_envelope  # noqa: E402
from services.hardship import exports, registry  # noqa: E402
from services.hardship.commands import Questionnaire, RegistryName  # noqa: E402
from services.hardship.domain.policy import load  # noqa: E402
from services.hardship.domain.scoring import score  # noqa: E402
from tests.support import throwaway_database  # noqa: E402

LISTS: tuple[str, ...] = get_args(RegistryName)


def fake_hash(i: int) -> str:
    return hashlib.sha256(f"bench-{i}".encode()).hexdigest()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hashes", type=int, default=50_000)
    parser.add_argument("--lists", type=int, default=8)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    actor = Actor(kind="authority", id="province:bench")
    with throwaway_database("aid_bench") as url, psycopg.connect(url) as conn:
        started = time.perf_counter()
        for n in range(args.lists):
            event = HardshipRegistryImported(
                import_id=str(uuid.uuid4()),
                registry=LISTS[n % len(LISTS)],
                system="province" if n < len(LISTS) else "national",
                school_year="2026-2027",
                id_number_hashes=sorted(fake_hash(n * args.hashes + i) for i in range(args.hashes)),
            )
            registry.record_import(
                conn, build_envelope(event, stream="hardship-registry-2026-2027", actor=actor)
            )
            conn.commit()
        print(f"import: {args.lists} lists x {args.hashes} hashes in {time.perf_counter() - started:.1f} s")
        timings, hits = [], 0
        for k in range(args.lookups):
            wanted = fake_hash(k * 7 % (args.lists * args.hashes)) if k % 2 == 0 else fake_hash(-k - 1)
            t0 = time.perf_counter()
            found = registry.lookup(conn, "2026-2027", wanted, None)
            timings.append((time.perf_counter() - t0) * 1000)
            hits += any(who for _, who in found.values())
        print(
            f"comparison lookup ({args.lookups}, {hits} hits): p50 {statistics.median(timings):.1f} ms,"
            f" p95 {pct(timings, 0.95):.1f} ms, max {max(timings):.1f} ms"
        )
    rows = [[str(i + 1), "张*", f"会计{i % 30}班", "特别困难" if i % 3 else "困难"] for i in range(args.rows)]
    lines = exports.notice_lines("测试学校", "2026-2027", "2026-10-08", "2026-10-12")
    t0 = time.perf_counter()
    pdf = exports.notice_pdf("公示", lines, rows)
    t1 = time.perf_counter()
    xlsx = exports.xlsx("公示", lines, exports.NOTICE_HEADER, rows)
    t2 = time.perf_counter()
    print(
        f"notice of {args.rows} rows: PDF {t1 - t0:.2f} s ({len(pdf) // 1024} KiB),"
        f" XLSX {t2 - t1:.2f} s ({len(xlsx) // 1024} KiB)"
    )
    policy = load()[0]
    q = Questionnaire(
        local_minimum_living_yuan_per_year=8000,
        family_members=4,
        yearly_income_yuan=30000,
        housing="rent",
        student_monthly_spending_yuan=500,
        reference_monthly_spending_yuan=800,
    )
    t0 = time.perf_counter()
    for _ in range(10_000):
        score(q, policy)
    print(f"questionnaire scoring: {(time.perf_counter() - t0) / 10_000 * 1e6:.0f} us each")


if __name__ == "__main__":
    main()
