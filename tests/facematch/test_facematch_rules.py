"""Pure rules: geometry, quality judgement, liveness, 1:1 and 1:N matching, templates and
their storage form, sealing, and error-rate arithmetic. No models, no photos."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.facematch import matching
from services.facematch.calibration import MODEL_VERSION, LivenessLimits, LivenessPolicy, QualityLimits
from services.facematch.crypto import open_sealed, seal
from services.facematch.detection import FaceBox, single_face
from services.facematch.evaluation import Pair, rates, roc, separation
from services.facematch.geometry import (
    LEFT_CHEEK,
    LEFT_EYE,
    RIGHT_EYE,
    eye_aspect_ratio,
    shape_disparity,
    yaw_from_keypoints,
    yaw_from_mesh,
)
from services.facematch.liveness import FrameSignal, assess_liveness, blinked
from services.facematch.quality import judge
from services.facematch.reasons import Code, FaceError
from services.facematch.templates import (
    Template,
    open_template,
    seal_template,
    template_from_bytes,
    template_to_bytes,
)

KEY = bytes(range(32))
NOW = datetime(2025, 10, 21, 10, 0, tzinfo=UTC)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128)
    return v / np.linalg.norm(v) * 0.9


def template(student: str, vector: np.ndarray, school: str = "s1", version: str = MODEL_VERSION) -> Template:
    return Template(student, school, version, vector, NOW, f"photos/{student}.jpg")


# ---- geometry -----------------------------------------------------------------------------


def eye_points(opening: float) -> np.ndarray:
    """Mesh-sized array with one eye of width 1 and height `opening`."""
    points = np.zeros((468, 3))
    for eye in (LEFT_EYE, RIGHT_EYE):
        p1, p2, p3, p4, p5, p6 = eye
        points[p1, :2], points[p4, :2] = (0, 0), (1, 0)
        points[p2, :2], points[p6, :2] = (0.33, -opening / 2), (0.33, opening / 2)
        points[p3, :2], points[p5, :2] = (0.66, -opening / 2), (0.66, opening / 2)
    return points


def test_eye_aspect_ratio_is_height_over_width() -> None:
    assert eye_aspect_ratio(eye_points(0.3), LEFT_EYE) == pytest.approx(0.3)
    assert eye_aspect_ratio(eye_points(0.05), RIGHT_EYE) == pytest.approx(0.05)


@pytest.mark.parametrize("angle", [-40.0, -12.0, 0.0, 25.0])
def test_yaw_from_mesh_reads_the_cheek_to_cheek_angle(angle: float) -> None:
    points = np.zeros((468, 3))
    points[LEFT_CHEEK] = (100 * math.cos(math.radians(angle)), 0, 100 * math.sin(math.radians(angle)))
    assert yaw_from_mesh(points) == pytest.approx(angle)


def test_yaw_from_keypoints_is_zero_when_the_nose_is_centred() -> None:
    frontal = ((40, 50), (60, 50), (50, 60), (50, 75), (20, 55), (80, 55))
    turned = ((40, 50), (60, 50), (75, 60), (50, 75), (20, 55), (80, 55))
    assert yaw_from_keypoints(frontal) == pytest.approx(0.0)
    assert yaw_from_keypoints(turned) > 30


def test_shape_disparity_ignores_translation_scale_and_rotation() -> None:
    shape = np.random.default_rng(3).normal(size=(50, 2))
    theta = 0.3
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    moved = 1.7 * shape @ rotation.T + (40.0, -12.0)
    assert shape_disparity(shape, moved) < 1e-12
    other = np.random.default_rng(4).normal(size=(50, 2))
    assert shape_disparity(shape, other) > 0.1


# ---- detection count and quality ----------------------------------------------------------


def box(width: float, x: float = 0.0) -> FaceBox:
    return FaceBox(x, 0.0, width, width, 0.9)


def test_no_face_is_an_error() -> None:
    with pytest.raises(FaceError) as caught:
        single_face([])
    assert caught.value.code == Code.NO_FACE


def test_two_comparable_faces_are_multiple_faces() -> None:
    with pytest.raises(FaceError) as caught:
        single_face([box(100), box(80, 300)])
    assert caught.value.code == Code.MULTIPLE_FACES


def test_a_distant_passer_by_does_not_count() -> None:
    assert single_face([box(200), box(30, 500)]).width == 200


GOOD = {"face_px": 200.0, "sharpness": 300.0, "brightness": 130.0, "yaw": 5.0, "ear": 0.25}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"face_px": 30.0}, Code.FACE_TOO_SMALL),
        ({"sharpness": 5.0}, Code.BLURRED),
        ({"brightness": 20.0}, Code.TOO_DARK),
        ({"brightness": 240.0}, Code.TOO_BRIGHT),
        ({"yaw": -45.0}, Code.HEAD_TURNED),
        ({"ear": 0.08}, Code.EYES_CLOSED),
    ],
)
def test_quality_gate_names_each_failure(change: dict[str, float], code: Code) -> None:
    values = {**GOOD, **change}
    report = judge(
        values["face_px"],
        values["sharpness"],
        values["brightness"],
        values["yaw"],
        values["ear"],
        QualityLimits(),
    )
    assert report.reasons == (code,)
    assert not report.ok


def test_quality_gate_passes_a_good_face_and_reports_values() -> None:
    report = judge(200.0, 300.0, 130.0, 5.0, None, QualityLimits())
    assert report.ok
    assert report.as_dict() == {
        "face_px": 200.0,
        "sharpness": 300.0,
        "brightness": 130.0,
        "yaw_deg": 5.0,
        "ear": None,
    }


# ---- liveness -----------------------------------------------------------------------------

LIMITS = LivenessLimits()
BASE_SHAPE = np.random.default_rng(5).normal(size=(60, 2))


def signal(yaw: float, ear: float | None, jitter: float = 0.0, seed: int = 0) -> FrameSignal:
    noise = np.random.default_rng(seed).normal(scale=jitter, size=BASE_SHAPE.shape)
    return FrameSignal(yaw, ear, BASE_SHAPE + noise)


def test_blink_needs_open_closed_open() -> None:
    assert blinked([0.28, 0.10, 0.27], LIMITS.ear_closed, LIMITS.ear_open)
    assert not blinked([0.28, 0.27, 0.10], LIMITS.ear_closed, LIMITS.ear_open)  # never reopened
    assert not blinked([0.10, 0.28, 0.29], LIMITS.ear_closed, LIMITS.ear_open)
    assert not blinked([0.28, 0.18, 0.27], LIMITS.ear_closed, LIMITS.ear_open)  # a squint


def test_head_turn_passes() -> None:
    result = assess_liveness(
        [signal(0, 0.3, 0.05, 1), signal(8, 0.3, 0.05, 2), signal(14, 0.3, 0.05, 3)], LIMITS
    )
    assert result.passed and result.head_turn and result.max_yaw_delta == pytest.approx(14)


def test_blink_passes_even_when_only_the_eyes_move() -> None:
    result = assess_liveness([signal(0, 0.3), signal(0.5, 0.09), signal(0, 0.29)], LIMITS)
    assert result.passed and result.blink and not result.head_turn


def test_repeated_still_is_static() -> None:
    result = assess_liveness([signal(3, 0.25)] * 4, LIMITS)
    assert result.reasons == (Code.LIVENESS_STATIC,)
    assert result.max_shape_disparity == pytest.approx(0.0)


def test_moving_face_without_blink_or_turn_is_no_action() -> None:
    result = assess_liveness(
        [signal(0, 0.3, 0.05, 1), signal(4, 0.3, 0.05, 2), signal(2, 0.3, 0.05, 3)], LIMITS
    )
    assert result.reasons == (Code.LIVENESS_NO_ACTION,)


@pytest.mark.parametrize("count", [1, 2, 11])
def test_burst_must_have_three_to_ten_frames(count: int) -> None:
    frames = [signal(i * 10, 0.3, 0.05, i) for i in range(count)]
    assert assess_liveness(frames, LIMITS).reasons == (Code.LIVENESS_FRAME_COUNT,)


def test_liveness_measures_are_json_safe() -> None:
    measures = assess_liveness(
        [signal(0, 0.3, 0.05, 1), signal(20, None, 0.05, 2), signal(0, 0.2, 0.05, 3)], LIMITS
    )
    values = measures.as_dict()
    assert values["min_ear"] == 0.2 and values["max_ear"] == 0.3
    assert all(isinstance(v, bool | int | float | type(None)) for v in values.values())


def test_policy_per_channel() -> None:
    policy = LivenessPolicy(required={"app": True, "terminal": False})
    assert policy.requires_liveness("app") and not policy.requires_liveness("terminal")
    with pytest.raises(ValueError):
        policy.requires_liveness("fax")


# ---- matching -----------------------------------------------------------------------------


def test_distance_is_euclidean_to_each_reference_in_order() -> None:
    found = matching.distances(np.zeros(128), [np.full(128, 0.5), np.zeros(128), np.full(128, -1.0)])
    assert found.tolist() == pytest.approx([math.sqrt(128) * 0.5, 0.0, math.sqrt(128)])
    assert matching.distances(np.zeros(128), []).shape == (0,)


def test_threshold_is_inclusive() -> None:
    assert matching.is_match(0.55, 0.55) and not matching.is_match(0.5501, 0.55)


def test_rank_keeps_the_model_version_and_sorts_by_distance() -> None:
    probe = unit(1)
    templates = [
        template("far", unit(2)),
        template("near", probe + 0.01),
        template("old", probe, version="other-model"),
    ]
    ranked = matching.rank(probe, templates, MODEL_VERSION)
    assert [m.student_id for m in ranked] == ["near", "far"]


def test_proxy_flags_another_student_as_close_as_the_claimed_one() -> None:
    a, b = unit(1), unit(2)
    capture = a + 0.005  # student A checks in for student B
    suspect = matching.proxy_suspect(capture, template("B", b), [template("A", a), template("B", b)], 0.55)
    assert suspect is not None and suspect.student_id == "A"


def test_no_proxy_when_the_claimed_student_is_closest() -> None:
    a, b = unit(1), unit(2)
    assert matching.proxy_suspect(a, template("A", a), [template("A", a), template("B", b)], 0.55) is None


def test_no_proxy_when_nobody_else_matches() -> None:
    a, b, stranger = unit(1), unit(2), unit(3)
    assert matching.proxy_suspect(stranger, template("A", a), [template("B", b)], 0.55) is None


def test_duplicates_exclude_the_student_being_enrolled() -> None:
    a = unit(1)
    existing = [template("A", a), template("A2", a + 0.01), template("B", unit(2))]
    assert [m.student_id for m in matching.duplicates(a, existing, 0.55, MODEL_VERSION, "A")] == ["A2"]


# ---- templates and sealing ---------------------------------------------------------------


def test_template_bytes_round_trip() -> None:
    original = template("A", unit(1))
    copy = template_from_bytes(template_to_bytes(original))
    assert (copy.student_id, copy.school_id, copy.model_version, copy.created_at, copy.source_photo_ref) == (
        "A",
        "s1",
        MODEL_VERSION,
        NOW,
        "photos/A.jpg",
    )
    assert np.allclose(copy.vector, original.vector, atol=1e-6)


@pytest.mark.parametrize(
    "data", [b"", b"FMT1", b"XXXX\x00\x00\x00\x02{}", b"FMT1\x00\x00\x00\x02{}" + b"\x00" * 5]
)
def test_unreadable_template_bytes(data: bytes) -> None:
    with pytest.raises(FaceError) as caught:
        template_from_bytes(data)
    assert caught.value.code == Code.TEMPLATE_INVALID


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2048), st.binary(max_size=64))
def test_seal_round_trips_any_bytes(plaintext: bytes, aad: bytes) -> None:
    sealed = seal(KEY, plaintext, aad)
    assert len(sealed) == 1 + 12 + len(plaintext) + 16
    assert open_sealed(KEY, sealed, aad) == plaintext


def test_seal_uses_a_fresh_nonce() -> None:
    assert seal(KEY, b"same", b"") != seal(KEY, b"same", b"")


@pytest.mark.parametrize("tamper", ["key", "aad", "byte", "short"])
def test_tampered_seal_does_not_open(tamper: str) -> None:
    sealed = seal(KEY, b"template bytes", b"student-1")
    key, aad = KEY, b"student-1"
    if tamper == "key":
        key = bytes(32)
    elif tamper == "aad":
        aad = b"student-2"
    elif tamper == "byte":
        sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    else:
        sealed = sealed[:10]
    with pytest.raises(FaceError) as caught:
        open_sealed(key, sealed, aad)
    assert caught.value.code == Code.SEAL_INVALID


def test_sealed_template_is_bound_to_its_student() -> None:
    sealed = seal_template(KEY, template("A", unit(1)))
    assert open_template(KEY, sealed, "A").student_id == "A"
    with pytest.raises(FaceError):
        open_template(KEY, sealed, "B")


# ---- error rates --------------------------------------------------------------------------


def test_far_and_frr_at_a_threshold() -> None:
    pairs = [
        Pair("a", "b", 0.3, True),
        Pair("a", "c", 0.7, True),
        Pair("x", "y", 0.5, False),
        Pair("x", "z", 0.9, False),
    ]
    at = rates(pairs, 0.6)
    assert (at.far, at.frr) == (0.5, 0.5)
    assert [(p.far, p.frr) for p in roc(pairs, [0.2, 1.0])] == [(0.0, 1.0), (1.0, 0.0)]
    assert separation(pairs) == (0.7, 0.5)
