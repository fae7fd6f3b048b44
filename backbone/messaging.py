"""nameko glue: an idempotent, validating event consumer that only accepts what is in the log,
with bounded retries and dead-lettering, and the database dependency that lets handlers commit
effects, their tracking row and the events they emit in one transaction.

A handler looks like::

    @event_consumer("CaptureSubmitted")
    def on_capture(self, envelope):
        self.store.handle_once("facematch", envelope, lambda conn: handlers.verify(...))

What happens to a message (dead letters go to ``<service>.dlq`` with ``x-aid-reason`` and
``x-aid-detail`` headers, are acked, and are counted in ``aid_dead_letters_total{reason}``):

- body not JSON: ``undecodable``; envelope or payload breaking its contract: ``contract_violation``.
- its ``event_id`` is not in the event log: ``not_in_log`` (a forged message: only the relay
  publishes, from the log). Otherwise the handler gets the LOGGED event (one lookup on the unique
  index of ``events.event_id``), never the message body; a body that differs from the log is
  logged and counted (``aid_consumer_body_mismatch_total``) and changes nothing.
- the handler raised a database error caused by the data (``psycopg.DataError``: string too
  long, invalid characters...; ``IntegrityError`` other than the tracking row; ``ProgrammingError``;
  program limits such as an index row too large): ``data_error``, at once: retrying cannot help.
- the handler raised a transient error (database or broker unavailable, a timeout): requeued
  after a growing back-off, counted as ``retried``. After ``max_attempts`` failures of the same
  event (default 5; ``@event_consumer(..., max_attempts=N)`` or the container config
  ``AID_CONSUMER_MAX_ATTEMPTS``): ``retries_exhausted``, with the last error type. A failure while
  the database is unreachable is an outage, not the message's fault, and is not counted.
- the handler raised anything else (a bug): ``handler_error`` and the exception type.

Attempts are counted per ``event_id`` in the consumer process (classic queues have no delivery
count); while a message keeps failing, ``/health`` reports the consumer as stuck
(:mod:`backbone.health`). Log lines name event ids, types and error types, never payload values.
"""

from __future__ import annotations

import collections
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import amqp
import eventlet
import psycopg
from kombu import Connection, Exchange, Queue, binding
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.messaging import Consumer, QueueConsumer
from prometheus_client import Counter

from backbone import config, health, observability
from backbone.db import Pool
from backbone.eventstore import (
    append_in_transaction,
    mark_processed,
    read_checks_of_month_in,
    read_event,
    read_filings_in,
    read_stream_in,
    read_types_in,
    read_unclosed_filings_in,
    read_verdicts_in,
)
from backbone.topology import check_base, check_dlq, dlq_name, queue_arguments
from contracts.envelope import Actor, Envelope
from contracts.events import Event
from contracts.registry import ContractError, build_envelope, parse_envelope

log = logging.getLogger("aid.consumer")

TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, ConnectionError, OSError,
             amqp.exceptions.AMQPError)
#: database errors caused by the data itself: the same message fails the same way every time
DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError, psycopg.NotSupportedError,
               psycopg.errors.ProgramLimitExceeded)
TRACKING_CONSTRAINT = "processed_events_pkey"
DEFAULT_MAX_ATTEMPTS = 5
REASONS = ("undecodable", "contract_violation", "not_in_log", "data_error", "retries_exhausted",
           "handler_error")
OUTPUT_NAMESPACE = uuid.UUID("5d3c8f4e-8a8e-4f0a-9a57-2f7f9d3b2a10")

BODY_MISMATCH = Counter("aid_consumer_body_mismatch_total",
                        "Messages whose body differed from the logged event (the logged one was handled)",
                        ["service"])


def output_event_id(consumer: str, cause: Envelope, index: int = 0) -> uuid.UUID:
    """Deterministic id of the ``index``-th event a consumer emits for ``cause``."""
    return uuid.uuid5(OUTPUT_NAMESPACE, f"{consumer}:{cause.event_id}:{index}")


def failure_kind(exc: BaseException) -> str:
    """``data_error`` (the data: dead-letter at once), ``transient`` (retry, bounded) or
    ``handler_error`` (a bug: dead-letter at once)."""
    if isinstance(exc, psycopg.IntegrityError):
        diag = getattr(exc, "diag", None)
        if getattr(diag, "constraint_name", None) == TRACKING_CONSTRAINT:
            return "transient"  # a concurrent delivery of the same event: the retry sees it handled
        return "data_error"
    if isinstance(exc, DATA_ERRORS):
        return "data_error"
    if isinstance(exc, TRANSIENT):
        return "transient"
    return "handler_error"


def backoff(failures: int) -> float:
    """Seconds to wait before requeueing after the ``failures``-th failure in a row."""
    return float(min(0.5 * 2 ** max(failures - 1, 0), 10.0))


class _NoDatabaseValues(logging.Filter):
    """nameko logs a failed worker with its exception; a database error's text can quote the
    values of the row (``DETAIL: Key (student_id)=(...)``): log its type and SQLSTATE only."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, psycopg.Error):
            record.msg = "error handling a worker: %s (SQLSTATE %s)"
            record.args = (type(exc).__name__, exc.sqlstate or "-")
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("nameko.containers").addFilter(_NoDatabaseValues())


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


class EventLog(SharedExtension):  # type: ignore[misc]
    """The consumers' read access to the log (a small pool of its own, shared per container)."""

    def setup(self) -> None:
        size = int(self.container.config.get("AID_LOOKUP_POOL_SIZE", 2))
        self.pool = Pool(config.load().database_url, size=size)

    def stop(self) -> None:
        self.pool.close()

    def read(self, event_id: uuid.UUID) -> Envelope | None:
        with self.pool.connection() as conn:
            return read_event(conn, event_id)

    def reachable(self) -> bool:
        try:
            with self.pool.connection() as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:
            return False


class Attempts:
    """Failures in a row per event id (bounded: the oldest entries are forgotten first)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._counts: collections.OrderedDict[str, tuple[int, int]] = collections.OrderedDict()

    def failed(self, event_id: str, counted: bool) -> tuple[int, int]:
        """Record a failure; return (counted attempts, failures in a row)."""
        attempts, failures = self._counts.pop(event_id, (0, 0))
        entry = (attempts + (1 if counted else 0), failures + 1)
        self._counts[event_id] = entry
        while len(self._counts) > self.limit:
            self._counts.popitem(last=False)
        return entry

    def forget(self, event_id: str) -> None:
        self._counts.pop(event_id, None)


class EventConsumer(Consumer):  # type: ignore[misc]
    queue_consumer = SafeQueueConsumer()
    event_log = EventLog()

    def __init__(self, *event_types: str, max_attempts: int | None = None, stuck_after: float | None = None,
                 **kwargs: Any) -> None:
        self.event_types = event_types
        self.max_attempts = max_attempts
        self.stuck_after = stuck_after
        super().__init__(queue=None, requeue_on_error=False, **kwargs)

    def setup(self) -> None:
        settings = config.load()
        service = self.container.service_name
        # passive: the broker set-up declared both exchanges (this user may not configure them)
        exchange = Exchange(settings.exchange, type="topic", durable=True, passive=True)
        self.queue = Queue(
            f"{service}.{self.method_name}",
            bindings=[binding(exchange, routing_key=t) for t in self.event_types],
            durable=True,
            queue_arguments={"x-dead-letter-exchange": settings.dead_letter_exchange,
                             "x-dead-letter-routing-key": dlq_name(service),
                             **queue_arguments(settings.queue_type)},
        )
        conf = self.container.config
        self.limit = int(self.max_attempts or conf.get("AID_CONSUMER_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
        stuck_after = float(self.stuck_after
                            or conf.get("AID_CONSUMER_STUCK_SECONDS", health.DEFAULT_STUCK_AFTER))
        self.attempts = Attempts()
        self.progress = health.track_consumer(service, self.queue.name, stuck_after)
        for reason in REASONS:
            observability.DEAD_LETTERS.labels(service=service, reason=reason)  # series exist from 0
        with Connection(conf["AMQP_URI"]) as conn:
            try:
                channel = conn.channel()
                check_base(channel, settings.exchange, settings.dead_letter_exchange)
                check_dlq(channel, service)
            except amqp.exceptions.NotFound as exc:
                raise RuntimeError(f"the broker is not set up for {service} ({exc}): run "
                                   "`python -m backbone.topology setup` (scripts/run-system does)") from None
        super().setup()

    # ------------------------------------------------------------------ one message
    def handle_message(self, body: Any, message: Any) -> None:
        """Runs in its own green thread (nameko's queue consumer spawns one per message)."""
        service = self.container.service_name
        try:
            envelope = parse_envelope(body)
        except ContractError as exc:
            self._guarded(_dead_letter, message, service, "contract_violation", exc.reason)
            return
        message.aid_started = time.perf_counter()
        message.aid_type = envelope.type
        message.aid_event_id = str(envelope.event_id)
        message.aid_key = self.progress.received()
        try:
            logged = self.event_log.read(envelope.event_id)
        except Exception as exc:  # whatever it is, not the message's fault: retry, bounded
            self._guarded(self._failed, message, exc, "transient")
            return
        if logged is None:
            log.warning("%s: event %s (%s) is not in the event log: refused", service, envelope.event_id,
                        envelope.type)
            self._guarded(self._give_up, message, "not_in_log", "event_id not in the event log")
            return
        if logged != envelope:
            BODY_MISMATCH.labels(service=service).inc()
            log.warning("%s: the message of event %s (%s) differs from the logged event; "
                        "handling the logged one", service, envelope.event_id, envelope.type)
        try:
            self.container.spawn_worker(self, (logged,), {}, context_data={},
                                        handle_result=self._handle_result_of(message))
        except ContainerBeingKilled:
            self._guarded(self.queue_consumer.requeue_message, message)

    def _handle_result_of(self, message: Any) -> Callable[..., tuple[Any, Any]]:
        def handle_result(worker_ctx: Any, result: Any = None, exc_info: Any = None) -> tuple[Any, Any]:
            self._guarded(self._settle, message, result, exc_info)
            return result, exc_info

        return handle_result

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn``; an error escaping here would kill the whole service container. The
        message stays unacked then, and the broker delivers it again after a reconnection."""
        try:
            fn(*args)
        except Exception as exc:
            log.error("could not settle a message (%s); the broker will deliver it again", type(exc).__name__)

    def _settle(self, message: Any, result: Any, exc_info: Any) -> None:
        service = self.container.service_name
        event_type = getattr(message, "aid_type", "unknown")
        observability.CONSUMER_SECONDS.labels(service=service, event_type=event_type).observe(
            time.perf_counter() - getattr(message, "aid_started", time.perf_counter())
        )
        if exc_info is None:
            self.attempts.forget(message.aid_event_id)
            self.progress.settled(message.aid_key, message.aid_event_id)
            self.queue_consumer.ack_message(message)
        else:
            self._failed(message, exc_info[1])

    def _failed(self, message: Any, exc: BaseException, kind: str | None = None) -> None:
        service = self.container.service_name
        event_type, event_id = message.aid_type, message.aid_event_id
        kind, error = kind or failure_kind(exc), type(exc).__name__
        if kind != "transient":
            self._give_up(message, kind, error)
            return
        # while the database is unreachable every message fails: an outage, not this message
        outage = isinstance(exc, psycopg.Error | OSError) and not self.event_log.reachable()
        attempts, failures = self.attempts.failed(event_id, counted=not outage)
        if attempts >= self.limit:
            self._give_up(message, "retries_exhausted", f"{attempts} attempts; last error {error}")
            return
        self.progress.failed(message.aid_key, event_id, failures, error)
        observability.CONSUMER_HANDLED.labels(service=service, event_type=event_type, outcome="retried").inc()
        log.warning("%s: transient failure handling %s %s (%s), attempt %d of %d%s; requeued", service,
                    event_type, event_id, error, attempts, self.limit,
                    " (database unreachable: not counted)" if outage else "")
        eventlet.sleep(backoff(failures))
        self.queue_consumer.requeue_message(message)

    def _give_up(self, message: Any, reason: str, detail: str) -> None:
        service = self.container.service_name
        observability.CONSUMER_HANDLED.labels(service=service, event_type=message.aid_type,
                                              outcome="dead_lettered").inc()
        self.attempts.forget(message.aid_event_id)
        self.progress.settled(message.aid_key, message.aid_event_id)
        _dead_letter(message, service, reason, detail)


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
        observability.CONSUMER_HANDLED.labels(service=self.service, event_type=envelope.type,
                                              outcome=outcome).inc()
        return outcome == "ok"

    def already_handled(self, consumer: str, envelope: Envelope) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT 1 FROM processed_events WHERE consumer = %s AND event_id = %s",
                               (consumer, envelope.event_id)).fetchone()
        return row is not None

    def read_stream(self, stream: str) -> list[Envelope]:
        with self.pool.connection() as conn:
            return read_stream_in(conn, stream)

    def verdicts(self, check_id: str, student_id: str) -> list[Envelope]:
        """The capture verdicts of one student in one check, in log order (``read_verdicts_in``)."""
        with self.pool.connection() as conn:
            return read_verdicts_in(conn, check_id, student_id)

    def filings(self, filed_from: str, filed_until: str) -> list[Envelope]:
        """The appeal filings filed on a day in [filed_from, filed_until) (``read_filings_in``)."""
        with self.pool.connection() as conn:
            return read_filings_in(conn, filed_from, filed_until)

    def unclosed_filings(self, filed_before: str) -> list[Envelope]:
        """The filings filed before ``filed_before`` neither closed nor fully ruled
        (``read_unclosed_filings_in``)."""
        with self.pool.connection() as conn:
            return read_unclosed_filings_in(conn, filed_before)

    def checks_of_month(self, month: str) -> list[Envelope]:
        """Every CheckOpened of ``month`` (``read_checks_of_month_in``)."""
        with self.pool.connection() as conn:
            return read_checks_of_month_in(conn, month)

    def read_types(self, types: Sequence[str], limit: int = 5000) -> list[Envelope]:
        """The newest ``limit`` events of ``types`` in log order (``read_types_in``)."""
        with self.pool.connection() as conn:
            return read_types_in(conn, types, limit)

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
