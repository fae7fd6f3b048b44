"""Measure how long the eventlet hub stalls while some work runs in a green thread.

Run as ``python -m tests.hub_probe WORK`` with ``PSYCOPG_WAIT_FUNC`` set as wanted; prints
``{"max_gap": seconds}``: the longest interval between ticks of a 10 ms green ticker.
WORK is ``pg_sleep`` (a 0.5 s query through backbone.db.Pool), ``tpool_cpu`` (0.5 s of
CPU-bound Python run through eventlet.tpool, as the face engine is) or ``logwatch`` (a waiter of
backbone.logwatch sleeps while its listener waits for notifications, and is woken by an append
0.3 s later; also prints ``woken`` and ``wake_seconds``, from the append's commit to the wake).
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
    extra: dict[str, object] = {}
    if work == "logwatch":
        from backbone.logwatch import LogWatch

        watch = LogWatch(os.environ["AID_DATABASE_URL"], heartbeat=0.5)
        watch.start()
        while not watch.listening:
            eventlet.sleep(0.01)
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
    elif work == "logwatch":
        extra = wake_on_append(watch, os.environ["AID_DATABASE_URL"])
        watch.stop()
    done = True
    t.wait()
    print(json.dumps({"max_gap": max(gaps), **extra}))


def wake_on_append(watch: object, database_url: str) -> dict[str, object]:
    import uuid

    from backbone.eventstore import PostgresEventStore
    from backbone.logwatch import LogWatch
    from contracts import Actor, build_envelope
    from contracts.events import CheckClosed

    assert isinstance(watch, LogWatch)
    store = PostgresEventStore(database_url)
    stream = f"probe-{uuid.uuid4().hex[:8]}"
    appended: list[float] = []

    def append() -> None:
        store.append([build_envelope(CheckClosed(check_id="c1", closed_at="2026-10-21T15:00:00+08:00"),
                                     stream=stream, actor=Actor(kind="system", id="probe"))])
        appended.append(time.perf_counter())

    with watch.watching(stream) as waiter:
        writer = eventlet.spawn_after(0.3, append)
        woken = waiter.wait(3.0)
        at = time.perf_counter()
    writer.wait()  # the wake may come before append() has returned: then wake_seconds < 0
    return {"woken": woken, "wake_seconds": at - appended[0]}


if __name__ == "__main__":
    main()
