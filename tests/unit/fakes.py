"""In-memory stand-ins for the two dependencies of the HTTP entry points, for unit tests with
``nameko.testing.services.worker_factory``.

- :class:`FakeStore` is the store a worker gets (``self.store``): the real
  :class:`~backbone.messaging.EventStoreAccess` with its database replaced by the in-memory event
  store (:class:`~backbone.eventstore.InMemoryEventStore`, which validates every envelope, enforces
  ``expected_version`` and upcasts like the PostgreSQL one). So ``record`` is the production code:
  it builds the envelope with the caller's actor and the service clock. State is set up by
  replaying envelopes (``FakeStore(*envelopes)``, :meth:`FakeStore.given`).
- :class:`FakeBlobs` is the real :class:`~backbone.blobs.BlobStore` (references, ``staged()`` and
  its rollback) with its files replaced by a dictionary.

What is not here: the database pool. Routes that need it (an ``Idempotency-Key``, the
personal-data read log of GET routes, terminal credentials) are covered by the integration tests;
a unit test that reaches it fails with a message saying so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NoReturn

from backbone.blobs import BlobNotFound, BlobStore
from backbone.eventstore import InMemoryEventStore
from backbone.messaging import Effect, EventStoreAccess
from contracts.calendar import local_date
from contracts.envelope import Envelope

VERDICTS = ("CaptureVerified", "CaptureRejected")


def _filed_on(filed: Envelope) -> str:
    """The day an AppealFiled was filed (a v1 appeal: its occurred_at's local day)."""
    return str(filed.payload.get("filed_on") or local_date(filed.occurred_at).isoformat())


class NoDatabase:
    """The pool of a unit test: there is none."""

    def _refuse(self) -> NoReturn:
        raise AssertionError("this unit test has no database: send no Idempotency-Key, and leave routes "
                             "that log personal-data reads or use terminal credentials to tests/integration")

    def connection(self) -> AbstractContextManager[Any]:
        self._refuse()

    def transaction(self) -> AbstractContextManager[Any]:
        self._refuse()


class FakeStore(EventStoreAccess):
    """``self.store`` of a service, over an in-memory log."""

    def __init__(self, *given: Envelope) -> None:
        super().__init__(NoDatabase(), "unit-test")  # type: ignore[arg-type]
        self.log = InMemoryEventStore()
        self.recorded: list[Envelope] = []  # what the entry point appended, in order
        self._before_next_append: list[Callable[[], None]] = []
        self.given(*given)

    # ------------------------------------------------------------------ setting the scene

    def given(self, *envelopes: Envelope) -> None:
        """Replay ``envelopes`` into the log (each appended to its stream, in order)."""
        for envelope in envelopes:
            self.log.append([envelope])

    def meanwhile(self, *envelopes: Envelope) -> None:
        """Another writer appends ``envelopes`` after the handler read the log and before its
        own append (a concurrent change)."""
        self._before_next_append.append(lambda: self.given(*envelopes))

    def fail_next_append(self, error: BaseException) -> None:
        """The next append raises ``error`` (the database went away, say)."""

        def fail() -> None:
            raise error

        self._before_next_append.append(fail)

    # ------------------------------------------------------------------ EventStoreAccess

    def read_stream(self, stream: str) -> list[Envelope]:
        return self.log.read_stream(stream)

    def read_types(self, types: Sequence[str], limit: int = 5000) -> list[Envelope]:
        return [e for e in self.log.read_all() if e.type in types][-limit:]

    def filings(self, filed_from: str, filed_until: str) -> list[Envelope]:
        return [e for e in self.log.read_all()
                if e.type == "AppealFiled" and filed_from <= _filed_on(e) < filed_until]

    def unclosed_filings(self, filed_before: str) -> list[Envelope]:
        events = list(self.log.read_all())
        closed = {e.stream for e in events if e.type == "AppealClosedUnhandled"}
        ruled = {(e.stream, e.payload["student_id"]) for e in events if e.type == "AppealResolved"}
        return [e for e in events if e.type == "AppealFiled" and _filed_on(e) < filed_before
                and e.stream not in closed
                and any((e.stream, s["student_id"]) not in ruled for s in e.payload["students"])]

    def checks_of_month(self, month: str) -> list[Envelope]:
        return [e for e in self.log.read_all() if e.type == "CheckOpened" and e.payload["month"] == month]

    def verdicts(self, check_id: str, student_id: str) -> list[Envelope]:
        return [e for e in self.log.read_all() if e.type in VERDICTS
                and e.payload.get("check_id") == check_id and e.payload.get("student_id") == student_id]

    def append(self, events: Sequence[Envelope], expected_version: int | None = None) -> list[Envelope]:
        hooks, self._before_next_append = self._before_next_append, []
        for hook in hooks:
            hook()
        stored = self.log.append(events, expected_version)
        self.recorded.extend(stored)
        return stored

    def handle_once(self, consumer: str, envelope: Envelope, effect: Effect) -> bool:
        raise NotImplementedError("consumers are tested against the real database")

    def already_handled(self, consumer: str, envelope: Envelope) -> bool:
        raise NotImplementedError("consumers are tested against the real database")


class FakeBlobs(BlobStore):
    """The blob store, in memory. ``kept`` is what is stored: reference -> bytes."""

    def __init__(self) -> None:  # no directory, no cipher: nothing reaches a disk
        self._name_key = b"unit-test-blob-names"
        self.kept: dict[str, bytes] = {}
        self._stamps: dict[str, int] = {}  # stands for the file's modification time
        self._clock: Iterator[int] = itertools.count(1)

    def put_new(self, data: bytes) -> tuple[str, int | None]:
        ref = self.reference(data)
        stamp = next(self._clock)
        self._stamps[ref] = stamp
        if ref in self.kept:
            return ref, None  # claimed: a rollback of the request that created it leaves it alone
        self.kept[ref] = bytes(data)
        return ref, stamp

    def get(self, ref: str) -> bytes:
        try:
            return self.kept[ref]
        except KeyError:
            raise BlobNotFound("no such blob") from None

    def delete(self, ref: str, created_mtime_ns: int | None = None) -> bool:
        if ref not in self.kept:
            return False
        if created_mtime_ns is not None and self._stamps.get(ref) != created_mtime_ns:
            return False
        del self.kept[ref]
        del self._stamps[ref]
        return True
