"""One contract for every EventStore implementation; subclassed per backend."""

from __future__ import annotations

import uuid

import pytest

from backbone.eventstore import ConcurrencyError, EventStore, IdempotencyConflict
from contracts import Actor, build_envelope
from contracts.envelope import Envelope
from contracts.events import CheckClosed

ACTOR = Actor(kind="system", id="test")


def event(stream: str, n: int = 0) -> Envelope:
    return build_envelope(CheckClosed(check_id=f"c{n}", closed_at="2026-10-21T15:00:00+08:00"),
                          stream=stream, actor=ACTOR)


class EventStoreContract:
    store: EventStore

    def stream(self) -> str:
        return f"test-{uuid.uuid4().hex[:8]}"

    def test_append_assigns_stream_versions_and_global_positions(self) -> None:
        s = self.stream()
        stored = self.store.append([event(s, 1), event(s, 2)])
        assert [e.stream_version for e in stored] == [1, 2]
        assert stored[0].position is not None and stored[1].position == stored[0].position + 1
        assert stored[0].recorded_at is not None

    def test_expected_version_mismatch_raises_concurrency_error(self) -> None:
        s = self.stream()
        self.store.append([event(s)], expected_version=0)
        with pytest.raises(ConcurrencyError):
            self.store.append([event(s)], expected_version=0)
        self.store.append([event(s)], expected_version=1)
        assert [e.stream_version for e in self.store.read_stream(s)] == [1, 2]

    def test_append_is_idempotent_by_event_id(self) -> None:
        s = self.stream()
        e = event(s)
        first = self.store.append([e])
        again = self.store.append([e])
        assert [x.position for x in again] == [x.position for x in first]
        assert len(self.store.read_stream(s)) == 1

    def test_partly_stored_append_is_refused(self) -> None:
        s = self.stream()
        e = event(s)
        self.store.append([e])
        with pytest.raises(IdempotencyConflict):
            self.store.append([e, event(s)])
        assert len(self.store.read_stream(s)) == 1

    def test_read_all_is_in_position_order_and_resumes_after_a_position(self) -> None:
        s = self.stream()
        stored = self.store.append([event(s, i) for i in range(5)])
        after = stored[1].position
        assert after is not None
        read = [e.event_id for e in self.store.read_all(after_position=after) if e.stream == s]
        assert read == [e.event_id for e in stored[2:]]

    def test_read_all_as_of_excludes_events_recorded_later(self) -> None:
        s = self.stream()
        (first,) = self.store.append([event(s, 1)])
        self.store.append([event(s, 2)])
        assert first.recorded_at is not None
        seen = [e.event_id for e in self.store.read_all(recorded_until=first.recorded_at) if e.stream == s]
        assert seen == [first.event_id]

    def test_old_schema_versions_are_upcast_when_read(self) -> None:
        from contracts.events import StudentRegisteredV1

        s = self.stream()
        old = StudentRegisteredV1(student_id="S0001", school_id="SCH1", name_masked="张*", id_number_hash="h",
                                  id_number_masked="110101********0015", grade=2, class_name="1", major="m",
                                  enrolment_year=2025, enrolment_season="autumn", proposed_aid=True)
        self.store.append([build_envelope(old, stream=s, actor=ACTOR)])
        (read,) = self.store.read_stream(s)
        assert read.schema_version == 2
        assert read.payload["school"] == {"school_id": "SCH1", "city": "unknown", "county": "unknown"}

    def test_an_event_breaking_its_contract_is_refused_at_append(self) -> None:
        from dataclasses import replace

        from contracts.registry import ContractError

        broken = replace(event("broken"), payload={"check_id": 1})
        with pytest.raises(ContractError, match="check_id"):
            self.store.append([broken])
        assert self.store.read_stream("broken") == []
