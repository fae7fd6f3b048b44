"""The whole pipeline on real photographs (../shared/faces) with the real models.

Partial faces (obama_partial_*: the face cut by the frame edge) are accepted as genuine when
the detector finds the face and the quality gate passes it, which it does for both; a face cut
so far that it is not found is NO_FACE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.facematch import matching
from services.facematch.calibration import ID_CARD, LIVE, MODEL_VERSION
from services.facematch.decode import decode_image
from services.facematch.detection import FaceDetector
from services.facematch.engine import FaceAnalysis, FaceEngine
from services.facematch.evaluation import labelled_images, simulated_id_card
from services.facematch.reasons import Code, FaceError
from services.facematch.templates import Template

from .conftest import STILL, encode, jpeg_header_only, png_header_only, rgb_of

pytestmark = pytest.mark.faces

Photo = Callable[[str], bytes]
NOW = datetime(2025, 10, 21, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def analysed(engine: FaceEngine, faces_dir: Path) -> dict[str, tuple[str, FaceAnalysis]]:
    """file name -> (person, analysis) for every single-face photo (odd/ is obama_2 as RGBA)."""
    found = {}
    for image in labelled_images(faces_dir, exclude=["group"], alias={"odd": "obama"}):
        found[image.path.name] = (image.person, engine.analyse(image.path.read_bytes()))
    return found


def template_of(engine: FaceEngine, data: bytes, student: str, school: str = "school-1") -> Template:
    return Template(student, school, MODEL_VERSION, engine.analyse(data).embedding, NOW, f"{student}.jpg")


def shifted(data: bytes, dx: float, dy: float, scale: float = 1.0) -> bytes:
    pixels = rgb_of(data)
    height, width = pixels.shape[:2]
    matrix = np.array([[scale, 0, dx + (1 - scale) * width / 2], [0, scale, dy + (1 - scale) * height / 2]])
    moved = cv2.warpAffine(pixels, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    return encode(np.asarray(moved, dtype=np.uint8), "JPEG", quality=92)


# ---- 1:1 accuracy on every pair -----------------------------------------------------------


def test_every_single_face_photo_is_embedded(analysed: dict[str, tuple[str, FaceAnalysis]]) -> None:
    assert len(analysed) == 21
    for name, (_, analysis) in analysed.items():
        assert analysis.embedding.shape == (128,), name
        assert analysis.quality.ok, (name, analysis.quality.reasons)


def test_every_genuine_pair_matches_and_every_impostor_pair_does_not(
    analysed: dict[str, tuple[str, FaceAnalysis]],
) -> None:
    wrong = []
    for (name_a, (person_a, a)), (name_b, (person_b, b)) in combinations(analysed.items(), 2):
        same = matching.is_match(float(matching.distances(a.embedding, [b.embedding])[0]), LIVE.threshold)
        if same != (person_a == person_b):
            wrong.append((name_a, name_b))
    assert wrong == []


def test_genuine_capture_verifies_end_to_end(engine: FaceEngine, photo: Photo) -> None:
    enrolled = template_of(engine, photo("kit_harington/kit_harington_1.jpg"), "kit")
    outcome = engine.verify([photo("kit_harington/kit_harington_3.jpg")], enrolled, [enrolled], STILL)
    assert outcome.accepted and outcome.reasons == []
    assert outcome.distance is not None and outcome.distance <= outcome.threshold == LIVE.threshold
    assert outcome.embedding is not None and outcome.model_version == MODEL_VERSION
    json.dumps(outcome.as_dict())  # JSON-safe


def test_impostor_capture_is_no_match(engine: FaceEngine, photo: Photo) -> None:
    enrolled = template_of(engine, photo("rose_leslie/rose_leslie_1.jpg"), "rose")
    outcome = engine.verify([photo("biden/biden_1.jpg")], enrolled, [enrolled], STILL)
    assert not outcome.accepted and outcome.reasons == [Code.NO_MATCH]


@pytest.mark.parametrize("name", ["obama/obama_partial_1.jpg", "obama/obama_partial_2.jpg"])
def test_partial_face_is_matched_as_genuine(engine: FaceEngine, photo: Photo, name: str) -> None:
    enrolled = template_of(engine, photo("obama/obama_2.jpg"), "obama")
    assert engine.verify([photo(name)], enrolled, [], STILL).accepted


@pytest.mark.parametrize("name", ["obama/obama_240p.jpg", "obama/obama_small.jpg"])
def test_low_resolution_capture_matches_another_photo(engine: FaceEngine, photo: Photo, name: str) -> None:
    enrolled = template_of(engine, photo("obama/obama_4.jpg"), "obama")
    assert engine.verify([photo(name)], enrolled, [], STILL).accepted


@pytest.mark.parametrize("name", ["alex_lacamoire/alex_lacamoire_3.png", "odd/rgba_32bit.png"])
def test_rgba_png_matches(engine: FaceEngine, photo: Photo, name: str) -> None:
    person = "alex_lacamoire/alex_lacamoire_1.jpg" if "alex" in name else "obama/obama_1.jpg"
    enrolled = template_of(engine, photo(person), "p")
    assert engine.verify([photo(name)], enrolled, [], STILL).accepted


def test_greyscale_capture_matches_colour_enrolment(engine: FaceEngine, photo: Photo) -> None:
    grey = cv2.cvtColor(rgb_of(photo("biden/biden_2.jpg")), cv2.COLOR_RGB2GRAY)
    enrolled = template_of(engine, photo("biden/biden_1.jpg"), "biden")
    assert engine.verify(
        [encode(np.asarray(grey, np.uint8), "JPEG", quality=90)], enrolled, [], STILL
    ).accepted


def test_exif_rotated_capture_matches(engine: FaceEngine, photo: Photo) -> None:
    from PIL import Image

    upright = rgb_of(photo("rose_leslie/rose_leslie_2.jpg"))
    exif = Image.Exif()
    exif[0x0112] = 6  # pixels stored turned 90 degrees counter-clockwise
    data = encode(np.ascontiguousarray(np.rot90(upright)), "JPEG", quality=92, exif=exif.tobytes())
    enrolled = template_of(engine, photo("rose_leslie/rose_leslie_1.jpg"), "rose")
    outcome = engine.verify([data], enrolled, [], STILL)
    assert outcome.accepted, outcome.reasons
    assert abs(float(outcome.quality["yaw_deg"] or 0.0)) < 15  # found upright, not sideways


def test_tightly_cropped_face_is_still_detected(
    photo: Photo, analysed: dict[str, tuple[str, FaceAnalysis]]
) -> None:
    pixels = decode_image(photo("obama/obama_1.jpg"))
    face = analysed["obama_1.jpg"][1].face
    x0, y0 = int(face.x + 0.1 * face.width), int(face.y + 0.1 * face.height)
    tight = pixels[y0 : y0 + int(0.8 * face.height), x0 : x0 + int(0.8 * face.width)]
    found = FaceDetector().detect(np.ascontiguousarray(tight))
    assert len(found) == 1


# ---- rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["group/two_people.jpg", "group/obama_and_biden.jpg", "group/kit_with_rose.jpg"]
)
def test_group_picture_is_multiple_faces(engine: FaceEngine, photo: Photo, name: str) -> None:
    with pytest.raises(FaceError) as caught:
        engine.analyse(photo(name))
    assert caught.value.code == Code.MULTIPLE_FACES
    enrolled = Template("x", "s", MODEL_VERSION, np.zeros(128), NOW)
    assert engine.verify([photo(name)], enrolled, [], STILL).reasons == [Code.MULTIPLE_FACES]


@pytest.mark.parametrize(
    ("pixels", "code"),
    [
        (np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8), Code.NO_FACE),
        (np.full((480, 640, 3), 128, np.uint8), Code.NO_FACE),
        (np.zeros((1, 1, 3), np.uint8), Code.IMAGE_TOO_SMALL),
    ],
)
def test_faceless_images_are_rejected(engine: FaceEngine, pixels: np.ndarray, code: Code) -> None:
    enrolled = Template("x", "s", MODEL_VERSION, np.zeros(128), NOW)
    outcome = engine.verify([encode(pixels, "PNG")], enrolled, [], STILL)
    assert outcome.reasons == [code] and outcome.embedding is None


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda d: b"", Code.EMPTY_IMAGE),
        (lambda d: d[: len(d) // 2], Code.CORRUPT_IMAGE),
        (lambda d: b"not an image at all", Code.UNSUPPORTED_FORMAT),
    ],
)
def test_broken_files_give_their_code_through_the_engine(
    engine: FaceEngine, photo: Photo, make: Callable[[bytes], bytes], code: Code
) -> None:
    enrolled = Template("x", "s", MODEL_VERSION, np.zeros(128), NOW)
    outcome = engine.verify([make(photo("obama/obama_1.jpg"))], enrolled, [], STILL)
    assert outcome.reasons == [code] and not outcome.accepted


@pytest.mark.parametrize(
    "bomb", [png_header_only(8000, 6000), jpeg_header_only(8000, 6000)], ids=["PNG", "JPEG"]
)
@pytest.mark.parametrize(("channel", "position"), [(STILL, 0), ("app", 2), ("app", 1)])
def test_a_burst_with_one_oversized_frame_is_refused_before_any_frame_is_decoded(
    engine: FaceEngine,
    photo: Photo,
    monkeypatch: pytest.MonkeyPatch,
    bomb: bytes,
    channel: str,
    position: int,
) -> None:
    frames = [photo(name) for name in POSES] if channel == "app" else [photo(POSES[0])]
    frames[position] = bomb  # 48 Mpx declared in a ~100-byte file
    analysed: list[bytes] = []
    monkeypatch.setattr(engine, "analyse", lambda data, *args, **kwargs: analysed.append(data))
    enrolled = Template("x", "s", MODEL_VERSION, np.zeros(128), NOW)
    for outcome in (engine.verify(frames, enrolled, [], channel), engine.enrol(frames, None, channel)):
        assert outcome.reasons == [Code.IMAGE_TOO_LARGE] and not outcome.accepted
    assert analysed == []  # no frame decoded, detected or embedded


@pytest.mark.parametrize(
    ("transform", "code"),
    [
        (lambda p: (p * 0.12).astype(np.uint8), Code.TOO_DARK),
        (lambda p: np.clip(p * 0.35 + 172, 0, 255).astype(np.uint8), Code.TOO_BRIGHT),
        (lambda p: np.asarray(cv2.GaussianBlur(p, (0, 0), 9), np.uint8), Code.BLURRED),
        (
            lambda p: np.asarray(cv2.resize(p, (128, 96), interpolation=cv2.INTER_AREA), np.uint8),
            Code.FACE_TOO_SMALL,
        ),
    ],
)
def test_quality_gate_on_degraded_photos(
    engine: FaceEngine, photo: Photo, transform: Callable[[np.ndarray], np.ndarray], code: Code
) -> None:
    degraded = encode(np.ascontiguousarray(transform(rgb_of(photo("obama/obama_small.jpg")))), "PNG")
    analysis = engine.analyse(degraded)
    assert code in analysis.quality.reasons, analysis.quality.as_dict()
    enrolled = template_of(engine, photo("obama/obama_1.jpg"), "obama")
    outcome = engine.verify([degraded], enrolled, [], STILL)
    assert not outcome.accepted and code in outcome.reasons and outcome.quality


def test_template_of_another_model_version_must_be_re_enrolled(engine: FaceEngine, photo: Photo) -> None:
    old = Template("x", "s", "dlib-resnet-v0", np.zeros(128), NOW)
    assert engine.verify([photo("obama/obama_1.jpg")], old, [], STILL).reasons == [
        Code.MODEL_VERSION_MISMATCH
    ]


def test_stale_template_is_re_enrolled_from_its_photo(engine: FaceEngine, photo: Photo) -> None:
    old = Template("x", "s", "dlib-resnet-v0", np.zeros(128), NOW, "obama/obama_1.jpg")
    later = datetime(2026, 3, 1, tzinfo=UTC)
    renewed = engine.reenrol(old, photo(old.source_photo_ref or ""), later)
    assert (renewed.model_version, renewed.created_at, renewed.student_id) == (MODEL_VERSION, later, "x")
    assert engine.verify([photo("obama/obama_4.jpg")], renewed, [], STILL).accepted


def test_unknown_channel_is_a_caller_error(engine: FaceEngine, photo: Photo) -> None:
    with pytest.raises(FaceError) as caught:
        engine.enrol([photo("obama/obama_1.jpg")], None, "fax")
    assert caught.value.code == Code.INVALID_REQUEST


# ---- liveness -----------------------------------------------------------------------------

POSES = ["obama/obama_1.jpg", "obama/obama_2.jpg", "obama/obama_4.jpg"]  # yaw about +3, -15, +18


def test_burst_with_head_turn_is_live(engine: FaceEngine, photo: Photo) -> None:
    enrolled = template_of(engine, photo("obama/obama_3.jpg"), "obama")
    outcome = engine.verify([photo(n) for n in POSES], enrolled, [enrolled], "app")
    assert outcome.accepted, outcome.reasons
    live = outcome.liveness
    assert live["passed"] and live["head_turn"]
    assert float(live["max_yaw_delta"]) >= 12  # type: ignore[arg-type]
    assert {"min_ear", "max_ear", "max_shape_disparity", "identity_spread"} <= live.keys()
    json.dumps(outcome.as_dict())


def test_repeated_still_is_static(engine: FaceEngine, photo: Photo) -> None:
    still = photo("obama/obama_1.jpg")
    outcome = engine.enrol([still, still, still], None, "terminal")
    assert outcome.reasons == [Code.LIVENESS_STATIC] and outcome.embedding is None


@pytest.mark.parametrize(
    "moves",
    [[(0, 0), (3, 2), (-4, 3)], [(0, 0, 1.0), (0, 0, 1.03), (2, -2, 0.97)]],
    ids=["shifted", "scaled"],
)
def test_slightly_moved_still_is_static(
    engine: FaceEngine, photo: Photo, moves: list[tuple[float, ...]]
) -> None:
    still = photo("obama/obama_720p.jpg")
    outcome = engine.enrol([shifted(still, *m) for m in moves], None, "app")
    assert outcome.reasons == [Code.LIVENESS_STATIC]
    assert float(outcome.liveness["max_shape_disparity"]) < 0.0015  # type: ignore[arg-type]


def test_burst_that_changes_person_is_rejected(engine: FaceEngine, photo: Photo) -> None:
    frames = [photo("obama/obama_1.jpg"), photo("biden/biden_2.jpg"), photo("obama/obama_4.jpg")]
    assert Code.LIVENESS_IDENTITY_CHANGED in engine.enrol(frames, None, "app").reasons


def test_liveness_needs_at_least_three_frames(engine: FaceEngine, photo: Photo) -> None:
    outcome = engine.enrol([photo(POSES[0]), photo(POSES[1])], None, "app")
    assert outcome.reasons == [Code.LIVENESS_FRAME_COUNT]


# ---- 1:N: proxies and duplicates ----------------------------------------------------------


@pytest.fixture(scope="module")
def school(engine: FaceEngine, photo: Photo) -> list[Template]:
    return [
        template_of(engine, photo("obama/obama_1.jpg"), "student-obama"),
        template_of(engine, photo("biden/biden_1.jpg"), "student-biden"),
        template_of(engine, photo("kit_harington/kit_harington_1.jpg"), "student-kit"),
        template_of(engine, photo("rose_leslie/rose_leslie_1.jpg"), "student-rose"),
    ]


def test_proxy_check_in_is_flagged(engine: FaceEngine, photo: Photo, school: list[Template]) -> None:
    biden = school[1]
    outcome = engine.verify([photo("obama/obama_2.jpg")], biden, school, STILL)  # Obama checks in for Biden
    assert not outcome.accepted
    assert Code.PROXY_SUSPECT in outcome.reasons and outcome.suspected_student_id == "student-obama"


def test_honest_check_in_is_not_a_proxy(engine: FaceEngine, photo: Photo, school: list[Template]) -> None:
    outcome = engine.verify([photo("biden/biden_2.jpg")], school[1], school, STILL)
    assert outcome.accepted and outcome.suspected_student_id is None


def test_same_face_under_another_identity_is_a_duplicate(
    engine: FaceEngine, photo: Photo, school: list[Template]
) -> None:
    outcome = engine.enrol(
        [photo("kit_harington/kit_harington_3.jpg")],
        None,
        STILL,
        existing_templates=school,
        student_id="new-student",
    )
    assert outcome.reasons == [Code.DUPLICATE_IDENTITY] and outcome.suspected_student_id == "student-kit"
    again = engine.enrol(
        [photo("kit_harington/kit_harington_3.jpg")],
        None,
        STILL,
        existing_templates=school,
        student_id="student-kit",
    )
    assert again.accepted and again.embedding is not None


# ---- ID-card path -------------------------------------------------------------------------


def id_card_of(photo: Photo, name: str, analysed: dict[str, tuple[str, FaceAnalysis]]) -> bytes:
    data = photo(name)
    return simulated_id_card(decode_image(data), analysed[Path(name).name][1].face)


def test_id_card_photo_is_small_and_still_analysed(
    engine: FaceEngine, photo: Photo, analysed: dict[str, tuple[str, FaceAnalysis]]
) -> None:
    card = id_card_of(photo, "obama/obama_1.jpg", analysed)
    assert decode_image(card).shape[:2] == (126, 102)
    analysis = engine.analyse(card, id_photo=True)
    assert analysis.quality.ok and analysis.quality.face_px < 80  # measured in the card's own pixels


def test_enrolment_confirmed_by_id_card(
    engine: FaceEngine, photo: Photo, analysed: dict[str, tuple[str, FaceAnalysis]]
) -> None:
    card = id_card_of(photo, "rose_leslie/rose_leslie_2.jpg", analysed)
    outcome = engine.enrol([photo("rose_leslie/rose_leslie_1.jpg")], card, STILL)
    assert outcome.accepted and outcome.threshold == ID_CARD.threshold


def test_enrolment_by_someone_else_than_the_card_holder(
    engine: FaceEngine, photo: Photo, analysed: dict[str, tuple[str, FaceAnalysis]]
) -> None:
    card = id_card_of(photo, "kit_harington/kit_harington_2.jpg", analysed)
    outcome = engine.enrol([photo("obama/obama_1.jpg")], card, STILL)
    assert outcome.reasons == [Code.NO_MATCH]
    assert outcome.embedding is not None  # the live photo may still be stored (provisional)


def test_unreadable_id_photo(engine: FaceEngine, photo: Photo) -> None:
    outcome = engine.enrol([photo("obama/obama_1.jpg")], b"\xff\xd8\xff\x00broken", STILL)
    assert outcome.reasons == [Code.ID_PHOTO_UNUSABLE, Code.CORRUPT_IMAGE]


_BLAS_THREADS = """
import ctypes, sys
import services.facematch.embedding  # loads dlib, which links the system OpenBLAS
paths = {line.split()[-1] for line in open('/proc/self/maps') if 'libopenblas' in line}
dlib_blas = [p for p in paths if '.libs/' not in p]  # not numpy's or scipy's bundled copies
assert len(dlib_blas) == 1, paths
print(ctypes.CDLL(dlib_blas[0]).openblas_get_num_threads())
"""


@pytest.mark.parametrize(("preset", "expected"), [(None, "1"), ("2", "2")])
def test_dlib_blas_runs_one_thread_per_process_unless_the_environment_says_otherwise(
    preset: str | None, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", _BLAS_THREADS], env=env, cwd=repo, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip() == expected


def test_the_engine_runs_opencv_on_one_thread(engine: FaceEngine) -> None:
    assert cv2.getNumThreads() == 1
