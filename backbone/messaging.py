"""nameko glue: an idempotent, validating event consumer with dead-lettering, and the
database dependency that lets handlers commit effects, their tracking row and the events
they emit in one transaction.

A handler looks like::

    @event_consumer("CaptureSubmitted")
    def on_capture(self, envelope):
        self.store.handle_once("facematch", envelope, lambda conn: handlers.verify(...))

What happens to a message:
- body not JSON, or envelope/payload breaking its contract: published to ``<service>.dlq``
  with ``x-aid-reason`` and ``x-aid-detail`` headers, acked, counted in
  ``aid_dead_letters_total``; the consumer goes on.
- handler raised a transient error (database or broker unavailable): requeued after a
  back-off, counted as ``retried``.
- handler raised anything else: dead-lettered with ``handler_error`` and the exception type.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import amqp
import eventlet
import psycopg
from kombu import Exchange, Queue, binding
from kombu.common import maybe_declare
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer, QueueConsumer

from backbone import config, observability
from backbone.db import Pool
from backbone.eventstore import append_in_transaction, mark_processed, read_stream_in
from backbone.topology import dlq_name
from contracts.envelope import Actor, Envelope
from contracts.events import Event
from contracts.registry import ContractError, build_envelope, parse_envelope

log = logging.getLogger("aid.consumer")

TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, ConnectionError, OSError, amqp.exceptions.AMQPError)
OUTPUT_NAMESPACE = uuid.UUID("5d3c8f4e-8a8e-4f0a-9a57-2f7f9d3b2a10")


def output_event_id(consumer: str, cause: Envelope, index: int = 0) -> uuid.UUID:
    """Deterministic id of the ``index``-th event a consumer emits for ``cause``."""
    return uuid.uuid5(OUTPUT_NAMESPACE, f"{consumer}:{cause.event_id}:{index}")


def _dead_letter(message: Any, service: str, reason: str, detail: str) -> None:
    settings = config.load()
    headers = dict(message.headers or {})
    headers.update({"x-aid-reason": reason, "x-aid-detail": detail[:500], "x-aid-service": service,
                    "x-aid-routing-key": (message.delivery_info or {}).get("routing_key", "")})
    channel = message.channel
    props = {k: v for k, v in message.properties.items() if k in ("type", "message_id", "correlation_id")}
    channel.basic_publish(
        amqp.Message(message.body, content_type=message.content_type or "application/octet-stream",
                     delivery_mode=2, application_headers=headers, **props),
        exchange=settings.dead_letter_exchange,
        routing_key=dlq_name(service),
    )
    message.ack()
    observability.DEAD_LETTERS.labels(service=service, reason=reason).inc()
    log.warning("dead-lettered a message to %s: %s (%s)", dlq_name(service), reason, detail[:200])


class SafeQueueConsumer(QueueConsumer):
    """nameko's queue consumer, but a body that cannot be decoded goes to the DLQ."""

    def get_consumers(self, consumer_cls: Any, channel: Any) -> Any:
        consumers = super().get_consumers(consumer_cls, channel)
        for consumer in consumers:
            consumer.on_decode_error = self._on_decode_error
        return consumers

    def _on_decode_error(self, message: Any, exc: Exception) -> None:
        _dead_letter(message, self.container.service_name, "undecodable", type(exc).__name__)


class EventConsumer(Consumer):  # type: ignore[misc]
    queue_consumer = SafeQueueConsumer()

    def __init__(self, *event_types: str, **kwargs: Any) -> None:
        self.event_types = event_types
        super().__init__(queue=None, requeue_on_error=False, **kwargs)

    def setup(self) -> None:
        settings = config.load()
        service = self.container.service_name
        exchange = Exchange(settings.exchange, type="topic", durable=True)
        dlx = Exchange(settings.dead_letter_exchange, type="direct", durable=True)
        self.queue = Queue(
            f"{service}.{self.method_name}",
            bindings=[binding(exchange, routing_key=t) for t in self.event_types],
            durable=True,
            queue_arguments={"x-dead-letter-exchange": dlx.name, "x-dead-letter-routing-key": dlq_name(service)},
        )
        dlq = Queue(dlq_name(service), exchange=dlx, routing_key=dlq_name(service), durable=True)
        from kombu import Connection

        for reason in ("undecodable", "contract_violation", "handler_error"):
            observability.DEAD_LETTERS.labels(service=service, reason=reason)  # series exist from 0
        with Connection(self.container.config["AMQP_URI"]) as conn:
            channel = conn.channel()
            for entity in (exchange, dlx, dlq):
                maybe_declare(entity, channel)
        super().setup()

    def handle_message(self, body: Any, message: Any) -> None:
        service = self.container.service_name
        try:
            envelope = parse_envelope(body)
        except ContractError as exc:
            _dead_letter(message, service, "contract_violation", exc.reason)
            return
        message.aid_started = time.perf_counter()
        message.aid_type = envelope.type
        self.container.spawn_worker(
            self, (envelope,), {}, context_data={}, handle_result=lambda ctx, result=None, exc_info=None:
            self._settle(message, result, exc_info)
        )

    def _settle(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        service = self.container.service_name
        event_type = getattr(message, "aid_type", "unknown")
        observability.CONSUMER_SECONDS.labels(service=service, event_type=event_type).observe(
            time.perf_counter() - getattr(message, "aid_started", time.perf_counter())
        )
        if exc_info is None:
            self.queue_consumer.ack_message(message)
        elif isinstance(exc_info[1], TRANSIENT):
            observability.CONSUMER_HANDLED.labels(service=service, event_type=event_type, outcome="retried").inc()
            log.warning("transient failure handling %s (%s); requeued", event_type, type(exc_info[1]).__name__)
            eventlet.sleep(1.0)
            self.queue_consumer.requeue_message(message)
        else:
            observability.CONSUMER_HANDLED.labels(
                service=service, event_type=event_type, outcome="dead_lettered").inc()
            _dead_letter(message, service, "handler_error", type(exc_info[1]).__name__)
        return result, exc_info


event_consumer = EventConsumer.decorator


Effect = Callable[[psycopg.Connection[Any]], Sequence[Envelope] | None]


class EventStoreAccess:
    """What a worker gets: idempotent handling and plain appends, all through one pool."""

    def __init__(self, pool: Pool, service: str) -> None:
        self.pool = pool
        self.service = service

    def handle_once(self, consumer: str, envelope: Envelope, effect: Effect) -> bool:
        """Run ``effect`` and append what it returns, once per (consumer, event)."""
        with self.pool.transaction() as conn:
            if not mark_processed(conn, consumer, envelope):
                outcome = "duplicate"
            else:
                emitted = effect(conn) or []
                if emitted:
                    started = time.perf_counter()
                    append_in_transaction(conn, list(emitted))
                    observability.APPEND_SECONDS.observe(time.perf_counter() - started)
                outcome = "ok"
        observability.CONSUMER_HANDLED.labels(service=self.service, event_type=envelope.type, outcome=outcome).inc()
        return outcome == "ok"

    def already_handled(self, consumer: str, envelope: Envelope) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT 1 FROM processed_events WHERE consumer = %s AND event_id = %s",
                               (consumer, envelope.event_id)).fetchone()
        return row is not None

    def read_stream(self, stream: str) -> list[Envelope]:
        with self.pool.connection() as conn:
            return read_stream_in(conn, stream)

    def record(self, event: Event, stream: str, actor: Actor, expected_version: int | None = None,
               occurred_at: datetime | None = None) -> Envelope:
        """Append one event to ``stream`` as ``actor`` (from the caller's credential); the one way
        entry points write. ``expected_version`` is the stream version the decision was made on."""
        envelope = build_envelope(event, stream=stream, actor=actor, occurred_at=occurred_at or config.now())
        (stored,) = self.append([envelope], expected_version)
        return stored

    def append(self, events: Sequence[Envelope], expected_version: int | None = None) -> list[Envelope]:
        started = time.perf_counter()
        with self.pool.transaction() as conn:
            stored = append_in_transaction(conn, events, expected_version)
        observability.APPEND_SECONDS.observe(time.perf_counter() - started)
        return stored


class EventStoreProvider(DependencyProvider):  # type: ignore[misc]
    """nameko dependency: ``self.store`` in a service is an :class:`EventStoreAccess`."""

    def setup(self) -> None:
        settings = config.load()
        self.pool = Pool(settings.database_url, size=int(self.container.config.get("DB_POOL_SIZE", 4)))
        self.access = EventStoreAccess(self.pool, self.container.service_name)

    def stop(self) -> None:
        self.pool.close()

    def get_dependency(self, worker_ctx: Any) -> EventStoreAccess:
        return self.access


class BlobStoreProvider(DependencyProvider):  # type: ignore[misc]
    """nameko dependency: ``self.blobs`` is the encrypted :class:`~backbone.blobs.BlobStore`."""

    def setup(self) -> None:
        from backbone.blobs import BlobStore

        settings = config.load()
        self.blobs = BlobStore(settings.blob_dir, settings.secret_key)

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.blobs
