"""Liveness challenges and province-wide duplicates through the real services (issue 10): the
services a device talks to issue the challenge, the capture names it, facematch decides on the
frames (challenges required: AID_FACE_UNCHALLENGED empty, as in production). Frames are real
photos of ../shared/faces and sequences made from them (tests/facematch/sequences.py)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from services.facematch.engine import FaceEngine
from tests.facematch import sequences as sq
from tests.facematch.conftest import rgb_of
from tests.flows import challenge, province_token, register_student, setup_school, setup_terminal
from tests.support import System, http_json, wait_for

pytestmark = pytest.mark.integration
CHECK_DAY = datetime.fromisoformat("2026-10-22T11:00:00+08:00")
CAPTURE_DAY = datetime.fromisoformat("2026-10-12T11:00:00+08:00")
TURN = [0.0, 10.0, 20.0, 28.0]


def faces() -> Path:
    for folder in Path(__file__).resolve().parents:
        if (folder / "shared" / "faces" / "obama").is_dir():
            return folder / "shared" / "faces"
    pytest.fail("shared/faces not found")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Footage:
    """Bursts of one person (a photo before a fixed background) doing each action."""

    def __init__(self, engine: FaceEngine, photo: str) -> None:
        self.image = sq.on_backdrop(rgb_of((faces() / photo).read_bytes()))
        analysis = engine.analyse(sq.jpeg(self.image))
        assert analysis.mesh is not None
        self.mesh: np.ndarray = analysis.mesh.points

    def doing(self, action: str) -> list[str]:
        if action == "blink":
            frames = sq.blink(self.image, self.mesh, [False, False, True, False])
        else:
            sign = 1.0 if action == "turn_left" else -1.0
            frames = sq.head_turn(self.image, self.mesh, [sign * y for y in TURN])
        return [b64(sq.jpeg(f)) for f in frames]


WRONG = {"blink": "turn_left", "turn_left": "turn_right", "turn_right": "blink"}


def events(system: System, type_: str, **payload: str) -> list[dict[str, Any]]:
    query, params = "SELECT payload FROM events WHERE type = %s", [type_]
    for key, value in payload.items():
        query += f" AND payload->>'{key}' = %s"
        params.append(value)
    with psycopg.connect(system.database_url) as conn:
        return [r[0] for r in conn.execute(query + " ORDER BY position", params).fetchall()]


@pytest.fixture()
def site(system: System) -> Iterator[System]:
    offset = str((CHECK_DAY - datetime.now(UTC)).total_seconds())
    capture_offset = str((CAPTURE_DAY - datetime.now(UTC)).total_seconds())
    system.relay().start()
    system.service("enrolment", AID_CLOCK_OFFSET_SECONDS=capture_offset).start(wait=False)
    system.service("spotcheck", AID_CLOCK_OFFSET_SECONDS=offset).start(wait=False)
    system.service("facematch", AID_CLOCK_OFFSET_SECONDS=offset, AID_FACE_UNCHALLENGED="").start(wait=False)
    for name in ("relay", "enrolment", "spotcheck", "facematch"):
        system.procs[name].wait_healthy(timeout=120)
    yield system


def test_challenged_enrolment_and_check_in_duplicates_across_the_province(site: System) -> None:
    enrolment, spotcheck = site.procs["enrolment"], site.procs["spotcheck"]
    setup_school(site, enrolment, "SC1", "驻马店市", "驿城区")
    setup_school(site, enrolment, "SC2", "驻马店市", "西平县")
    t1, t2 = setup_terminal(site, enrolment, "T1", "SC1"), setup_terminal(site, enrolment, "T2", "SC2")
    register_student(site, enrolment, "A0001", 1, "SC1")
    register_student(site, enrolment, "B0001", 2, "SC2")
    engine = FaceEngine()
    obama = Footage(engine, "obama/obama_1.jpg")
    id_photo = b64((faces() / "obama" / "obama_4.jpg").read_bytes())
    times = [1000, 1200, 1400, 1600]

    # a new capture without a challenge is refused by facematch (production setting)
    unchallenged = {"student_id": "A0001", "frames": obama.doing("blink"), "id_photo": id_photo}
    status, body = enrolment.api("POST", "/enrolments", unchallenged, token=t1)
    assert status == 202, body
    wait_for(lambda: events(site, "CaptureRejected", capture_id=body["capture_id"]), timeout=120,
             what="the unchallenged capture decided")
    assert events(site, "CaptureRejected", capture_id=body["capture_id"])[0]["reasons"] == [
        "LIVENESS_NO_CHALLENGE"]

    # the answer to the terminal's challenge enrols A at SC1
    asked = challenge(enrolment, "/enrolments/challenges", "A0001", t1)
    assert asked["action"] in ("blink", "turn_left", "turn_right")
    body_a = {"student_id": "A0001", "frames": obama.doing(asked["action"]), "id_photo": id_photo,
              "challenge_id": asked["challenge_id"], "frame_times_ms": times}
    status, answer = enrolment.api("POST", "/enrolments", body_a, token=t1)
    assert (status, answer["capture_id"]) == (202, asked["challenge_id"]), answer
    status, again = enrolment.api("POST", "/enrolments", body_a, token=t1)
    assert (status, again["error"]) == (409, "CHALLENGE_USED")
    other = challenge(enrolment, "/enrolments/challenges", "B0001", t2)
    status, wrong = enrolment.api("POST", "/enrolments", {**body_a, "challenge_id": other["challenge_id"]},
                                  token=t1)
    assert (status, wrong["error"]) in ((403, "CHALLENGE_MISMATCH"), (403, "OUTSIDE_AREA")), wrong
    wait_for(lambda: events(site, "StudentEnrolled", student_id="A0001"), timeout=120, what="A enrolled")
    (submitted,) = events(site, "CaptureSubmitted", capture_id=asked["challenge_id"])
    assert (submitted["challenge_action"], submitted["frame_times_ms"]) == (asked["action"], times)
    assert events(site, "StudentEnrolled", student_id="A0001")[0]["mode"] == "verified"

    # the same face enrolled for B at another school: held, both students named to the province
    asked = challenge(enrolment, "/enrolments/challenges", "B0001", t2)
    status, answer = enrolment.api("POST", "/enrolments", {
        "student_id": "B0001", "frames": obama.doing(asked["action"]), "id_photo": id_photo,
        "challenge_id": asked["challenge_id"], "frame_times_ms": times}, token=t2)
    assert status == 202, answer
    wait_for(lambda: events(site, "DuplicateFaceHeld"), timeout=120, what="the duplicate held")
    (held,) = events(site, "DuplicateFaceHeld")
    assert (held["student_id"], held["school_id"], held["other_student_id"], held["other_school_id"]) == (
        "B0001", "SC2", "A0001", "SC1")
    assert held["distance"] <= held["threshold"] and set(held) == {
        "capture_id", "student_id", "school_id", "other_student_id", "other_school_id", "distance",
        "threshold", "model_version"}
    (rejected,) = events(site, "CaptureRejected", capture_id=asked["challenge_id"])
    assert "DUPLICATE_IDENTITY" in rejected["reasons"] and rejected["suspected_student_id"] == "A0001"

    # a spot check: the app's check-ins answer challenges of spotcheck
    province = province_token(site)
    status, check = spotcheck.api("POST", "/checks", {
        "opens_at": "2026-10-22T10:00:00+08:00", "closes_at": "2026-10-22T15:00:00+08:00",
        "school_ids": ["SC1"]}, token=province)
    assert status == 201, check
    app = site.token("student", student="A0001")
    path = f"/checks/{check['check_id']}"
    photos = [b64((faces() / "obama" / n).read_bytes())
              for n in ("obama_1.jpg", "obama_2.jpg", "obama_4.jpg")]
    print_of_a = rgb_of((faces() / "obama" / "obama_1.jpg").read_bytes())
    printed = [b64(sq.jpeg(f)) for f in sq.photo_moved(print_of_a, [0.0, 10.0, 20.0, 30.0])]
    verdicts = {}
    for case in ("three photos", "photo moved", "wrong action", "genuine"):
        asked = challenge(spotcheck, f"{path}/challenges", "A0001", app)
        frames = {"three photos": photos, "photo moved": printed, "genuine": obama.doing(asked["action"]),
                  "wrong action": obama.doing(WRONG[asked["action"]])}[case]
        status, answer = spotcheck.api("POST", f"{path}/captures", {
            "student_id": "A0001", "frames": frames, "challenge_id": asked["challenge_id"],
            "frame_times_ms": times[: len(frames)]}, token=app)
        assert status == 202, answer
        url = f"http://127.0.0.1:{spotcheck.api_port}/captures/{answer['capture_id']}?wait=25"

        def decided(url: str = url) -> Any:
            body = http_json("GET", url, token=app, timeout=40)[1]
            return body if body.get("status") != "submitted" else None

        verdict = wait_for(decided, timeout=150, what=case)
        verdicts[case] = (verdict["status"], [r["code"] for r in verdict["reasons"]])
    assert verdicts["three photos"] == ("rejected", ["LIVENESS_DISCONTINUOUS"]), verdicts
    assert verdicts["photo moved"][0] == "rejected", verdicts
    assert "LIVENESS_FLAT" in verdicts["photo moved"][1], verdicts
    assert verdicts["wrong action"] == ("rejected", ["LIVENESS_WRONG_ACTION"]), verdicts
    assert verdicts["genuine"] == ("verified", []), verdicts
    status, body = spotcheck.api("POST", f"{path}/challenges", {"student_id": "B0001"}, token=app)
    assert status == 403, body  # the app acts for its own student only
