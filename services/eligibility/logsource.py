"""Where a replay reads the log from: a JSONL file of contract envelopes, or the PostgreSQL store.

Both yield :data:`RawEvent` tuples ``(type, event_id, occurred_ts, payload, position)``, upcast to
the current schema version, and skip building envelope objects (the replay's hot path). Events
from the store were validated when appended; a JSONL file is checked structurally line by line
(``validate=True`` runs the full JSON-Schema validation as well).

``as_of``: only events with ``recorded_at <= as_of`` (what the system knew then); an event
without ``recorded_at`` (possible in a hand-made JSONL file) is judged by its ``occurred_at``.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from contracts.registry import ContractError, current_version, parse_envelope, upcast
from services.eligibility.domain.facts import handled_types

RawEvent = tuple[str, str, float, dict[str, Any], int | None]

_REQUIRED = ("event_id", "type", "schema_version", "occurred_at", "payload")


class LogSourceError(ValueError):
    """A log line or row that cannot be replayed; the message names where, never the payload."""


class _Versions(dict[str, int]):
    def __missing__(self, event_type: str) -> int:
        version = current_version(event_type)
        self[event_type] = version
        return version


def _instant(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("instant without a time zone")
    return parsed.timestamp()


def jsonl_events(path: str | Path, *, as_of: datetime | None = None, until_position: int | None = None,
                 validate: bool = False) -> Iterator[RawEvent]:
    """Envelopes from a JSONL file, one per line (blank lines are skipped)."""
    limit = as_of.timestamp() if as_of is not None else None
    versions = _Versions()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LogSourceError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            try:
                event = _from_document(doc, versions, validate)
                if limit is not None:
                    recorded = doc.get("recorded_at") or doc["occurred_at"]
                    if _instant(recorded) > limit:
                        continue
            except ContractError as exc:
                raise LogSourceError(f"{where}: {exc.reason}") from None
            except (KeyError, TypeError, ValueError) as exc:
                why = f"{type(exc).__name__}: {exc}"
                raise LogSourceError(f"{where}: not a contract envelope ({why})") from None
            if until_position is not None and event[4] is not None and event[4] > until_position:
                continue
            yield event


def _from_document(doc: Any, versions: _Versions, validate: bool) -> RawEvent:
    if not isinstance(doc, dict):
        raise ValueError("line is not a JSON object")
    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if validate:
        env = parse_envelope(doc)
        return env.type, str(env.event_id), env.occurred_at.timestamp(), env.payload, env.position
    event_type, version, payload = doc["type"], int(doc["schema_version"]), doc["payload"]
    if not isinstance(payload, dict):
        raise ValueError("payload is not an object")
    if version != versions[event_type]:
        version, payload = upcast(event_type, version, payload)
    position = doc.get("position")
    return event_type, str(doc["event_id"]), _instant(doc["occurred_at"]), payload, position


def postgres_events(dsn: str, *, as_of: datetime | None = None, until_position: int | None = None,
                    batch_size: int = 5000, only_handled: bool = True, types: Sequence[str] | None = None,
                    by_student: bool = False) -> Iterator[RawEvent]:
    """The log from the PostgreSQL event store (``read_rows``: a server-side cursor, only the
    columns a fold reads), in position order, or by student then position (``by_student``).

    ``types`` keeps only those types; otherwise, with ``only_handled`` (default), the database
    drops the types the rules ignore (CaptureSubmitted, ...: see :func:`.domain.facts.handled_types`).
    """
    from backbone.eventstore import PostgresEventStore

    if types is None and only_handled:
        types = handled_types()
    versions = _Versions()
    rows = PostgresEventStore(dsn).read_rows(recorded_until=as_of, batch_size=batch_size, types=types,
                                              lean=True, by_student=by_student)
    # Columns: position, event_id, stream, stream_version, type, schema_version, occurred_at,
    # recorded_at, actor, correlation_id, causation_id, payload (see backbone.eventstore).
    for row in rows:
        position = row[0]
        if until_position is not None and position > until_position:
            if by_student:
                continue  # not in position order: skip, do not stop
            return
        event_type, version, payload = row[4], row[5], row[11]
        if version != versions[event_type]:
            version, payload = upcast(event_type, version, payload)
        yield event_type, str(row[1]), row[6].timestamp(), payload, position


PARTITION_SQL = "mod(('x' || left(md5(payload->>'student_id'), 7))::bit(28)::int, %s) = %s"
"""The rows of partition ``%s`` of ``%s`` (the same split as :func:`partition_of`, by the database)."""


def partition_of(student_id: str, parts: int) -> int:
    """Which of ``parts`` partitions a student belongs to: the first 28 bits of the MD5 of the
    id (UTF-8), modulo ``parts``. Stable across processes and runs, and computed identically by
    PostgreSQL (:data:`PARTITION_SQL`), so a worker can read its own students straight from the log."""
    return int(hashlib.md5(student_id.encode()).hexdigest()[:7], 16) % parts


def fast_events(dsn: str, *, as_of: datetime | None = None, until_position: int | None = None,
                types: Sequence[str] | None = None, by_student: bool = False,
                partition: tuple[int, int] | None = None, ordered: bool = True) -> Iterator[RawEvent]:
    """The log from PostgreSQL as :data:`RawEvent` tuples, streamed by ``COPY ... TO STDOUT``
    (no cursor round trips; flat memory), the payload read as text and parsed with orjson, the
    event id as text, the instant as epoch seconds computed by the server (exactly what
    ``datetime.timestamp()`` gives: both round the exact microsecond count once).

    ``types``: only those types (default: the types the rules read). ``until_position``: only
    positions up to it (filtered by the database). ``partition=(k, n)``: only events about
    students of partition ``k`` of ``n`` (:func:`partition_of`; give per-student ``types``).
    ``by_student``: ordered by student id (byte order), then position; else by position when
    ``ordered`` (a fold is order-insensitive: ``ordered=False`` spares the database the order).
    """
    import orjson
    import psycopg
    from psycopg import sql

    types = list(types) if types is not None else handled_types()
    where = ["type = ANY({types})"]
    params: dict[str, Any] = {"types": types}
    if as_of is not None:
        where.append("recorded_at <= {as_of}")
        params["as_of"] = as_of
    if until_position is not None:
        where.append("position <= {until}")
        params["until"] = until_position
    if partition is not None:
        where.append(PARTITION_SQL.replace("%s", "{parts}", 1).replace("%s", "{part}", 1))
        params["part"], params["parts"] = partition[0], partition[1]
    order = (" ORDER BY (payload->>'student_id') COLLATE \"C\", position" if by_student
             else " ORDER BY position" if ordered else "")
    query = sql.SQL(
        "COPY (SELECT type, schema_version, event_id::text, extract(epoch FROM occurred_at)::float8,"
        " position, payload::text FROM events WHERE " + " AND ".join(where) + order + ") TO STDOUT"
    ).format(**{k: sql.Literal(v) for k, v in params.items()})
    versions = _Versions()
    loads = orjson.loads
    with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy(query) as copy:
        copy.set_types(["text", "int4", "text", "float8", "int8", "text"])
        for event_type, version, event_id, ts, position, text in copy.rows():
            payload = loads(text)
            if version != versions[event_type]:
                version, payload = upcast(event_type, version, payload)
            yield event_type, event_id, ts, payload, position


def open_source(spec: str, *, dsn: str, as_of: datetime | None = None, until_position: int | None = None,
                validate: bool = False, only_handled: bool = True) -> Iterator[RawEvent]:
    """``jsonl:PATH`` or ``postgres``."""
    if spec.startswith("jsonl:"):
        return jsonl_events(spec[len("jsonl:"):], as_of=as_of, until_position=until_position,
                            validate=validate)
    if spec == "postgres":
        return postgres_events(dsn, as_of=as_of, until_position=until_position, only_handled=only_handled)
    raise LogSourceError(f"unknown source {spec!r} (use jsonl:PATH or postgres)")


class gc_tuned:  # noqa: N801 - used as a context manager, reads like a statement
    """Fewer cyclic-GC passes while a fold builds millions of long-lived, acyclic objects.

    The fold creates no reference cycles; the default thresholds make the collector rescan the
    growing heap over and over (about 40% of replay time from PostgreSQL). Restored on exit.
    """

    def __enter__(self) -> None:
        self._saved = gc.get_threshold()
        gc.set_threshold(200_000, 50, 100)

    def __exit__(self, *exc: object) -> None:
        gc.set_threshold(*self._saved)


class Progress:
    """Counts events; every ``every`` events writes one line with the rate to ``out`` (stderr)."""

    def __init__(self, every: int = 500_000, out: TextIO | None = None, label: str = "replay") -> None:
        self.every = every
        self.out = out if out is not None else sys.stderr
        self.label = label
        self.count = 0
        self.started = time.perf_counter()
        self.next_report = every

    def tick(self) -> bool:
        """Count one event; True when a progress line is due (then call :meth:`report`)."""
        self.count += 1
        return self.count >= self.next_report

    def advance(self, events: int) -> None:
        """Count ``events`` at once (events folded elsewhere); writes the line when one is due."""
        self.count += events
        if self.count >= self.next_report:
            self.report()

    def report(self, extra: str = "") -> None:
        """Write the line now; the next one is due ``every`` events later."""
        while self.every > 0 and self.next_report <= self.count:
            self.next_report += self.every
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        tail = f", {extra}" if extra else ""
        rate = self.count / elapsed
        print(f"{self.label}: {self.count:,} events in {elapsed:.1f} s ({rate:,.0f} ev/s){tail}",
              file=self.out, flush=True)
