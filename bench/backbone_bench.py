"""Backbone benchmark: events appended to the PostgreSQL log, published by the relay (publisher
confirms) and received by a consumer over RabbitMQ.

    .venv/bin/python bench/backbone_bench.py [--events 20000] [--rate 2500] [--batch 50]

Uses a throwaway database and vhost (dropped afterwards) and a relay process started for the
run. The producer appends ``--batch`` events every ``batch/rate`` seconds (an offered load of
``--rate`` events/s; ``--rate 0`` appends as fast as it can); the consumer acks every message
and measures end-to-end latency from the append's commit to receipt. Prints events/s
delivered, p50/p95/p99 latency, and checks count in == count out (no loss, no duplicate).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import amqp  # noqa: E402

from backbone.eventstore import PostgresEventStore  # noqa: E402
from backbone.relay import _amqp_params  # noqa: E402
from contracts import Actor, build_envelope  # noqa: E402
from contracts.events import CheckClosed  # noqa: E402
from tests.support import System, throwaway_database, throwaway_vhost  # noqa: E402


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=2500, help="offered events/s; 0 = as fast as possible")
    parser.add_argument("--batch", type=int, default=50, help="events per append transaction")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    with throwaway_database("aid_bench") as db, throwaway_vhost() as vhost:
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"aid-bench-{os.getpid()}"
        tmp.mkdir(parents=True, exist_ok=True)
        system = System(db, vhost, tmp)
        conn = amqp.Connection(**_amqp_params(vhost))
        conn.connect()
        channel = conn.channel()
        channel.exchange_declare("aid.events", "topic", durable=True, auto_delete=False)
        channel.queue_declare("bench", durable=True, auto_delete=False)
        channel.queue_bind("bench", "aid.events", "#")
        channel.basic_qos(0, 2000, False)
        committed: dict[str, float] = {}
        latencies: list[float] = []
        received: set[str] = set()
        duplicates = 0

        def on_message(message: amqp.Message) -> None:
            nonlocal duplicates
            now = time.time()
            event_id = message.properties["message_id"]
            if event_id in received:
                duplicates += 1
            received.add(event_id)
            t0 = committed.get(event_id)
            if t0 is not None:
                latencies.append(now - t0)
            message.channel.basic_ack(message.delivery_tag)

        channel.basic_consume("bench", callback=on_message)
        relay = system.relay().start()
        store = PostgresEventStore(db)
        actor = Actor(kind="system", id="bench")

        def produce() -> None:
            interval = args.batch / args.rate if args.rate else 0.0
            next_at = time.perf_counter()
            for start in range(0, args.events, args.batch):
                batch = [build_envelope(CheckClosed(check_id=f"c{i}", closed_at="2026-10-21T15:00:00+08:00"),
                                        stream=f"check-{i % 997}", actor=actor)
                         for i in range(start, min(start + args.batch, args.events))]
                for e in batch:
                    committed[str(e.event_id)] = time.time()  # upper bound: reset after commit below
                store.append(batch)
                t = time.time()
                for e in batch:
                    committed[str(e.event_id)] = t
                if interval:
                    next_at += interval
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)

        started = time.perf_counter()
        producer = threading.Thread(target=produce)
        producer.start()
        deadline = time.monotonic() + 300
        while len(received) < args.events and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                conn.drain_events(timeout=1)
        elapsed = time.perf_counter() - started
        producer.join()
        relay.stop()
        conn.close()

    lat = sorted(latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    result = {
        "events": args.events, "offered_rate": args.rate, "batch": args.batch,
        "delivered": len(received), "duplicates": duplicates, "lost": args.events - len(received),
        "events_per_s": round(len(received) / elapsed, 1), "p50_ms": round(pct(0.50), 1),
        "p95_ms": round(pct(0.95), 1), "p99_ms": round(pct(0.99), 1),
        "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None, "machine": machine(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>14}: {v}")
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
