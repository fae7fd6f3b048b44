"""The fold registry: one registration (``@folds``) is all an event type needs to reach the rules,
the store's type filter, the low-memory replay's split and the live projection's scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from contracts.events import ALL_EVENTS, AppealClosedUnhandled
from services.eligibility import logsource, replay
from services.eligibility.domain.facts import (
    FOLDS,
    SHARED_KINDS,
    Impact,
    Ledger,
    Payload,
    folds,
    handled_types,
    impact,
    load_shared,
    shared_rows,
    shared_types,
    student_types,
)
from services.eligibility.policyfile import load_policy_book
from tests.eligibility.elig_builders import Log

SHARED = ["AppealClosedUnhandled", "AppealFiled", "CheckClosed", "CheckOpened", "MonthResultsPublished",
          "NationalRosterImported"]


@pytest.fixture
def new_type() -> Iterator[list[tuple[str, str]]]:
    """Registers a fold for a made-up event type ``TestNoted`` (removed after the test)."""
    folded: list[tuple[str, str]] = []

    @folds("TestNoted")
    def _noted(ledger: Ledger, eid: str, ts: float, p: Payload) -> None:
        folded.append((p["student_id"], eid))

    yield folded
    del FOLDS["TestNoted"]


def test_the_registry_covers_what_the_rules_read_and_splits_shared_from_student_types() -> None:
    contract_types = {cls.TYPE for cls in ALL_EVENTS}
    assert set(FOLDS) <= contract_types
    # a submission and its verdicts: a capture taken in time whose verdict is late is "pending"
    assert {"CaptureSubmitted", "CaptureVerified", "CaptureRejected"} <= set(FOLDS)
    assert {"SchoolRegistered", "TerminalRegistered", "PlacementRefused"}.isdisjoint(FOLDS)
    assert handled_types() == sorted(FOLDS)
    assert shared_types() == SHARED
    assert student_types() == sorted(set(FOLDS) - set(SHARED))
    assert {FOLDS[t].shared for t in SHARED} == set(SHARED_KINDS)
    for event_type in student_types():  # the low-memory replay reads them by payload student_id
        model = next(c for c in ALL_EVENTS if event_type == c.TYPE)
        assert "student_id" in model.__dataclass_fields__, event_type


def test_one_registration_reaches_the_fold_the_filters_and_the_impact(
    new_type: list[tuple[str, str]]
) -> None:
    assert "TestNoted" in handled_types() and "TestNoted" in student_types()
    assert "TestNoted" not in shared_types()
    assert impact("TestNoted", {"student_id": "S7"}) == Impact(students=frozenset(["S7"]))
    Ledger().apply_fields("TestNoted", "e1", 0.0, {"student_id": "S7"})
    assert new_type == [("S7", "e1")]
    assert impact("NotFolded", {"student_id": "S7"}) is None


def test_the_store_read_and_the_low_memory_split_follow_the_registry(new_type: list[tuple[str, str]],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from backbone.eventstore import PostgresEventStore

    asked: list[dict[str, Any]] = []

    def read_rows(self: Any, **kwargs: Any) -> Iterator[tuple[Any, ...]]:
        asked.append(kwargs)
        return iter(())

    monkeypatch.setattr(PostgresEventStore, "read_rows", read_rows)
    assert list(logsource.postgres_events("postgresql://nowhere")) == []
    assert "TestNoted" in asked[-1]["types"] and asked[-1]["types"] == handled_types()
    assert list(replay.replay_by_student("postgresql://nowhere", load_policy_book())) == []
    shared_read, student_read = asked[-2:]
    assert shared_read["types"] == SHARED and not shared_read["by_student"]
    assert "TestNoted" in student_read["types"] and student_read["by_student"]


def test_a_registration_is_refused_twice_or_with_an_unknown_shared_kind() -> None:
    with pytest.raises(ValueError, match="already has a fold"):
        folds("AbsenceMarked")
    with pytest.raises(ValueError, match="a shared fold names one of"):
        folds("TestShared", shared="nothing", key=lambda p: (p["x"],), impact=lambda p: Impact())
    assert "TestShared" not in FOLDS


def test_shared_facts_read_back_from_their_stored_rows() -> None:
    log = Log()
    log.ordinary("S1")
    checks = log.routine_checks()
    log.check("T-1", "2026-12", date(2026, 12, 15), kind="targeted", students=["S1"])
    log.published("2026-11", "2026-12-01")
    log.roster("2026-autumn", ["S1", "S2"], parts=2)
    filing = log.appeal("S1", "2026-11", "2026-12-02")
    log.add(AppealClosedUnhandled(filing_id=filing, school_id="SCH1", month="2026-11", student_ids=["S1"],
                                  closed_on="2026-12-31", reason="not ruled in 2026-12"),
            datetime(2027, 1, 1, 0, 5, tzinfo=UTC), f"appeal-{filing}")
    ledger = Ledger()
    for e in log.events:
        ledger.apply(e)
    rows = list(shared_rows(ledger.shared))
    assert {kind for kind, _, _ in rows} == set(SHARED_KINDS)
    loaded = load_shared(rows)
    assert loaded.checks == ledger.shared.checks and set(loaded.checks) >= set(checks.values())
    assert (loaded.closings, loaded.publications) == (ledger.shared.closings, ledger.shared.publications)
    assert (loaded.filings, loaded.filings_closed) == (ledger.shared.filings, ledger.shared.filings_closed)
    assert [e.objected_on for _, e in loaded.filings_of("S1", "2026-11")] == ["2026-12-02"]
    assert loaded.closed_for(filing, "S1") is not None and loaded.closed_for(filing, "S2") is None
    without_entries = {s: {i: {n: p._replace(entries={}) for n, p in parts.items()}
                           for i, parts in imports.items()}
                       for s, imports in ledger.shared.rosters.items()}
    assert loaded.rosters == without_entries
