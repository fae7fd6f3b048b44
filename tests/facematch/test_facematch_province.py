"""The province's 1:N search (issue 10): the in-memory template index, its refresh from the
sealed rows, and what an enrolment held as a duplicate reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from services.facematch.calibration import LIVE, MODEL_VERSION
from services.facematch.engine import Outcome
from services.facematch.index import TemplateIndex
from services.facematch.matching import distances
from services.facematch.province import OVERLAP, ProvinceTemplates
from services.facematch.reasons import Code
from services.facematch.results import challenge_of, duplicate_held, with_duplicates
from services.facematch.templates import Template

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def vectors(count: int, seed: int = 1) -> np.ndarray:
    """Random templates whose pairs are about 0.9 apart, as dlib's impostors are."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, 128)) * (0.9 / np.sqrt(256))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_the_index_finds_exactly_what_a_full_scan_finds(dtype: Any) -> None:
    stored = vectors(5000)
    index = TemplateIndex(dtype=dtype, capacity=16, block_rows=777)  # grows, and searches in blocks
    for i, v in enumerate(stored):
        index.put(f"S{i}", f"SC{i % 7}", v)
    rng = np.random.default_rng(2)
    for k in range(0, 5000, 250):
        probe = stored[k] + rng.standard_normal(128) * 0.02
        full = distances(probe, list(stored))
        expected = sorted((float(d), f"S{i}") for i, d in enumerate(full) if d <= 0.55)
        hits = index.search(probe, 0.55)
        assert [h.student_id for h in hits] == [sid for _, sid in expected][:10]
        assert hits[0].school_id == f"SC{k % 7}"
        tolerance = 1e-6 if dtype == np.float32 else 2e-3
        assert abs(hits[0].distance - expected[0][0]) < tolerance
        assert index.search(probe, 0.55, exclude=f"S{k}") == hits[1:]


def test_replacing_and_removing_templates() -> None:
    stored = vectors(3)
    index = TemplateIndex(capacity=1)
    for i, v in enumerate(stored):
        index.put(f"S{i}", "SC1", v)
    index.put("S0", "SC2", stored[2])  # S0 re-enrolled with another face, at another school
    assert len(index) == 3
    assert {h.student_id for h in index.search(stored[2], 0.1)} == {"S0", "S2"}
    index.remove("S0")
    index.remove("nobody")
    assert len(index) == 2 and [h.student_id for h in index.search(stored[2], 0.1)] == ["S2"]
    assert index.search(stored[0], 0.1) == []
    assert TemplateIndex().search(stored[0], 0.5) == []


class FakeRepo:
    """Rows of face_templates as changed_since returns them."""

    def __init__(self) -> None:
        self.rows: list[tuple[Template, datetime]] = []
        self.asked: list[datetime | None] = []

    def write(self, student: str, school: str, vector: np.ndarray, at: datetime,
              model: str = MODEL_VERSION) -> None:
        self.rows = [r for r in self.rows if r[0].student_id != student]
        self.rows.append((Template(student, school, model, vector, at), at))

    def count(self) -> int:
        return len(self.rows)

    def changed_since(self, since: datetime | None) -> list[tuple[Template, datetime]]:
        self.asked.append(since)
        return sorted((r for r in self.rows if since is None or r[1] > since), key=lambda r: r[1])


def test_the_province_index_loads_once_then_reads_only_what_changed() -> None:
    stored = vectors(4)
    repo = FakeRepo()
    for i in range(3):
        repo.write(f"S{i}", "SC1", stored[i], T0 + timedelta(minutes=i))
    province = ProvinceTemplates(MODEL_VERSION)
    assert province.refresh(repo) == 3  # type: ignore[arg-type]
    assert repo.asked == [None] and province.seen == T0 + timedelta(minutes=2)
    repo.write("S3", "SC2", stored[3], T0 + timedelta(minutes=10))
    repo.write("S1", "SC1", stored[1], T0 + timedelta(minutes=11), model="older-model")
    assert province.refresh(repo) == 3  # type: ignore[arg-type]  # S2 again (the overlap), S3, S1
    assert repo.asked[1] == T0 + timedelta(minutes=2) - timedelta(seconds=30)
    assert province.refresh(repo) == 1  # type: ignore[arg-type]  # only the overlap with the last one seen
    assert [h.student_id for h in province.duplicates(stored[3], 0.1, "NEW")] == ["S3"]
    assert province.duplicates(stored[1], 0.1, "NEW") == []  # another model's template is not searched
    assert province.duplicates(stored[3], 0.1, "S3") == []  # a student is no duplicate of themself


def outcome(reasons: list[str], embedding: np.ndarray | None) -> Outcome:
    return Outcome(accepted=not reasons, reasons=reasons, distance=0.3, threshold=0.55, quality={},
                   liveness={}, embedding=embedding)


def test_an_enrolment_whose_face_is_enrolled_elsewhere_is_held_naming_both_students() -> None:
    stored = vectors(2)
    province = ProvinceTemplates(MODEL_VERSION)
    province.index.put("B0001", "SC2", stored[0])
    capture = {"capture_id": "c1", "student_id": "A0001", "school_id": "SC1", "purpose": "enrolment"}
    hits = province.duplicates(stored[0], LIVE.threshold, "A0001")
    held = with_duplicates(capture, outcome([], stored[0]), hits)
    assert not held.accepted and held.reasons == [Code.DUPLICATE_IDENTITY]
    assert held.suspected_student_id == "B0001"
    event = duplicate_held(capture, held, hits, LIVE.threshold)
    assert event is not None and (event.student_id, event.school_id) == ("A0001", "SC1")
    assert (event.other_student_id, event.other_school_id) == ("B0001", "SC2")
    payload = event.to_payload()
    assert not any(isinstance(v, list | bytes) for v in payload.values())  # no template, no image
    fresh = province.duplicates(stored[1], LIVE.threshold, "A0001")
    assert with_duplicates(capture, outcome([], stored[1]), fresh).accepted
    assert duplicate_held(capture, outcome([], stored[1]), fresh, LIVE.threshold) is None
    spot = {**capture, "purpose": "spot_check"}
    assert with_duplicates(spot, outcome([], stored[0]), hits).accepted


def test_the_challenge_travels_in_the_capture() -> None:
    assert challenge_of({"purpose": "spot_check"}) is None
    challenge = challenge_of({"challenge_action": "turn_left", "frame_times_ms": [5, 205, 405]})
    assert challenge is not None and challenge.action == "turn_left"
    assert challenge.frame_times_ms == (5, 205, 405)
    untimed = challenge_of({"challenge_action": "blink", "frame_times_ms": None})
    assert untimed is not None and untimed.frame_times_ms is None


def test_a_refresh_during_the_first_load_waits_for_it_and_never_loads_twice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up load (service.py ProvinceWarmup) and an enrolment's refresh on two threads:
    the enrolment waits for the load, then reads only what changed; progress is reported."""
    import threading

    from services.facematch import province as province_module

    monkeypatch.setattr(province_module, "PAUSE_EVERY", 2)
    stored = vectors(6)
    repo = FakeRepo()
    for i in range(6):
        repo.write(f"S{i}", "SC1", stored[i], T0 + timedelta(minutes=i))
    province = ProvinceTemplates(MODEL_VERSION)
    assert province.report() == "not loaded" and not province.loaded
    paused, go_on = threading.Event(), threading.Event()
    reports: list[str] = []

    def pause() -> None:  # the first pause: hold the load half-way
        if not paused.is_set():
            reports.append(province.report())
            paused.set()
            assert go_on.wait(10)

    warm = threading.Thread(target=province.refresh, args=(repo, pause))
    warm.start()
    assert paused.wait(10)
    assert reports == ["loading province templates: 2 of about 6 rows"]
    enrolment_read: list[int] = []
    enrolment = threading.Thread(target=lambda: enrolment_read.append(province.refresh(repo)))  # type: ignore[arg-type]
    enrolment.start()
    enrolment.join(0.3)
    assert enrolment.is_alive() and not enrolment_read  # waiting for the load, not loading itself
    go_on.set()
    warm.join(10)
    enrolment.join(10)
    assert province.loaded and len(province.index) == 6
    assert repo.asked == [None, T0 + timedelta(minutes=5) - OVERLAP]  # one whole load, then only the overlap
    assert enrolment_read == [1] and province.full_loads == 1
    assert province.report().startswith("ready: 6 templates (loaded in ")
    assert province.refresh(repo) == 1  # type: ignore[arg-type]
    assert province.full_loads == 1
