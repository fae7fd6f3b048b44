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

    def report(self, extra: str = "") -> None:
        """Write the line now; the next one is due ``every`` events later."""
        while self.every > 0 and self.next_report <= self.count:
            self.next_report += self.every
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        tail = f", {extra}" if extra else ""
        rate = self.count / elapsed
        print(f"{self.label}: {self.count:,} events in {elapsed:.1f} s ({rate:,.0f} ev/s){tail}",
              file=self.out, flush=True)
