"""Measure how long the eventlet hub stalls while some work runs in a green thread.

Run as ``python -m tests.hub_probe WORK`` with ``PSYCOPG_WAIT_FUNC`` set as wanted; prints
``{"max_gap": seconds}``: the longest interval between ticks of a 10 ms green ticker.
WORK is ``pg_sleep`` (a 0.5 s query through backbone.db.Pool) or ``tpool_cpu`` (0.5 s of
CPU-bound Python run through eventlet.tpool, as the face engine is).
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402


def main() -> None:
    work = sys.argv[1]
    gaps: list[float] = []
    done = False

    def ticker() -> None:
        last = time.perf_counter()
        while not done:
            eventlet.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    if work == "pg_sleep":  # imported before the ticker starts: an import is not a stall of the hub
        from backbone.db import Pool

        pool = Pool(os.environ["AID_DATABASE_URL"], size=1)
    t = eventlet.spawn(ticker)
    eventlet.sleep(0.05)
    if work == "pg_sleep":
        with pool.connection() as conn:
            conn.execute("SELECT pg_sleep(0.5)")
    elif work == "tpool_cpu":
        from eventlet import tpool

        def burn() -> int:
            end = time.perf_counter() + 0.5
            n = 0
            while time.perf_counter() < end:
                n += 1
            return n

        tpool.execute(burn)
    done = True
    t.wait()
    print(json.dumps({"max_gap": max(gaps)}))


if __name__ == "__main__":
    main()
