"""Batched consumption: many consumer workers, one projection transaction.

Each message the eligibility consumer receives is handled by its own green thread (nameko's
worker); instead of one transaction each, the worker hands its (logged) event to the
:class:`Batcher` and waits. The batcher applies up to ``size`` events, or what arrived within
``wait`` seconds of the first one, in ONE transaction (:meth:`Projection.apply_events`: the
events' ``processed_events`` rows, facts and re-derived statuses commit together), sorted by log
position, and then wakes every worker with its own outcome. Only then does each worker return and
its message get acked: a process killed mid-batch has acked nothing of it, the broker delivers
those messages again, and ``processed_events`` drops what had committed. Effects stay exactly-once.

If a batch fails for a reason that is not transient (a bug, the data), its events are applied again
one by one, so only the event at fault goes the way of a failed message (dead-lettered) and the
rest are applied. A transient failure (the database unreachable) fails every event of the batch:
each message is retried as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import eventlet
from eventlet.event import Event

from contracts.envelope import Envelope

DEFAULT_SIZE = 500
DEFAULT_WAIT = 0.05


@dataclass(frozen=True)
class Outcome:
    """What one event's worker learns: applied (new) or a duplicate."""

    applied: bool


class Batcher:
    """Collects events from many green threads and applies them in batches, one batch at a time.

    ``apply(envelopes)`` applies a batch in one transaction and returns the ids of the events that
    were new (not in ``processed_events`` before). ``is_transient(exc)`` tells a failure worth
    retrying as a whole (the database unreachable) from one to isolate event by event.
    """

    def __init__(self, apply: Callable[[Sequence[Envelope]], set[Any]], *, size: int = DEFAULT_SIZE,
                 wait: float = DEFAULT_WAIT, is_transient: Callable[[BaseException], bool] = lambda e: False,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        if size < 1 or wait < 0:
            raise ValueError("batch size must be >= 1 and wait >= 0")
        self.apply, self.size, self.wait = apply, size, wait
        self.is_transient = is_transient
        self.on_batch = on_batch
        self._items: list[tuple[Envelope, Event]] = []
        self._full = Event()
        self._runner: Any = None

    def submit(self, envelope: Envelope) -> Outcome:
        """Apply ``envelope`` with the next batch; returns when that batch committed, or raises
        the error that made it (or this event) fail."""
        done = Event()
        self._items.append((envelope, done))
        if len(self._items) >= self.size and not self._full.ready():
            self._full.send(True)
        if self._runner is None or self._runner.dead:
            self._runner = eventlet.spawn(self._run)
        result: Outcome = done.wait()
        return result

    @property
    def waiting(self) -> int:
        return len(self._items)

    def _run(self) -> None:
        while self._items:
            if len(self._items) < self.size:
                with eventlet.Timeout(self.wait, False):
                    self._full.wait()
            self._full = Event()
            batch, self._items = self._items[:self.size], self._items[self.size:]
            self._flush(batch)

    def _flush(self, batch: list[tuple[Envelope, Event]]) -> None:
        batch.sort(key=lambda item: item[0].position or 0)  # log order (the writer folds in this order)
        started = time.perf_counter()
        try:
            fresh = self.apply([envelope for envelope, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or self.is_transient(exc):
                for _, done in batch:
                    done.send_exception(exc)
                return
            for item in batch:  # isolate the event at fault; the others are applied
                self._flush([item])
            return
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - started)
        for envelope, done in batch:
            done.send(Outcome(applied=envelope.event_id in fresh))
