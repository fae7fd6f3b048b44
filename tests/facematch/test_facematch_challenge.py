"""Challenged liveness (issue 10): the burst must answer the server's challenge (blink, turn
left, turn right) in one continuous take. Real photos of ../shared/faces and frame sequences
made from them (tests/facematch/sequences.py) go through the real detector, mesh and embedding."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest

from services.facematch.calibration import MODEL_VERSION
from services.facematch.engine import FaceEngine, Outcome
from services.facematch.liveness import Challenge
from services.facematch.reasons import Code
from services.facematch.templates import Template
from tests.facematch import sequences as sq
from tests.facematch.conftest import rgb_of

pytestmark = pytest.mark.faces

Photo = Callable[[str], bytes]
NOW = datetime(2026, 10, 22, 10, 0, tzinfo=UTC)
PEOPLE = {  # live photo the sequences are made from, another photo of the person for the template
    "obama": ("obama/obama_1.jpg", "obama/obama_4.jpg"),
    "kit": ("kit_harington/kit_harington_1.jpg", "kit_harington/kit_harington_2.jpg"),
}
TURN = [0.0, 10.0, 20.0, 28.0]  # degrees of the synthetic turn, frame by frame
BLINK = [False, False, True, False]


def times(count: int, step: int = 200) -> tuple[int, ...]:
    return tuple(1_700_000 + step * i for i in range(count))


@dataclasses.dataclass
class Scene:
    image: np.ndarray  # the person in front of the fixed background
    mesh: np.ndarray
    template: Template


@pytest.fixture(scope="module")
def scenes(engine: FaceEngine, photo: Photo) -> dict[str, Scene]:
    found = {}
    for person, (live, other) in PEOPLE.items():
        image = sq.on_backdrop(rgb_of(photo(live)))
        analysis = engine.analyse(sq.jpeg(image))
        assert analysis.mesh is not None
        vector = engine.analyse(photo(other)).embedding
        template = Template(person, "SC1", MODEL_VERSION, vector, NOW)
        found[person] = Scene(image, analysis.mesh.points, template)
    return found


def check(engine: FaceEngine, scene: Scene, frames: list[np.ndarray] | list[bytes], action: str,
          frame_times: tuple[int, ...] | None = None) -> Outcome:
    data = [f if isinstance(f, bytes) else sq.jpeg(f) for f in frames]
    challenge = Challenge(action, frame_times if frame_times is not None else times(len(data)))
    return engine.verify(data, scene.template, [scene.template], "terminal", challenge)


@pytest.mark.parametrize("person", sorted(PEOPLE))
@pytest.mark.parametrize(("action", "sign"), [("turn_left", 1.0), ("turn_right", -1.0)])
def test_a_head_turn_answers_its_challenge(engine: FaceEngine, scenes: dict[str, Scene], person: str,
                                          action: str, sign: float) -> None:
    scene = scenes[person]
    outcome = check(engine, scene, sq.head_turn(scene.image, scene.mesh, [sign * y for y in TURN]), action)
    assert outcome.accepted, (outcome.reasons, outcome.liveness)
    assert outcome.liveness["challenge"] == action and outcome.liveness["shown"] == [action]
    assert outcome.distance is not None and outcome.distance <= outcome.threshold


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_a_blink_answers_a_blink_challenge(engine: FaceEngine, scenes: dict[str, Scene], person: str) -> None:
    scene = scenes[person]
    outcome = check(engine, scene, sq.blink(scene.image, scene.mesh, BLINK), "blink")
    assert outcome.accepted, (outcome.reasons, outcome.liveness)
    assert "blink" in outcome.liveness["shown"]  # type: ignore[operator]


@pytest.mark.parametrize(("asked", "done"), [("turn_left", -1.0), ("turn_right", 1.0), ("blink", 1.0)])
def test_the_right_person_doing_the_wrong_action_is_refused(
    engine: FaceEngine, scenes: dict[str, Scene], asked: str, done: float
) -> None:
    scene = scenes["obama"]
    outcome = check(engine, scene, sq.head_turn(scene.image, scene.mesh, [done * y for y in TURN]), asked)
    assert not outcome.accepted and Code.LIVENESS_WRONG_ACTION in outcome.reasons, outcome.liveness
    assert Code.NO_MATCH not in outcome.reasons  # it is the right person


def test_a_blink_does_not_answer_a_turn(engine: FaceEngine, scenes: dict[str, Scene]) -> None:
    scene = scenes["kit"]
    outcome = check(engine, scene, sq.blink(scene.image, scene.mesh, BLINK), "turn_left")
    assert outcome.reasons == [Code.LIVENESS_WRONG_ACTION], outcome.liveness


@pytest.mark.parametrize("action", ["turn_left", "turn_right", "blink"])
@pytest.mark.parametrize("names", [
    ["obama/obama_1.jpg", "obama/obama_2.jpg", "obama/obama_4.jpg"],
    ["kit_harington/kit_harington_1.jpg", "kit_harington/kit_harington_2.jpg",
     "kit_harington/kit_harington_3.jpg"],
])
def test_three_different_photos_of_the_person_are_refused(
    engine: FaceEngine, scenes: dict[str, Scene], photo: Photo, names: list[str], action: str
) -> None:
    scene = scenes["obama" if names[0].startswith("obama") else "kit"]
    as_sent = check(engine, scene, [photo(n) for n in names], action)
    assert Code.LIVENESS_DISCONTINUOUS in as_sent.reasons and not as_sent.accepted
    assert as_sent.liveness["continuity"] == "frame size changed"
    # the same three photos put into frames of one size before one background: still not one take
    staged = check(engine, scene, [sq.on_backdrop(rgb_of(photo(n))) for n in names], action)
    assert Code.LIVENESS_DISCONTINUOUS in staged.reasons and not staged.accepted, staged.liveness


@pytest.mark.parametrize("action", ["turn_left", "turn_right", "blink"])
@pytest.mark.parametrize("name", ["obama/obama_1.jpg", "kit_harington/kit_harington_1.jpg",
                                  "biden/biden_1.jpg"])
def test_a_photo_moved_in_front_of_the_camera_is_flat(
    engine: FaceEngine, scenes: dict[str, Scene], photo: Photo, name: str, action: str
) -> None:
    scene = scenes["kit" if name.startswith("kit") else "obama"]
    frames = sq.photo_moved(rgb_of(photo(name)), [0.0, 10.0, 20.0, 30.0])
    outcome = check(engine, scene, frames, action)
    assert not outcome.accepted and Code.LIVENESS_FLAT in outcome.reasons, outcome.liveness
    assert outcome.liveness["plane_explains"] >= 0.55  # type: ignore[operator]


def test_a_repeated_still_answers_nothing(engine: FaceEngine, scenes: dict[str, Scene]) -> None:
    scene = scenes["obama"]
    outcome = check(engine, scene, [scene.image] * 4, "blink")
    assert outcome.reasons == [Code.LIVENESS_STATIC]


@pytest.mark.parametrize(("frame_times", "problem"), [
    (None, "one client timestamp per frame is required"),
    ((0, 200, 200, 400), "timestamps do not increase"),
    ((0, 200, 400, 300), "timestamps do not increase"),
    ((0, 200, 2400, 2600), "frames too far apart"),
    ((0, 1400, 2800, 4200, 5600, 7000, 8400, 9800, 11200, 12600), "take too long"),
])
def test_client_timestamps_must_be_one_take(
    engine: FaceEngine, scenes: dict[str, Scene], frame_times: tuple[int, ...] | None, problem: str
) -> None:
    scene = scenes["obama"]
    yaws = TURN if frame_times is None or len(frame_times) == 4 else [2.8 * i for i in range(10)]
    frames = [sq.jpeg(f) for f in sq.head_turn(scene.image, scene.mesh, yaws)]
    challenge = Challenge("turn_left", frame_times)
    outcome = engine.verify(frames, scene.template, [], "terminal", challenge)
    assert Code.LIVENESS_TIMING in outcome.reasons and outcome.liveness["timing"] == problem


def test_a_capture_without_a_challenge_is_refused_unless_configured(
    engine: FaceEngine, scenes: dict[str, Scene], photo: Photo, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene = scenes["obama"]
    three = [photo(n) for n in ("obama/obama_1.jpg", "obama/obama_2.jpg", "obama/obama_4.jpg")]
    legacy = engine.verify(three, scene.template, [], "terminal")  # the fixture accepts old clients
    assert legacy.accepted  # ... which is why production does not: three photos pass the old check
    monkeypatch.setattr(engine, "policy", dataclasses.replace(engine.policy, unchallenged=frozenset()))
    refused = engine.verify(three, scene.template, [], "terminal")
    assert refused.reasons == [Code.LIVENESS_NO_CHALLENGE] and refused.embedding is None


def test_a_burst_is_decided_and_enrolled_on_its_fused_good_frames(
    engine: FaceEngine, scenes: dict[str, Scene], photo: Photo
) -> None:
    scene = scenes["kit"]
    frames = [sq.jpeg(f) for f in sq.head_turn(scene.image, scene.mesh, [0.0, 4.0, 8.0, 24.0])]
    outcome = engine.enrol(frames, photo("kit_harington/kit_harington_3.jpg"), "terminal",
                           challenge=Challenge("turn_left", times(4)))
    assert outcome.accepted, (outcome.reasons, outcome.liveness)
    good = [a for a in (engine.analyse(f) for f in frames) if a.quality.ok]
    assert outcome.liveness["frames_matched"] == len(good) >= 2
    expected = np.mean([a.embedding for a in good], axis=0)
    assert outcome.embedding is not None and np.allclose(outcome.embedding, expected)
