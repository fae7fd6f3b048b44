"""The eligibility consumer's batcher (services/eligibility/projection/batching.py): many workers, one
apply per batch, bounded by count and time, in log order, the event at fault isolated."""

from __future__ import annotations

import time

import eventlet
import pytest

from services.eligibility.projection.batching import Batcher
from tests.eligibility.elig_builders import Log


def _events(n: int) -> list:
    log = Log()
    for i in range(n):
        log.registered(f"S{i:04d}")
    return log.events


def _submit_all(batcher: Batcher, events: list) -> list:
    threads = [eventlet.spawn(batcher.submit, e) for e in events]
    results = []
    for t in threads:
        try:
            results.append(t.wait())
        except Exception as exc:  # noqa: BLE001 - the test looks at which events failed
            results.append(exc)
    return results


def test_a_burst_is_applied_in_batches_of_at_most_size_in_log_order() -> None:
    batches: list[list[int]] = []

    def apply(envelopes):
        batches.append([e.position for e in envelopes])
        eventlet.sleep(0.01)  # the database
        return {e.event_id for e in envelopes}

    events = _events(250)
    results = _submit_all(Batcher(apply, size=100, wait=0.05), list(reversed(events)))
    assert all(r.applied for r in results)
    assert [len(b) for b in batches] == [100, 100, 50]
    assert all(b == sorted(b) for b in batches)
    assert sorted(p for b in batches for p in b) == [e.position for e in events]


def test_a_lone_event_waits_at_most_the_wait() -> None:
    calls = []
    batcher = Batcher(lambda es: calls.append(len(es)) or {e.event_id for e in es}, size=500, wait=0.05)
    started = time.perf_counter()
    (result,) = _submit_all(batcher, _events(1))
    elapsed = time.perf_counter() - started
    assert result.applied and calls == [1]
    assert 0.04 <= elapsed < 0.5


def test_duplicates_are_reported_as_not_applied() -> None:
    events = _events(4)
    seen = {events[0].event_id}
    results = _submit_all(Batcher(lambda es: {e.event_id for e in es} - seen, size=10, wait=0.01), events)
    assert [r.applied for r in results] == [False, True, True, True]


def test_an_event_at_fault_fails_alone_and_the_rest_are_applied() -> None:
    events = _events(6)
    bad = events[3].event_id
    applied: list = []

    def apply(envelopes):
        if any(e.event_id == bad for e in envelopes):
            raise ValueError("a bug on this event")  # the transaction rolled back: nothing applied
        applied.extend(e.event_id for e in envelopes)
        return {e.event_id for e in envelopes}

    results = _submit_all(Batcher(apply, size=10, wait=0.01), events)
    assert isinstance(results[3], ValueError)
    assert all(r.applied for i, r in enumerate(results) if i != 3)
    assert sorted(applied) == sorted(e.event_id for i, e in enumerate(events) if i != 3)


def test_a_transient_failure_fails_the_whole_batch_for_a_retry() -> None:
    calls = []

    def apply(envelopes):
        calls.append(len(envelopes))
        raise ConnectionError("database unreachable")

    results = _submit_all(Batcher(apply, size=10, wait=0.01, is_transient=lambda e: True), _events(5))
    assert calls == [5]
    assert all(isinstance(r, ConnectionError) for r in results)


def test_the_batcher_goes_on_after_a_failure() -> None:
    fail = [True]

    def apply(envelopes):
        if fail.pop() if fail else False:
            raise ConnectionError("once")
        return {e.event_id for e in envelopes}

    batcher = Batcher(apply, size=10, wait=0.01, is_transient=lambda e: True)
    first = _submit_all(batcher, _events(3))
    second = _submit_all(batcher, _events(3))
    assert all(isinstance(r, ConnectionError) for r in first)
    assert all(r.applied for r in second)


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        Batcher(lambda es: set(), size=0)
