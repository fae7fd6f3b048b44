"""The event store: an append-only log in PostgreSQL, and an in-memory twin for unit tests.

Guarantees (tested against the real database in ``tests/integration/test_eventstore_postgres.py``, and
against the in-memory twin in ``tests/unit/test_eventstore_memory.py``):

- *Append-only*: triggers reject UPDATE, DELETE and TRUNCATE on ``events``.
- *Gapless global order*: an append takes ``LOCK TABLE events IN EXCLUSIVE MODE`` before it
  inserts, so positions are allocated and committed in the same order. Without it, a transaction
  that drew position 10 could commit after one that drew 11, and a reader tailing
  ``position > 10`` would already have moved past 10 and skip it for ever. Readers are not
  blocked by this lock (SELECT takes ACCESS SHARE).
- *Optimistic concurrency*: ``expected_version`` is the stream's version the writer saw; a
  mismatch raises :class:`ConcurrencyError`. ``UNIQUE (stream, stream_version)`` backs it.
- *Idempotent append*: appending an event whose ``event_id`` is already stored is a no-op
  that returns the stored positions.
- ``occurred_at`` (business time) is set by the writer, ``recorded_at`` by the database.
"""

from __future__ import annotations

import abc
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from contracts.envelope import Actor, Envelope
from contracts.registry import upcast, validate_envelope

NOTIFY_CHANNEL = "aid_events"


class ConcurrencyError(RuntimeError):
    """The stream moved on since the writer read it."""


class IdempotencyConflict(RuntimeError):
    """Some, but not all, event_ids of one append were stored already."""


class EventStore(abc.ABC):
    """The port every service and the replay use."""

    @abc.abstractmethod
    def append(self, events: Sequence[Envelope], expected_version: int | None = None) -> list[Envelope]:
        """Append ``events`` (to one or several streams); return them with positions and versions.

        ``expected_version`` applies when all events go to one stream: 0 means "stream is new".
        """

    @abc.abstractmethod
    def read_all(
        self, after_position: int = 0, recorded_until: datetime | None = None, batch_size: int = 5000
    ) -> Iterator[Envelope]:
        """Every event after ``after_position`` in log order, upcast to current schema versions."""

    @abc.abstractmethod
    def read_stream(self, stream: str) -> list[Envelope]: ...

    @abc.abstractmethod
    def head_position(self) -> int: ...


def _plan(
    events: Sequence[Envelope], current: dict[str, int], expected_version: int | None
) -> list[Envelope]:
    streams = {e.stream for e in events}
    if expected_version is not None:
        if len(streams) != 1:
            raise ValueError("expected_version needs all events in one stream")
        (stream,) = streams
        if current.get(stream, 0) != expected_version:
            raise ConcurrencyError(
                f"stream {stream!r} is at version {current.get(stream, 0)}, expected {expected_version}"
            )
    planned: list[Envelope] = []
    versions = dict(current)
    for event in events:
        versions[event.stream] = versions.get(event.stream, 0) + 1
        planned.append(replace(event, stream_version=versions[event.stream]))
    return planned


def _upcast(envelope: Envelope) -> Envelope:
    version, payload = upcast(envelope.type, envelope.schema_version, envelope.payload)
    if version == envelope.schema_version:
        return envelope
    return replace(envelope, schema_version=version, payload=payload)


class InMemoryEventStore(EventStore):
    """Same behaviour as the PostgreSQL store, for fast unit tests of services and folds."""

    def __init__(self) -> None:
        self._events: list[Envelope] = []
        self._by_id: dict[uuid.UUID, Envelope] = {}
        self._lock = threading.Lock()

    def append(self, events: Sequence[Envelope], expected_version: int | None = None) -> list[Envelope]:
        for e in events:
            validate_envelope(e.to_dict())
        with self._lock:
            known = [self._by_id[e.event_id] for e in events if e.event_id in self._by_id]
            if known and len(known) == len(events):
                return known
            if known:
                raise IdempotencyConflict("part of this append was stored already")
            current: dict[str, int] = {}
            for e in self._events:
                current[e.stream] = e.stream_version
            stored = []
            for e in _plan(events, current, expected_version):
                e = replace(e, position=len(self._events) + 1, recorded_at=datetime.now(UTC))
                self._events.append(e)
                self._by_id[e.event_id] = e
                stored.append(e)
            return stored

    def read_all(
        self, after_position: int = 0, recorded_until: datetime | None = None, batch_size: int = 5000
    ) -> Iterator[Envelope]:
        for e in list(self._events[after_position:]):
            if recorded_until is not None and e.recorded_at is not None and e.recorded_at > recorded_until:
                continue
            yield _upcast(e)

    def read_stream(self, stream: str) -> list[Envelope]:
        return [_upcast(e) for e in self._events if e.stream == stream]

    def head_position(self) -> int:
        return len(self._events)


# --------------------------------------------------------------------------- PostgreSQL

_COLUMNS = (
    "position, event_id, stream, stream_version, type, schema_version, occurred_at, recorded_at,"
    " actor, correlation_id, causation_id, payload"
)

_LEAN_COLUMNS = (
    "position, event_id, NULL, stream_version, type, schema_version, occurred_at,"
    " NULL, NULL, NULL, NULL, payload"
)


def row_to_envelope(row: Sequence[Any]) -> Envelope:
    actor = row[8]
    return Envelope(
        position=row[0],
        event_id=row[1],
        stream=row[2],
        stream_version=row[3],
        type=row[4],
        schema_version=row[5],
        occurred_at=row[6],
        recorded_at=row[7],
        actor=Actor(kind=actor["kind"], id=actor["id"], school=actor.get("school")),
        correlation_id=row[9],
        causation_id=row[10],
        payload=row[11],
    )


def append_in_transaction(conn: Any, events: Sequence[Envelope],
                          expected_version: int | None = None) -> list[Envelope]:
    """Append inside the caller's open transaction (so effects and events commit together)."""
    from psycopg.types.json import Jsonb

    if not events:
        return []
    for e in events:  # nothing that breaks its contract enters the log (it could never leave)
        validate_envelope(e.to_dict())
    ids = [e.event_id for e in events]
    with conn.cursor() as cur:
        cur.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        cur.execute(f"SELECT {_COLUMNS} FROM events WHERE event_id = ANY(%s) ORDER BY position", (ids,))
        known = [row_to_envelope(r) for r in cur.fetchall()]
        if known and len(known) == len(events):
            return known
        if known:
            raise IdempotencyConflict("part of this append was stored already")
        streams = sorted({e.stream for e in events})
        cur.execute(
            "SELECT stream, max(stream_version) FROM events WHERE stream = ANY(%s) GROUP BY stream",
            (streams,),
        )
        current = {s: v for s, v in cur.fetchall()}
        planned = _plan(events, current, expected_version)
        rows = [
            (
                e.event_id, e.stream, e.stream_version, e.type, e.schema_version, e.occurred_at,
                Jsonb(e.actor.to_dict()), e.correlation_id, e.causation_id, Jsonb(e.payload),
            )
            for e in planned
        ]
        stored: list[Envelope] = []
        if len(rows) == 1:
            cur.execute(
                "INSERT INTO events (event_id, stream, stream_version, type, schema_version, occurred_at,"
                " actor, correlation_id, causation_id, payload) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " RETURNING position, recorded_at",
                rows[0],
            )
            position, recorded_at = cur.fetchone()
            stored.append(replace(planned[0], position=position, recorded_at=recorded_at))
        else:
            cur.executemany(
                "INSERT INTO events (event_id, stream, stream_version, type, schema_version, occurred_at,"
                " actor, correlation_id, causation_id, payload) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " RETURNING position, recorded_at",
                rows,
                returning=True,
            )
            for e in planned:
                position, recorded_at = cur.fetchone()
                stored.append(replace(e, position=position, recorded_at=recorded_at))
                cur.nextset()
        cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(stored[-1].position)))
    return stored


def read_stream_in(conn: Any, stream: str) -> list[Envelope]:
    """One stream's events in version order, upcast, on the caller's connection."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE stream = %s ORDER BY stream_version", (stream,))
    return [_upcast(row_to_envelope(r)) for r in rows.fetchall()]


def read_verdicts_in(conn: Any, check_id: str, student_id: str) -> list[Envelope]:
    """The capture verdicts (CaptureVerified/Rejected) of one student in one check, in log
    order; served by ``events_verdicts_by_check_idx``."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE type IN ('CaptureVerified', 'CaptureRejected')"
        " AND payload->>'check_id' = %s AND payload->>'student_id' = %s ORDER BY position",
        (check_id, student_id),
    )
    return [_upcast(row_to_envelope(r)) for r in rows.fetchall()]


_LOCAL_DAY = "(occurred_at AT TIME ZONE 'Asia/Shanghai')::date"


def read_filings_in(conn: Any, filed_from: str, filed_until: str) -> list[Envelope]:
    """The appeal filings (``AppealFiled``) filed on a day in [``filed_from``, ``filed_until``)
    (ISO dates), upcast, in log order: all of them, however many events of other types or
    months the log holds. A v1 appeal (no ``filed_on``) counts on the local day of its
    ``occurred_at``. Served by ``events_filings_by_filed_on_idx``."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE type = 'AppealFiled' AND ("
        " (payload->>'filed_on' >= %s AND payload->>'filed_on' < %s)"
        f" OR (payload->>'filed_on' IS NULL AND {_LOCAL_DAY} >= %s::date AND {_LOCAL_DAY} < %s::date))"
        " ORDER BY position", (filed_from, filed_until, filed_from, filed_until))
    return [_upcast(row_to_envelope(r)) for r in rows.fetchall()]


def read_unclosed_filings_in(conn: Any, filed_before: str) -> list[Envelope]:
    """The appeal filings filed before ``filed_before`` (ISO date) whose stream holds no
    ``AppealClosedUnhandled`` and that have a student without an ``AppealResolved`` in the
    stream: exactly the filings a month-end run must close, upcast, in log order. Filings by
    ``events_filings_by_filed_on_idx``, their closings and rulings by the stream index."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM events f WHERE type = 'AppealFiled'"
        " AND (payload->>'filed_on' < %s"
        f" OR (payload->>'filed_on' IS NULL AND {_LOCAL_DAY} < %s::date))"
        " AND NOT EXISTS (SELECT 1 FROM events c WHERE c.stream = f.stream"
        " AND c.type = 'AppealClosedUnhandled')"
        " AND EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN f.schema_version = 1"
        " THEN jsonb_build_array(f.payload) ELSE f.payload->'students' END) s"
        " WHERE NOT EXISTS (SELECT 1 FROM events r WHERE r.stream = f.stream"
        " AND r.type = 'AppealResolved' AND r.payload->>'student_id' = s->>'student_id'))"
        " ORDER BY position", (filed_before, filed_before))
    return [_upcast(row_to_envelope(r)) for r in rows.fetchall()]


def read_checks_of_month_in(conn: Any, month: str) -> list[Envelope]:
    """Every check opened for ``month`` (``CheckOpened``), upcast, in log order; served by
    ``events_checks_by_month_idx``."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE type = 'CheckOpened' AND payload->>'month' = %s"
        " ORDER BY position", (month,))
    return [_upcast(row_to_envelope(r)) for r in rows.fetchall()]


def read_types_in(conn: Any, types: Sequence[str], limit: int = 5000) -> list[Envelope]:
    """The newest ``limit`` events of the given types, upcast, in log order (for short lists
    such as checks opened and closed)."""
    rows = conn.execute(
        f"SELECT * FROM (SELECT {_COLUMNS} FROM events WHERE type = ANY(%s)"
        " ORDER BY position DESC LIMIT %s) t ORDER BY position", (list(types), limit))
    return [_upcast(row_to_envelope(r)) for r in rows.fetchall()]


def read_event(conn: Any, event_id: uuid.UUID) -> Envelope | None:
    """The logged event ``event_id``, upcast, or None if the log has no such event (one lookup on
    the unique index of ``events.event_id``). Consumers handle this copy, never a message body."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE event_id = %s", (event_id,)).fetchone()
    return _upcast(row_to_envelope(row)) if row is not None else None


def mark_processed(conn: Any, consumer: str, envelope: Envelope) -> bool:
    """Record that ``consumer`` handled ``envelope``, in the caller's transaction.

    Returns False when it was handled before: the caller must then change nothing.
    """
    cur = conn.execute(
        "INSERT INTO processed_events (consumer, event_id, position) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (consumer, envelope.event_id, envelope.position),
    )
    return bool(cur.rowcount == 1)


class PostgresEventStore(EventStore):
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def _connect(self, **kwargs: Any) -> Any:
        import psycopg

        return psycopg.connect(self.dsn, **kwargs)

    def append(self, events: Sequence[Envelope], expected_version: int | None = None) -> list[Envelope]:
        with self._connect() as conn, conn.transaction():
            return append_in_transaction(conn, events, expected_version)

    def read_all(
        self, after_position: int = 0, recorded_until: datetime | None = None, batch_size: int = 5000
    ) -> Iterator[Envelope]:
        for row in self.read_rows(after_position, recorded_until, batch_size):
            yield _upcast(row_to_envelope(row))

    def read_rows(
        self, after_position: int = 0, recorded_until: datetime | None = None, batch_size: int = 5000,
        types: Sequence[str] | None = None, lean: bool = False, by_student: bool = False,
    ) -> Iterator[tuple[Any, ...]]:
        """Raw rows (the columns of :data:`_COLUMNS`) for hot replay loops that build no objects.

        ``types`` keeps only those event types (filtered by the database, so a replay never
        fetches what its rules ignore). ``lean`` returns NULL for the columns a fold does not
        read (stream, recorded_at, actor, correlation_id, causation_id), saving their decoding.
        ``by_student`` orders by ``payload.student_id`` (byte order), then position, so a replay
        can fold and forget one student at a time (the database sorts, on disk if need be).
        """
        columns = _LEAN_COLUMNS if lean else _COLUMNS
        query = f"SELECT {columns} FROM events WHERE position > %s"
        params: list[Any] = [after_position]
        if recorded_until is not None:
            query += " AND recorded_at <= %s"
            params.append(recorded_until)
        if types is not None:
            query += " AND type = ANY(%s)"
            params.append(list(types))
        if by_student:
            query += " ORDER BY (payload->>'student_id') COLLATE \"C\", position"
        else:
            query += " ORDER BY position"
        with self._connect() as conn, conn.transaction(), conn.cursor(name="read_rows") as cur:
            cur.itersize = batch_size
            cur.execute(query, params)
            yield from cur

    def read_stream(self, stream: str) -> list[Envelope]:
        with self._connect() as conn:
            return read_stream_in(conn, stream)

    def head_position(self) -> int:
        with self._connect() as conn:
            row = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
        return int(row[0])

