"""The outbox relay: publishes committed events from the log to RabbitMQ, in log order.

At-least-once, never lost: the relay keeps its checkpoint (last published position) in
PostgreSQL and moves it only after the broker confirmed every message of a batch
(publisher confirms), so a relay killed at any point republishes from its checkpoint.
Consumers are idempotent (``processed_events``), so a republished event changes nothing.

A PostgreSQL advisory lock elects one active relay per name; a second one waits as a
standby and takes over when the first dies. ``LISTEN aid_events`` wakes the relay as soon
as an append commits; a poll every ``idle_wait`` seconds covers a lost notification.

The relay's broker user may publish to ``aid.events`` and do nothing else (see
:mod:`backbone.topology`); it is the only one allowed to publish there.

Run: ``python -m backbone.relay`` (Ctrl-C or SIGTERM stops it after the current batch).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import threading
import time
import zlib
from typing import Any

import amqp
import psycopg

from backbone import config, observability
from backbone.eventstore import _COLUMNS, NOTIFY_CHANNEL, row_to_envelope
from backbone.topology import check_base

log = logging.getLogger("aid.relay")
LOCK_BASE = 727_100


class PublishFailed(RuntimeError):
    pass


def _amqp_params(url: str) -> dict[str, Any]:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    vhost = unquote(parsed.path[1:]) if parsed.path and parsed.path != "/" else "/"
    return {
        "host": f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 5672}",
        "userid": unquote(parsed.username or "guest"),
        "password": unquote(parsed.password or "guest"),
        "virtual_host": vhost,
        "heartbeat": 30,
        "connect_timeout": 5,
    }


class ConfirmingPublisher:
    """py-amqp channel in confirm mode; publishes a batch, then waits for every ack."""

    def __init__(self, url: str, exchange: str, dlx: str) -> None:
        self.conn = amqp.Connection(**_amqp_params(url))
        self.conn.connect()
        self.channel = self.conn.channel()
        check_base(self.channel, exchange, dlx)  # declared by the broker set-up; the relay may only publish
        self.exchange = exchange
        self._pending: set[int] = set()
        self._nacked = False
        self._tag = 0
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        self.channel.confirm_select()

    def _settle(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._pending = {t for t in self._pending if t > tag}
        else:
            self._pending.discard(tag)

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True
        self._settle(delivery_tag, multiple)

    def publish_batch(self, messages: list[tuple[str, bytes, dict[str, Any]]], timeout: float = 30.0) -> None:
        self._nacked = False
        for routing_key, body, props in messages:
            self.channel.basic_publish(
                amqp.Message(body, delivery_mode=2, content_type="application/json", **props),
                exchange=self.exchange,
                routing_key=routing_key,
            )
            self._tag += 1
            self._pending.add(self._tag)
        deadline = time.monotonic() + timeout
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishFailed(f"{len(self._pending)} messages unconfirmed after {timeout}s")
            try:
                self.conn.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
        if self._nacked:
            raise PublishFailed("the broker refused (nacked) a message of the batch")

    def heartbeat(self) -> None:
        self.conn.heartbeat_tick()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.conn.close()


def _try_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def encode(row: Any) -> tuple[str, bytes, dict[str, Any]]:
    envelope = row_to_envelope(row)
    body = json.dumps(envelope.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()
    props = {
        "message_id": str(envelope.event_id),
        "type": envelope.type,
        "application_headers": {"schema_version": envelope.schema_version, "position": envelope.position},
    }
    return envelope.type, body, props


class Relay:
    def __init__(self, settings: config.Settings, name: str = "main", batch_size: int = 500,
                 idle_wait: float = 1.0) -> None:
        self.settings = settings
        self.name = name
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.stopping = threading.Event()
        self.published = 0

    # ------------------------------------------------------------------ one pass
    def _checkpoint(self, conn: psycopg.Connection[Any]) -> int:
        conn.execute(
            "INSERT INTO relay_checkpoints (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING",
            (self.name,),
        )
        row = conn.execute("SELECT position FROM relay_checkpoints WHERE name = %s", (self.name,)).fetchone()
        assert row is not None
        return int(row[0])

    def pump(self, conn: psycopg.Connection[Any], publisher: ConfirmingPublisher) -> int:
        """Publish one batch after the checkpoint; return how many events went out."""
        position = self._checkpoint(conn)
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s",
            (position, self.batch_size),
        ).fetchall()
        head = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
        head_position = int(head[0]) if head else 0
        observability.HEAD_POSITION.set(head_position)
        if not rows:
            observability.RELAY_LAG.set(max(0, head_position - position))
            return 0
        started = time.perf_counter()
        publisher.publish_batch([encode(r) for r in rows])
        observability.RELAY_PUBLISH_SECONDS.observe(time.perf_counter() - started)
        last = int(rows[-1][0])
        conn.execute(
            "UPDATE relay_checkpoints SET position = %s, updated_at = now() WHERE name = %s",
            (last, self.name),
        )
        observability.RELAY_PUBLISHED.inc(len(rows))
        observability.RELAY_LAG.set(max(0, head_position - last))
        self.published += len(rows)
        return len(rows)

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                self._run_connected()
                backoff = 0.5
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                observability.RELAY_ERRORS.labels(kind="database").inc()
                log.warning("database unavailable (%s); retrying in %.1fs", type(exc).__name__, backoff)
            except (OSError, amqp.exceptions.AMQPError, PublishFailed) as exc:
                observability.RELAY_ERRORS.labels(kind="broker").inc()
                log.warning("broker unavailable or refused (%s: %s); retrying in %.1fs",
                            type(exc).__name__, exc, backoff)
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _run_connected(self) -> None:
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
            lock_key = LOCK_BASE + zlib.crc32(self.name.encode()) % 1000
            while not _try_lock(conn, lock_key):
                log.info("another relay %r is active; standing by", self.name)
                if self.stopping.wait(2.0):
                    return
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            publisher = ConfirmingPublisher(self.settings.amqp_url, self.settings.exchange,
                                            self.settings.dead_letter_exchange)
            log.info("relay %r active: publishing to exchange %r", self.name, self.settings.exchange)
            try:
                while not self.stopping.is_set():
                    if self.pump(conn, publisher) == self.batch_size:
                        continue
                    publisher.heartbeat()
                    # wait for a commit notification, at most idle_wait seconds
                    for _ in conn.notifies(timeout=self.idle_wait, stop_after=1):
                        pass
            finally:
                publisher.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backbone.relay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="main", help="relay name (its checkpoint and leader lock)")
    parser.add_argument("--batch-size", type=int, default=int(os.environ.get("AID_RELAY_BATCH", "500")))
    parser.add_argument("--no-metrics", action="store_true", help="do not serve /metrics and /health")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = config.load()
    relay = Relay(settings, name=args.name, batch_size=args.batch_size)

    def stop(signum: int, frame: Any) -> None:
        relay.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not args.no_metrics:
        metrics_port, _ = config.ports("relay")
        from backbone.health import health_checks

        observability.serve_metrics("relay", metrics_port, lambda: health_checks(settings))
        log.info("metrics and health on :%d", metrics_port)
    relay.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
